//! Misbehaving peers for end-to-end tests, written with the node's own network code and
//! an in-memory iroh-blobs store, running in the test process on loopback. Each serves
//! exactly what the test hands it (hash-valid bytes a real daemon would never produce)
//! and announces it on the DHT like an honest seeder.

use std::time::Duration;

use futures_util::StreamExt;
use iroh_blobs::api::blobs::AddBytesOptions;
use iroh_blobs::api::TempTag;
use iroh_blobs::store::mem::MemStore;
use iroh_blobs::BlobFormat;
use libp2p::identity::Keypair;
use seedbank_node::net::{start_network, NetConfig, NetHandle, NetTransport, BLOB_PROTOCOL};
use seedbank_node::peers::PeerBook;
use seedbank_node::transfer::provider::spawn_provider;
use seedbank_node::transfer::traffic::Traffic;
use seedbank_protocol::{ArtifactRoot, BlobHash, ContentId};

use crate::fixtures::wait_until;

/// Most streams a silent peer holds open at once (the test's own bound).
const MAX_HELD_STREAMS: usize = 256;
/// How long the peer may take to listen after it starts.
const LISTEN_TIME: Duration = Duration::from_secs(2);

/// A peer serving hand-made artifacts from memory.
pub struct HostileSeeder {
    runtime: tokio::runtime::Runtime,
    net: NetHandle,
    store: MemStore,
    tags: Vec<TempTag>,
}

impl HostileSeeder {
    /// Starts the peer on 127.0.0.1 (no mDNS, answering DHT queries at once).
    pub fn start() -> Self {
        let runtime = peer_runtime();
        let (store, net) = runtime.block_on(async {
            let store = MemStore::new();
            let net = start_network(
                Keypair::generate_ed25519(),
                loopback_config(),
                NetTransport::Default,
            )
            .await
            .expect("starting the hostile peer's network");
            spawn_provider(
                &net,
                store.as_ref().clone(),
                Traffic::new(None, None),
                PeerBook::default(),
                None,
            )
            .expect("serving blobs");
            (store, net)
        });
        Self {
            runtime,
            net,
            store,
            tags: Vec::new(),
        }
    }

    /// Starts a peer that holds nothing and answers every blob request by relaying it,
    /// byte for byte, to the daemon at `victim` (a peer address) and back: a provider
    /// that passes a spot check only if the victim serves the challenged range. At most
    /// [`MAX_HELD_STREAMS`] relays at once.
    pub fn start_relaying_to(victim: &str) -> Self {
        let address: libp2p::Multiaddr = victim.parse().expect("victim's peer address");
        let Some(libp2p::multiaddr::Protocol::P2p(victim_peer)) = address.iter().last() else {
            panic!("{victim} does not end with /p2p/PEER_ID");
        };
        let runtime = peer_runtime();
        let (store, net) = runtime.block_on(async {
            let config = NetConfig {
                bootstrap: vec![address.clone()],
                ..loopback_config()
            };
            let net = start_network(Keypair::generate_ed25519(), config, NetTransport::Default)
                .await
                .expect("starting the relaying peer's network");
            let mut incoming = net
                .stream_control()
                .accept(BLOB_PROTOCOL)
                .expect("accepting blob streams");
            let mut control = net.stream_control();
            let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_HELD_STREAMS));
            tokio::spawn(async move {
                while let Some((_, inbound)) = incoming.next().await {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let Ok(outbound) = control.open_stream(victim_peer, BLOB_PROTOCOL).await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let (from_asker, to_asker) = futures_util::AsyncReadExt::split(inbound);
                        let (from_victim, to_victim) = futures_util::AsyncReadExt::split(outbound);
                        let _ = futures_util::future::join(
                            pipe(from_asker, to_victim),
                            pipe(from_victim, to_asker),
                        )
                        .await;
                        drop(slot);
                    });
                }
            });
            (MemStore::new(), net)
        });
        Self {
            runtime,
            net,
            store,
            tags: Vec::new(),
        }
    }

    /// Starts a peer that announces what it is told to and accepts blob requests but never
    /// answers them: it claims everything and sends nothing.
    pub fn start_silent() -> Self {
        let runtime = peer_runtime();
        let (store, net) = runtime.block_on(async {
            let net = start_network(
                Keypair::generate_ed25519(),
                loopback_config(),
                NetTransport::Default,
            )
            .await
            .expect("starting the silent peer's network");
            let mut incoming = net
                .stream_control()
                .accept(BLOB_PROTOCOL)
                .expect("accepting blob streams");
            tokio::spawn(async move {
                let mut held = std::collections::VecDeque::new();
                while let Some((_, stream)) = incoming.next().await {
                    if held.len() == MAX_HELD_STREAMS {
                        held.pop_front();
                    }
                    held.push_back(stream);
                }
            });
            (MemStore::new(), net)
        });
        Self {
            runtime,
            net,
            store,
            tags: Vec::new(),
        }
    }

    /// Announces `root` as if it held it.
    pub fn claim(&self, root: ContentId) {
        self.runtime
            .block_on(self.net.start_providing(root))
            .expect("announcing");
    }

    /// Its TCP address with its peer id, for daemons to bootstrap from.
    pub fn peer_address(&self) -> String {
        let address = wait_until("the hostile peer to listen", LISTEN_TIME, || {
            let status = self
                .runtime
                .block_on(self.net.status())
                .expect("network status");
            let tcp = status.listen_addresses.iter().find(|a| a.contains("/tcp/"));
            tcp.cloned()
                .ok_or_else(|| format!("listening on {:?}", status.listen_addresses))
        });
        format!("{address}/p2p/{}", self.net.local_peer())
    }

    /// Serves an artifact whose manifest blob holds `manifest_bytes` (encoded however
    /// the test likes) and whose root lists `file_hashes`, and announces it. Returns its id.
    pub fn serve_artifact(
        &mut self,
        manifest_bytes: Vec<u8>,
        file_hashes: Vec<BlobHash>,
    ) -> ContentId {
        let (root, tags) = self.runtime.block_on(async {
            let manifest = self.add(manifest_bytes, BlobFormat::Raw).await;
            let root = ArtifactRoot {
                manifest: BlobHash(*manifest.hash().as_bytes()),
                files: file_hashes,
            };
            let root_tag = self.add(root.encode(), BlobFormat::HashSeq).await;
            let id = ContentId::from_hash(BlobHash(*root_tag.hash().as_bytes()));
            self.net.start_providing(id).await.expect("announcing");
            (id, vec![manifest, root_tag])
        });
        self.tags.extend(tags);
        root
    }

    /// Holds `bytes` as a blob it serves (a file of an artifact it then serves with
    /// [`Self::serve_artifact`]); returns the blob's hash.
    pub fn serve_blob(&mut self, bytes: Vec<u8>) -> BlobHash {
        let tag = self.runtime.block_on(self.add(bytes, BlobFormat::Raw));
        let hash = BlobHash(*tag.hash().as_bytes());
        self.tags.push(tag);
        hash
    }

    /// Its peer id.
    pub fn peer_id(&self) -> String {
        self.net.local_peer().to_string()
    }

    async fn add(&self, bytes: Vec<u8>, format: BlobFormat) -> TempTag {
        self.store
            .blobs()
            .add_bytes_with_opts(AddBytesOptions {
                data: bytes.into(),
                format,
            })
            .temp_tag()
            .await
            .expect("adding bytes to the hostile peer's store")
    }
}

/// Copies `from` into `to` until `from` ends (or a minute passes), then closes `to`.
async fn pipe(
    mut from: impl futures_util::AsyncRead + Unpin,
    mut to: impl futures_util::AsyncWrite + Unpin,
) {
    let copy = futures_util::io::copy(&mut from, &mut to);
    let _ = tokio::time::timeout(Duration::from_secs(60), copy).await;
    let _ = futures_util::AsyncWriteExt::close(&mut to).await;
}

/// Loopback only, no mDNS, answering DHT queries at once.
fn loopback_config() -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("listen address")],
        mdns: false,
        kad_server: true,
        ..NetConfig::default()
    }
}

/// The runtime a test peer's network runs on, beside the test's own thread; dropping it
/// stops the peer.
pub(crate) fn peer_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("building a test peer's runtime")
}
