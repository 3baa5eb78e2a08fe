//! What the running node tells of itself and its network: `status`, `peers` and
//! `providers`.

use anyhow::Result;
use reqwest::Method;
use seedbank_protocol::api::{PeerSummary, ProvidersResponse, StatusResponse};

use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::output::{human_bytes, outln, print, print_table};
use crate::render::print_status;

/// `seedbank status`
pub(crate) fn status(client: &DaemonClient, json: bool) -> Result<Exit> {
    let status: StatusResponse = client.call(Method::GET, &["v1", "status"])?;
    print(json, &status, || print_status(&status))?;
    Ok(Exit::Ok)
}

/// `seedbank peers`
pub(crate) fn peers(client: &DaemonClient, json: bool) -> Result<Exit> {
    let peers: Vec<PeerSummary> = client.call(Method::GET, &["v1", "peers"])?;
    print(json, &peers, || {
        let rows: Vec<Vec<String>> = peers
            .iter()
            .map(|p| {
                vec![
                    p.peer.clone(),
                    human_bytes(p.bytes_up),
                    human_bytes(p.bytes_down),
                    p.addresses.join(" "),
                ]
            })
            .collect();
        print_table(&["PEER", "UP", "DOWN", "ADDRESSES"], &rows);
    })?;
    Ok(Exit::Ok)
}

/// `seedbank providers ID`; none found ends as not found.
pub(crate) fn providers(client: &DaemonClient, json: bool, artifact: &str) -> Result<Exit> {
    let found: ProvidersResponse = client.call(Method::GET, &["v1", "providers", artifact])?;
    print(json, &found, || {
        if found.providers.is_empty() {
            outln!("no providers of {} found", found.id);
        }
        for peer in &found.providers {
            outln!("{peer}");
        }
    })?;
    if found.providers.is_empty() {
        return Ok(Exit::NotFound);
    }
    Ok(Exit::Ok)
}
