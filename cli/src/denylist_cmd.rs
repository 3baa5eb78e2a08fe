//! `seedbank denylist …`: publish a denylist, subscribe to and unsubscribe from lists,
//! list the subscriptions, refresh them now.

use std::path::Path;

use anyhow::{bail, Context, Result};
use reqwest::Method;
use seedbank_protocol::denylist::{DenyEntry, Denylist};
use seedbank_protocol::denylist_api::{
    DenylistPublishReport, DenylistPublishRequest, DenylistRefreshReport, DenylistSubscribeRequest,
    DenylistSubscription,
};
use seedbank_protocol::ContentId;

use crate::args::DenylistCommand;
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::output::{count, outln, print, print_table};
use crate::progress::Bars;

/// Runs one of the denylist subcommands.
pub(crate) fn run(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    command: DenylistCommand,
) -> Result<Exit> {
    match command {
        DenylistCommand::Publish {
            name,
            ids,
            reason,
            file,
            remove,
            replace,
            key,
        } => {
            let mut entries = Vec::new();
            if let Some(file) = &file {
                entries.extend(entries_from_file(file, reason.as_deref())?);
            }
            for id in &ids {
                entries.push(DenyEntry {
                    id: parse_id(id)?,
                    reason: reason.clone(),
                });
            }
            if entries.is_empty() && remove.is_empty() && !replace {
                bail!("nothing to publish: give content ids, --file, --remove or --replace");
            }
            let request = DenylistPublishRequest {
                name,
                entries,
                remove: remove
                    .iter()
                    .map(|id| parse_id(id))
                    .collect::<Result<_>>()?,
                replace,
                key,
            };
            let mut bars = Bars::new("adding", quiet);
            let report: DenylistPublishReport =
                client.stream(&["v1", "denylists", "publish"], &request, |p| {
                    bars.update(p)
                })?;
            bars.finish();
            print(json, &report, || {
                outln!(
                    "published {} revision {}: {} ({} added, {} removed) = {}",
                    report.list,
                    report.revision,
                    count(report.entries, "entry"),
                    report.added,
                    report.removed,
                    report.root
                );
                outln!(
                    "  others subscribe with `seedbank denylist subscribe {}` once they trust {}",
                    report.list,
                    report.publisher
                );
            })?;
        }
        DenylistCommand::Subscribe { list } => {
            let subscription: DenylistSubscription = client.send_json(
                Method::POST,
                &["v1", "denylists"],
                &DenylistSubscribeRequest { list },
            )?;
            print(json, &subscription, || {
                outln!(
                    "subscribed to {}: {}",
                    subscription.list,
                    count(subscription.entries, "entry")
                );
                if let Some(error) = &subscription.last_error {
                    outln!("  not read yet ({error}); it is tried again on schedule");
                }
            })?;
        }
        DenylistCommand::Unsubscribe { list } => {
            let subscription: DenylistSubscription =
                client.call_with_query(Method::DELETE, &["v1", "denylists"], &[("list", list)])?;
            print(json, &subscription, || {
                outln!(
                    "unsubscribed from {} ({} no longer denied unless another list names them)",
                    subscription.list,
                    count(subscription.entries, "entry")
                )
            })?;
        }
        DenylistCommand::List => {
            let subscriptions: Vec<DenylistSubscription> =
                client.call(Method::GET, &["v1", "denylists"])?;
            print(json, &subscriptions, || print_subscriptions(&subscriptions))?;
        }
        DenylistCommand::Refresh => {
            let report: DenylistRefreshReport =
                client.call(Method::POST, &["v1", "denylists", "refresh"])?;
            print(json, &report, || {
                print_subscriptions(&report.subscriptions);
                outln!("{} denied in all", count(report.denied, "artifact"));
            })?;
        }
    }
    Ok(Exit::Ok)
}

fn print_subscriptions(subscriptions: &[DenylistSubscription]) {
    if subscriptions.is_empty() {
        outln!("no denylists (subscribe with `seedbank denylist subscribe PUBLISHER/NAME`)");
        return;
    }
    let rows: Vec<Vec<String>> = subscriptions
        .iter()
        .map(|s| {
            vec![
                s.list.clone(),
                s.revision.map_or("-".into(), |r| r.to_string()),
                s.entries.to_string(),
                s.last_refresh.map_or("never".into(), ago),
                s.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &["LIST", "REVISION", "ENTRIES", "REFRESHED", "LAST ERROR"],
        &rows,
    );
}

/// `12m ago`, from seconds since the epoch.
fn ago(at: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let elapsed = std::time::Duration::from_secs(now.saturating_sub(at));
    format!("{} ago", crate::output::human_duration(elapsed))
}

fn parse_id(text: &str) -> Result<ContentId> {
    text.trim()
        .parse()
        .with_context(|| format!("{text:?} cannot be listed"))
}

/// Entries from a denylist.json, or from lines of `ID [REASON…]` (`reason` for lines
/// without one).
fn entries_from_file(path: &Path, reason: Option<&str>) -> Result<Vec<DenyEntry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim_start().starts_with('{') {
        let list = Denylist::decode(text.as_bytes())
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(list.entries);
    }
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line
            .split_once('#')
            .map_or(line, |(before, _)| before)
            .trim();
        if line.is_empty() {
            continue;
        }
        let (id, own_reason) = match line.split_once(char::is_whitespace) {
            Some((id, rest)) => (id, Some(rest.trim())),
            None => (line, None),
        };
        let id = parse_id(id).with_context(|| format!("{}:{}", path.display(), number + 1))?;
        entries.push(DenyEntry {
            id,
            reason: own_reason.or(reason).map(str::to_owned),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::BlobHash;

    use super::*;

    #[test]
    fn entry_files_take_one_id_per_line_with_an_optional_reason() {
        let dir = std::env::temp_dir().join(format!("seedbank-denylist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (ContentId(BlobHash([1; 32])), ContentId(BlobHash([2; 32])));
        let path = dir.join("list.txt");
        std::fs::write(
            &path,
            format!("# bad ones\n{a} leaked weights\n\n{b}  # no reason\n"),
        )
        .unwrap();
        let entries = entries_from_file(&path, Some("default")).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].reason.as_deref(), Some("leaked weights"));
        assert_eq!(entries[1].reason.as_deref(), Some("default"));
        std::fs::write(&path, "sb1nope\n").unwrap();
        let error = format!("{:#}", entries_from_file(&path, None).unwrap_err());
        assert!(error.contains("list.txt:1"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
