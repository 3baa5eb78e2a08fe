//! Joining many simulated nodes at the pace 2 cores can take, and waiting for the
//! network to settle: routing-table snapshots over all nodes, waits on their DHT queries.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use libp2p::Multiaddr;
use rand::RngExt;

use crate::network::{start_node, NodeProfile, SimNode};

/// Starts `count` network-only nodes with [`join_nodes`].
pub async fn start_nodes(
    count: usize,
    profile: NodeProfile,
    batch: usize,
    rng: &mut impl RngExt,
) -> Result<Vec<SimNode>> {
    join_nodes(count, batch, rng, |_, bootstrap| async move {
        start_node(&bootstrap, profile).await
    })
    .await
}

/// Starts `count` nodes with `start(index, bootstrap addresses)`, each bootstrapping
/// from the first and from one random earlier node, `batch` at a time. Before the next
/// batch it waits until the DHT queries under way (mostly the new nodes' bootstraps)
/// are down to [`JOIN_QUERIES_PER_BATCH`] per node of the batch: joins then go at the
/// pace the machine can take, instead of a thousand bootstraps competing for 2 cores
/// until their requests time out.
pub async fn join_nodes<N, F, Fut>(
    count: usize,
    batch: usize,
    rng: &mut impl RngExt,
    mut start: F,
) -> Result<Vec<N>>
where
    N: AsRef<SimNode>,
    F: FnMut(usize, Vec<Multiaddr>) -> Fut,
    Fut: Future<Output = Result<N>>,
{
    let batch = batch.max(1);
    let mut nodes: Vec<N> = Vec::with_capacity(count);
    for i in 0..count {
        let mut bootstrap = Vec::new();
        if let Some(first) = nodes.first() {
            let first = first.as_ref();
            bootstrap.push(first.address.clone());
            let other = nodes[rng.random_range(0..nodes.len())].as_ref();
            if other.peer != first.peer {
                bootstrap.push(other.address.clone());
            }
        }
        nodes.push(start(i, bootstrap).await?);
        if (i + 1) % batch == 0 || i + 1 == count {
            let newest = &nodes[nodes.len().saturating_sub(batch)..];
            wait_for_tables(newest, JOIN_MIN_TABLE, JOIN_TABLE_WAIT).await?;
            wait_for_queries(&nodes, (batch as f64 * JOIN_QUERIES_PER_BATCH) as u64).await?;
            tracing::info!(nodes = nodes.len(), "joined");
        }
    }
    Ok(nodes)
}

/// Joining goes on once fewer DHT queries than this per node of the last batch are
/// under way.
pub const JOIN_QUERIES_PER_BATCH: f64 = 0.5;

/// A joining node counts as having started its bootstrap once its routing table holds
/// this many peers (its bootstrap peers plus one it learned).
pub const JOIN_MIN_TABLE: u64 = 3;

/// Longest wait for a batch's routing tables to reach [`JOIN_MIN_TABLE`].
pub const JOIN_TABLE_WAIT: Duration = Duration::from_secs(10);

/// Waits until every node in `nodes` has at least `least` peers in its routing table,
/// or `limit` passed (a node of a tiny network may never get there).
pub async fn wait_for_tables(
    nodes: &[impl AsRef<SimNode>],
    least: u64,
    limit: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while routing_snapshot(nodes).await?.min_table < least && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until at most `most` DHT queries are under way over all `nodes`.
pub async fn wait_for_queries(nodes: &[impl AsRef<SimNode>], most: u64) -> Result<()> {
    loop {
        let now = routing_snapshot(nodes).await?;
        if now.dht_queries <= most {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the nodes' routing tables look like at one moment.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RoutingSnapshot {
    /// Mean routing-table size.
    pub mean_table: f64,
    /// Smallest routing table.
    pub min_table: u64,
    /// Connections open, summed over nodes (each counted at both ends).
    pub connections: u64,
    /// DHT queries under way, summed over nodes.
    pub dht_queries: u64,
}

/// Takes a [`RoutingSnapshot`] of `nodes`.
pub async fn routing_snapshot(nodes: &[impl AsRef<SimNode>]) -> Result<RoutingSnapshot> {
    let statuses =
        futures::future::try_join_all(nodes.iter().map(|node| node.as_ref().handle.status()))
            .await?;
    let total: u64 = statuses.iter().map(|s| s.routing_table_size).sum();
    Ok(RoutingSnapshot {
        mean_table: total as f64 / nodes.len().max(1) as f64,
        min_table: statuses
            .iter()
            .map(|s| s.routing_table_size)
            .min()
            .unwrap_or(0),
        connections: statuses.iter().map(|s| s.connected_peers).sum(),
        dht_queries: statuses.iter().map(|s| s.dht_queries).sum(),
    })
}

/// Waits until the nodes' routing tables stop growing and their bootstraps are done:
/// the mean size grew by less than 2% over the last [`SETTLE_POLL`], every node knows
/// at least one peer and fewer than one node in 20 has a DHT query under way; or until
/// `limit` passed. Announcing before tables have filled stores provider records on
/// nodes that are not the closest ones, and lookups then miss them.
pub async fn settle(nodes: &[impl AsRef<SimNode>], limit: Duration) -> Result<RoutingSnapshot> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = routing_snapshot(nodes).await?;
    loop {
        tokio::time::sleep(SETTLE_POLL).await;
        let now = routing_snapshot(nodes).await?;
        tracing::info!(
            mean_table = now.mean_table,
            min_table = now.min_table,
            connections = now.connections,
            dht_queries = now.dht_queries,
            "routing tables"
        );
        let steady = now.mean_table <= last.mean_table * 1.02
            && now.min_table > 0
            && now.dht_queries <= nodes.len() as u64 / 20;
        if steady || tokio::time::Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// Longest a scenario waits in [`settle`] after its nodes joined.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(300);

/// How often [`settle`] looks at the routing tables.
pub const SETTLE_POLL: Duration = Duration::from_secs(2);
