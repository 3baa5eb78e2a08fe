//! A misbehaving DHT peer for name-record tests: a Kademlia node on loopback, in the
//! test process, that stores and serves whatever record bytes the test hands it
//! (forged, replayed, oversized), and sends them to a daemon's record store.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{self, QueryId, QueryResult, Record, RecordKey};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId};
use seedbank_protocol::{
    ArtifactKind, ContentId, NameRecord, PublisherSecret, Release, Signed, SignedNameRecord,
};
use tokio::sync::{mpsc, oneshot};

use crate::fixtures::wait_until;

/// How long one request to the peer may take.
const REQUEST_TIME: Duration = Duration::from_secs(30);
/// How long the peer may take to listen after it starts.
const LISTEN_TIME: Duration = Duration::from_secs(5);

enum Command {
    Serve(Record),
    PutTo(PeerId, Multiaddr, Record, oneshot::Sender<bool>),
    GetFrom(PeerId, Multiaddr, RecordKey, oneshot::Sender<Vec<Vec<u8>>>),
    Address(oneshot::Sender<String>),
}

/// A lookup under way: the peer asked, the values it sent, where to answer.
type PendingGet = (PeerId, Vec<Vec<u8>>, oneshot::Sender<Vec<Vec<u8>>>);

/// A Kademlia peer that keeps and sends unchecked records.
pub struct RecordPeer {
    commands: mpsc::UnboundedSender<Command>,
    runtime: tokio::runtime::Runtime,
}

fn split(address: &str) -> (PeerId, Multiaddr) {
    let mut address: Multiaddr = address.parse().expect("a peer address");
    match address.pop() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => (peer, address),
        _ => panic!("{address} has no /p2p/ part"),
    }
}

impl RecordPeer {
    /// Starts the peer on 127.0.0.1 in server mode.
    pub fn start() -> Self {
        Self::start_storing(true)
    }

    /// Starts a peer that acknowledges every record put to it and keeps none, as a
    /// node whose record store is full or flooded does.
    pub fn start_keeping_nothing() -> Self {
        Self::start_storing(false)
    }

    fn start_storing(keep: bool) -> Self {
        let runtime = crate::hostile::peer_runtime();
        let (commands, mut inbox) = mpsc::unbounded_channel();
        runtime.spawn(async move {
            let mut swarm = libp2p::SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .expect("tcp transport")
                .with_behaviour(|key| {
                    let peer = key.public().to_peer_id();
                    let store = MemoryStore::with_config(
                        peer,
                        MemoryStoreConfig {
                            max_value_bytes: 256 * 1024,
                            ..MemoryStoreConfig::default()
                        },
                    );
                    let mut config = kad::Config::new(seedbank_node::net::KAD_PROTOCOL);
                    config.set_query_timeout(Duration::from_secs(10));
                    config.set_max_packet_size(256 * 1024);
                    if !keep {
                        // Puts are answered and handed to the behaviour, which drops them.
                        config.set_record_filtering(kad::StoreInserts::FilterBoth);
                    }
                    let mut kad = kad::Behaviour::with_config(peer, store, config);
                    kad.set_mode(Some(kad::Mode::Server));
                    kad
                })
                .expect("kad behaviour")
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
                .build();
            swarm
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("listen address"))
                .expect("listening");
            let mut puts: HashMap<QueryId, oneshot::Sender<bool>> = HashMap::new();
            let mut gets: HashMap<QueryId, PendingGet> = HashMap::new();
            loop {
                tokio::select! {
                    command = inbox.recv() => match command {
                        None => break,
                        Some(Command::Serve(record)) => {
                            swarm.behaviour_mut().store_mut().put(record).expect("storing");
                        }
                        Some(Command::PutTo(peer, address, record, reply)) => {
                            swarm.behaviour_mut().add_address(&peer, address);
                            let id = swarm.behaviour_mut().put_record_to(
                                record,
                                std::iter::once(peer),
                                kad::Quorum::One,
                            );
                            puts.insert(id, reply);
                        }
                        Some(Command::GetFrom(peer, address, key, reply)) => {
                            swarm.behaviour_mut().add_address(&peer, address);
                            let id = swarm.behaviour_mut().get_record(key);
                            gets.insert(id, (peer, Vec::new(), reply));
                        }
                        Some(Command::Address(reply)) => {
                            let address = swarm.listeners().next().map(|a| {
                                format!("{a}/p2p/{}", swarm.local_peer_id())
                            });
                            let _ = reply.send(address.unwrap_or_default());
                        }
                    },
                    event = swarm.select_next_some() => {
                        let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                            id, result, step, ..
                        }) = event else { continue };
                        match result {
                            QueryResult::PutRecord(result) if step.last => {
                                if let Some(reply) = puts.remove(&id) {
                                    let _ = reply.send(result.is_ok());
                                }
                            }
                            QueryResult::GetRecord(result) => {
                                let done = match result {
                                    Ok(kad::GetRecordOk::FoundRecord(found)) => {
                                        if let Some((peer, values, _)) = gets.get_mut(&id) {
                                            if found.peer == Some(*peer) {
                                                values.push(found.record.value);
                                            }
                                        }
                                        step.last
                                    }
                                    _ => true,
                                };
                                if done {
                                    if let Some((_, values, reply)) = gets.remove(&id) {
                                        let _ = reply.send(values);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
        Self { commands, runtime }
    }

    fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .expect("the record peer stopped");
        // The timer is made inside the runtime, whose clock it needs.
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIME, rx).await });
        match answer {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("the record peer did not answer: {e}"),
            Err(_) => panic!("the record peer did not answer within {REQUEST_TIME:?}"),
        }
    }

    /// Its address with its peer id, for daemons to bootstrap from.
    pub fn peer_address(&self) -> String {
        wait_until("the record peer to listen", LISTEN_TIME, || {
            let address = self.ask(Command::Address);
            if address.is_empty() {
                Err("no listen address".to_owned())
            } else {
                Ok(address)
            }
        })
    }

    /// Keeps `value` under `key` unchecked and answers lookups with it.
    pub fn serve(&self, key: [u8; 32], value: Vec<u8>) {
        self.commands
            .send(Command::Serve(Record::new(RecordKey::new(&key), value)))
            .expect("the record peer stopped");
    }

    /// Asks the daemon at `victim` (`…/p2p/<id>`) to store `value` under `key`; true if
    /// it acknowledged (a node acknowledges even what it then refuses to keep).
    pub fn put_to(&self, victim: &str, key: [u8; 32], value: Vec<u8>) -> bool {
        let (peer, address) = split(victim);
        let record = Record::new(RecordKey::new(&key), value);
        self.ask(|reply| Command::PutTo(peer, address, record, reply))
    }

    /// What the daemon at `victim` answers for `key`.
    pub fn get_from(&self, victim: &str, key: [u8; 32]) -> Vec<Vec<u8>> {
        let (peer, address) = split(victim);
        self.ask(|reply| Command::GetFrom(peer, address, RecordKey::new(&key), reply))
    }
}

/// A model release of `root` as `name` at `revision`: MIT, one file, size 1.
pub fn release(root: ContentId, name: &str, revision: &str) -> Release {
    Release {
        root,
        kind: ArtifactKind::Model,
        name: name.into(),
        revision: revision.into(),
        licence: Some("MIT".into()),
        card: None,
        tags: vec![],
        parent: None,
        size: 1,
        files: 1,
        published_at: 1_800_000_000,
    }
}

/// `secret`'s name record for `name` at `sequence`, whose latest release is `root` at
/// `v1` (see [`release`]).
pub fn name_record(
    secret: &PublisherSecret,
    root: ContentId,
    name: &str,
    sequence: u64,
) -> SignedNameRecord {
    Signed::sign(
        NameRecord {
            name: name.into(),
            sequence,
            latest: Signed::sign(release(root, name, "v1"), secret).expect("signing a release"),
            earlier: vec![],
        },
        secret,
    )
    .expect("signing a name record")
}
