//! The publishing and naming subcommands: `key`, `trust`, `publish`, `ls-remote`,
//! `search`, `resolve`, `history`.

use std::io::Read;

use anyhow::{Context, Result};
use reqwest::Method;
use seedbank_protocol::names_api::{
    Catalog, CatalogQuery, History, KeyExport, KeyImportRequest, KeyInfo, KeyNewRequest, NameQuery,
    PublishReport, PublishRequest, RecordSource, Resolution, SearchQuery, SearchResponse,
    TrustAddRequest, TrustEntry,
};

use crate::args::{KeyCommand, PublishArgs, TrustCommand};
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::output::{count, human_bytes, outln, print, print_table};
use crate::progress::Bars;

fn source_note(source: RecordSource) -> &'static str {
    match source {
        RecordSource::Network => "",
        RecordSource::Cache => " (from this node's cache: the network had no newer record)",
    }
}

fn who(alias: Option<&str>, trusted: bool) -> String {
    match (alias, trusted) {
        (Some(alias), true) => alias.to_owned(),
        _ => "untrusted".to_owned(),
    }
}

/// `seedbank key …`
pub(crate) fn key(client: &DaemonClient, json: bool, command: KeyCommand) -> Result<Exit> {
    match command {
        KeyCommand::New { alias } => {
            let key: KeyInfo =
                client.send_json(Method::POST, &["v1", "keys"], &KeyNewRequest { alias })?;
            print(json, &key, || outln!("{} {}", key.alias, key.public_key))
        }
        KeyCommand::List => {
            let keys: Vec<KeyInfo> = client.call(Method::GET, &["v1", "keys"])?;
            print(json, &keys, || {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.alias.clone(),
                            k.public_key.to_string(),
                            if k.default {
                                "default".into()
                            } else {
                                String::new()
                            },
                        ]
                    })
                    .collect();
                print_table(&["ALIAS", "PUBLIC KEY", ""], &rows);
            })
        }
        KeyCommand::Export { alias } => {
            let export: KeyExport = client.call(Method::GET, &["v1", "keys", &alias, "export"])?;
            print(json, &export, || outln!("{}", export.secret))
        }
        KeyCommand::Import { alias, file } => {
            let mut secret = String::new();
            match &file {
                Some(path) => {
                    secret = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?
                }
                None => {
                    std::io::stdin()
                        .read_to_string(&mut secret)
                        .context("reading the key from standard input")?;
                }
            }
            let key: KeyInfo = client.send_json(
                Method::POST,
                &["v1", "keys", "import"],
                &KeyImportRequest {
                    alias,
                    secret: secret.trim().to_owned(),
                },
            )?;
            print(json, &key, || outln!("{} {}", key.alias, key.public_key))
        }
    }?;
    Ok(Exit::Ok)
}

/// `seedbank trust …`
pub(crate) fn trust(client: &DaemonClient, json: bool, command: TrustCommand) -> Result<Exit> {
    match command {
        TrustCommand::Add { alias, public_key } => {
            let entry: TrustEntry = client.send_json(
                Method::POST,
                &["v1", "trust"],
                &TrustAddRequest { alias, public_key },
            )?;
            print(json, &entry, || {
                outln!("trusting {} as {}", entry.public_key, entry.alias)
            })
        }
        TrustCommand::List => {
            let entries: Vec<TrustEntry> = client.call(Method::GET, &["v1", "trust"])?;
            print(json, &entries, || {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| vec![e.alias.clone(), e.public_key.to_string()])
                    .collect();
                print_table(&["ALIAS", "PUBLIC KEY"], &rows);
            })
        }
        TrustCommand::Remove { alias } => {
            let entry: TrustEntry = client.call(Method::DELETE, &["v1", "trust", &alias])?;
            print(json, &entry, || {
                outln!("no longer trusting {} ({})", entry.alias, entry.public_key)
            })
        }
    }?;
    Ok(Exit::Ok)
}

/// `seedbank publish TARGET --name NAME …`: a TARGET that is a path is made absolute,
/// so the daemon finds it whatever its working directory.
pub(crate) fn publish(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    args: PublishArgs,
) -> Result<Exit> {
    let path = std::path::Path::new(&args.target);
    let target = if path.exists() {
        std::path::absolute(path)
            .with_context(|| format!("resolving {}", path.display()))?
            .display()
            .to_string()
    } else {
        args.target
    };
    let request = PublishRequest {
        target,
        name: args.name,
        revision: args.revision,
        kind: args.kind.map(Into::into),
        licence: args.licence,
        card: args.card,
        tags: args.tags,
        key: args.key,
        reference: args.reference,
    };
    let mut bars = Bars::new("adding", quiet);
    let report: PublishReport = client.stream(&["v1", "publish"], &request, |p| bars.update(p))?;
    bars.finish();
    print(json, &report, || {
        let info = &report.release;
        let r = &info.release;
        outln!(
            "published {}/{}@{} = {}",
            info.publisher,
            r.name,
            r.revision,
            r.root
        );
        outln!(
            "  {} {}, {}, licence {}, sequence {}, put answered by {}, kept by {} (catalog: {})",
            r.kind,
            human_bytes(r.size),
            count(r.files, "file"),
            r.licence.as_deref().unwrap_or("-"),
            report.sequence,
            count(u64::from(report.replicas), "peer"),
            report.kept_by,
            count(u64::from(report.catalog_pages), "page"),
        );
        if report.replicas > 0 && report.kept_by == 0 {
            outln!(
                "  warning: the peers that answered the put did not keep the name record (their record stores refused it); it is put again in 5 minutes. Others find it while this node is reachable."
            );
        }
        if let Some(parent) = &r.parent {
            outln!("  follows {parent}");
        }
        outln!("  found by: {}", report.words.join(" "));
    })?;
    Ok(Exit::Ok)
}

/// `seedbank ls-remote PUBLISHER`
pub(crate) fn ls_remote(client: &DaemonClient, json: bool, publisher: String) -> Result<Exit> {
    let catalog: Catalog =
        client.call_with_query(Method::GET, &["v1", "catalog"], &CatalogQuery { publisher })?;
    print(json, &catalog, || {
        outln!(
            "{} ({}), catalog sequence {}{}",
            catalog.publisher,
            who(catalog.alias.as_deref(), catalog.trusted),
            catalog.sequence,
            source_note(catalog.source)
        );
        let rows: Vec<Vec<String>> = catalog
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.name.clone(),
                    e.revision.clone(),
                    e.kind.to_string(),
                    human_bytes(e.size),
                    e.licence.clone().unwrap_or_else(|| "-".into()),
                    e.root.to_string(),
                ]
            })
            .collect();
        print_table(&["NAME", "LATEST", "KIND", "SIZE", "LICENCE", "ID"], &rows);
        if catalog.missing_pages > 0 {
            outln!(
                "({} of the catalog could not be read)",
                count(u64::from(catalog.missing_pages), "page")
            );
        }
    })?;
    Ok(Exit::Ok)
}

/// `seedbank search WORD… [--limit N]`; no result ends as not found.
pub(crate) fn search(
    client: &DaemonClient,
    json: bool,
    words: &[String],
    limit: usize,
) -> Result<Exit> {
    let response: SearchResponse = client.call_with_query(
        Method::GET,
        &["v1", "search"],
        &SearchQuery {
            q: words.join(" "),
            limit: Some(limit),
        },
    )?;
    print(json, &response, || {
        let rows: Vec<Vec<String>> = response
            .results
            .iter()
            .map(|r| {
                // What `fetch` accepts: a trusted publisher's alias, else its whole key.
                let publisher = match (&r.alias, r.trusted) {
                    (Some(alias), true) => alias.clone(),
                    _ => r.publisher.to_string(),
                };
                vec![
                    format!("{publisher}/{}", r.entry.name),
                    if r.trusted { "yes" } else { "no" }.into(),
                    r.entry.revision.clone(),
                    r.entry.kind.to_string(),
                    human_bytes(r.entry.size),
                    r.entry.licence.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        print_table(
            &["NAME", "TRUSTED", "LATEST", "KIND", "SIZE", "LICENCE"],
            &rows,
        );
        outln!(
            "{} from {} of {}{}",
            count(response.results.len() as u64, "result"),
            count(u64::from(response.publishers), "publisher"),
            count(u64::from(response.nodes), "node"),
            if response.complete {
                ""
            } else {
                " (cut short by the search's limits)"
            }
        );
    })?;
    if response.results.is_empty() {
        return Ok(Exit::NotFound);
    }
    Ok(Exit::Ok)
}

/// `seedbank resolve PUBLISHER/NAME[@REVISION]`
pub(crate) fn resolve(client: &DaemonClient, json: bool, name: String) -> Result<Exit> {
    let resolution: Resolution =
        client.call_with_query(Method::GET, &["v1", "resolve"], &NameQuery { name })?;
    print(json, &resolution, || {
        let info = &resolution.release;
        outln!("{}", resolution.root);
        outln!(
            "  {}/{}@{}, sequence {}, signed by {} ({}){}",
            info.alias.as_deref().unwrap_or(&info.publisher.short()),
            info.release.name,
            resolution.revision,
            resolution.sequence,
            info.publisher,
            who(info.alias.as_deref(), info.trusted),
            source_note(resolution.source)
        );
    })?;
    Ok(Exit::Ok)
}

/// `seedbank history PUBLISHER/NAME`
pub(crate) fn history(client: &DaemonClient, json: bool, name: String) -> Result<Exit> {
    let history: History =
        client.call_with_query(Method::GET, &["v1", "history"], &NameQuery { name })?;
    print(json, &history, || {
        let rows: Vec<Vec<String>> = history
            .revisions
            .iter()
            .map(|e| vec![e.revision.clone(), e.root.to_string()])
            .collect();
        print_table(&["REVISION", "ID"], &rows);
        if history.source == RecordSource::Cache {
            outln!("{}", source_note(history.source).trim());
        }
    })?;
    Ok(Exit::Ok)
}
