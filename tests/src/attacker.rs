//! Attackers for end-to-end tests: peers built from libp2p that speak the node's
//! protocols and misbehave on purpose, from their own loopback source address (the whole
//! of 127.0.0.0/8 is loopback, so an attacker at 127.0.0.66 is told apart from honest
//! daemons at 127.0.0.1 by per-address limits). Each is bounded in count and time by
//! the test that starts it, and stops when dropped.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{AsyncReadExt, FutureExt, StreamExt};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{noise, yamux, Multiaddr, PeerId, Transport};
use seedbank_node::net::{start_network, NetConfig, NetHandle, NetTransport, BLOB_PROTOCOL};
use seedbank_protocol::blob_wire::BUSY_ANSWER;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::fixtures::wait_until;
use crate::hostile::peer_runtime;

/// A dial-only TCP transport whose connections leave from `source`.
struct TcpFrom {
    /// The address connections leave from.
    pub source: IpAddr,
}

impl Transport for TcpFrom {
    type Output = Compat<tokio::net::TcpStream>;
    type Error = io::Error;
    type ListenerUpgrade = futures_util::future::Pending<io::Result<Self::Output>>;
    type Dial = BoxFuture<'static, io::Result<Self::Output>>;

    fn listen_on(
        &mut self,
        _id: ListenerId,
        address: Multiaddr,
    ) -> Result<(), TransportError<io::Error>> {
        Err(TransportError::MultiaddrNotSupported(address))
    }

    fn remove_listener(&mut self, _id: ListenerId) -> bool {
        false
    }

    fn dial(
        &mut self,
        address: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<io::Error>> {
        let Some(target) = socket_address(&address) else {
            return Err(TransportError::MultiaddrNotSupported(address));
        };
        let source = self.source;
        Ok(async move {
            let socket = match source {
                IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.bind(SocketAddr::new(source, 0))?;
            let stream = socket.connect(target).await?;
            stream.set_nodelay(true)?;
            Ok(stream.compat())
        }
        .boxed())
    }

    fn poll(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Poll::Pending
    }
}

fn socket_address(address: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = address.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => IpAddr::V4(ip),
        Protocol::Ip6(ip) => IpAddr::V6(ip),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

/// A victim's `/ip4/…/tcp/…/p2p/…` address and its peer id.
fn parse_victim(victim: &str) -> (Multiaddr, PeerId) {
    let victim: Multiaddr = victim.parse().expect("victim address");
    let Some(Protocol::P2p(peer)) = victim.iter().last() else {
        panic!("victim address {victim} lacks /p2p/");
    };
    (victim, peer)
}

/// Starts a network identity that dials out from `source` only and listens nowhere.
async fn start_identity(source: IpAddr, bootstrap: &Multiaddr) -> NetHandle {
    let transport = NetTransport::Custom(Box::new(move |key: &Keypair| {
        TcpFrom { source }
            .upgrade(Version::V1Lazy)
            .authenticate(noise::Config::new(key).expect("noise keys"))
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed()
    }));
    let config = NetConfig {
        listen: Vec::new(),
        bootstrap: vec![bootstrap.clone()],
        mdns: false,
        kad_server: false,
        ..NetConfig::default()
    };
    start_network(Keypair::generate_ed25519(), config, transport)
        .await
        .expect("starting an attacker identity")
}

/// The DHT behaviour of the attackers that speak it.
pub(crate) type KadBehaviour = libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>;

/// Adds the victim (`…/p2p/<id>`) to `swarm`'s routing table and dials it.
fn aim_at(swarm: &mut libp2p::Swarm<KadBehaviour>, victim: &Multiaddr, victim_peer: PeerId) {
    let mut bare = victim.clone();
    bare.pop();
    swarm.behaviour_mut().add_address(&victim_peer, bare);
    swarm.dial(victim.clone()).expect("dialling the victim");
}

/// Sends a flood until `send` has no more or `within` passes: `send` starts the next
/// query (`Some(false)` if it could not, `None` when done), at most `at_once` run at
/// once, and `outcome` tells each finished query of the flood's kind, true if the
/// victim acknowledged it.
async fn run_flood(
    swarm: &mut libp2p::Swarm<KadBehaviour>,
    within: Duration,
    at_once: usize,
    mut send: impl FnMut(&mut KadBehaviour) -> Option<bool>,
    outcome: impl Fn(&libp2p::kad::QueryResult) -> Option<bool>,
) -> FloodReport {
    use libp2p::kad;
    use libp2p::swarm::SwarmEvent;

    let deadline = tokio::time::Instant::now() + within;
    let mut report = FloodReport::default();
    let (mut in_flight, mut more) = (0usize, true);
    while (more || in_flight > 0) && tokio::time::Instant::now() < deadline {
        while more && in_flight < at_once {
            match send(swarm.behaviour_mut()) {
                Some(true) => in_flight += 1,
                Some(false) => {}
                None => more = false,
            }
        }
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some()).await;
        let Ok(event) = event else { break };
        if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed { result, step, .. }) =
            event
        {
            match outcome(&result) {
                Some(acknowledged) if step.last => {
                    in_flight -= 1;
                    if acknowledged {
                        report.acknowledged += 1;
                    } else {
                        report.failed += 1;
                    }
                }
                _ => {}
            }
        }
    }
    report
}

/// A Kademlia peer in server mode with identity `identity`, dialling out from `source`
/// only, its store configured by `store`, for attackers that speak the DHT.
pub(crate) fn kad_swarm_from(
    source: IpAddr,
    identity: Keypair,
    store: libp2p::kad::store::MemoryStoreConfig,
) -> libp2p::Swarm<KadBehaviour> {
    use libp2p::kad;

    libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_other_transport(|key| {
            TcpFrom { source }
                .upgrade(Version::V1Lazy)
                .authenticate(noise::Config::new(key).expect("noise keys"))
                .multiplex(yamux::Config::default())
        })
        .expect("attacker transport")
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let store = kad::store::MemoryStore::with_config(peer, store);
            let mut config = kad::Config::new(seedbank_node::net::KAD_PROTOCOL);
            config.set_query_timeout(Duration::from_secs(10));
            config.set_max_packet_size(256 * 1024);
            let mut kad = kad::Behaviour::with_config(peer, store, config);
            kad.set_mode(Some(kad::Mode::Server));
            kad
        })
        .expect("attacker behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Throw-away identities that each hold blob streams open on a victim and never send
/// a request, reopening any stream the victim closes.
pub struct StreamHoarder {
    /// Runs the identities; dropping it stops them.
    _runtime: tokio::runtime::Runtime,
    opened: Arc<AtomicU64>,
    busy_answers: Arc<AtomicU64>,
}

impl StreamHoarder {
    /// Starts `identities` identities from `source`, each holding `streams_each` idle
    /// streams on the daemon at `victim` (`/ip4/…/tcp/…/p2p/…`).
    pub fn start(victim: &str, source: IpAddr, identities: usize, streams_each: usize) -> Self {
        let runtime = peer_runtime();
        let (victim, victim_peer) = parse_victim(victim);
        let opened = Arc::new(AtomicU64::new(0));
        let busy_answers = Arc::new(AtomicU64::new(0));
        for _ in 0..identities {
            let victim = victim.clone();
            let (opened, busy_answers) = (opened.clone(), busy_answers.clone());
            runtime.spawn(async move {
                let net = start_identity(source, &victim).await;
                for _ in 0..streams_each {
                    let net = net.clone();
                    let (opened, busy_answers) = (opened.clone(), busy_answers.clone());
                    tokio::spawn(hold_streams(net, victim_peer, opened, busy_answers));
                }
            });
        }
        Self {
            _runtime: runtime,
            opened,
            busy_answers,
        }
    }

    /// Streams opened so far (reopenings included).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Busy answers received so far.
    pub fn busy_answers(&self) -> u64 {
        self.busy_answers.load(Ordering::Relaxed)
    }

    /// Waits until at least `streams` streams were opened, or panics after `within`.
    pub fn wait_until_opened(&self, streams: u64, within: Duration) {
        let what = format!("the attacker to open {streams} streams");
        wait_until(&what, within, || match self.opened() {
            opened if opened >= streams => Ok(()),
            opened => Err(format!("{opened} opened")),
        });
    }

    /// Waits until the victim has answered busy at least once: every stream slot it
    /// would give these identities is taken.
    pub fn wait_until_refused(&self, within: Duration) {
        wait_until("a busy answer from the victim", within, || {
            match self.busy_answers() {
                0 => Err(format!("{} streams opened, no busy answer", self.opened())),
                _ => Ok(()),
            }
        });
    }
}

/// Holds one stream slot: opens a stream, sends nothing, reads until the victim closes
/// it, and opens another.
async fn hold_streams(
    net: NetHandle,
    victim: PeerId,
    opened: Arc<AtomicU64>,
    busy_answers: Arc<AtomicU64>,
) {
    loop {
        let Ok(mut stream) = net
            .stream_control()
            .open_stream(victim, BLOB_PROTOCOL)
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let mut answer = Vec::new();
        let _ = (&mut stream).take(64).read_to_end(&mut answer).await;
        if answer == BUSY_ANSWER {
            busy_answers.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a provider-record flood managed to send.
#[derive(Debug, Clone, Copy, Default)]
pub struct FloodReport {
    /// Announcements the victim acknowledged.
    pub acknowledged: u64,
    /// Announcements that failed or timed out.
    pub failed: u64,
}

/// Announces `keys` random keys to the daemon at `victim` from one identity at
/// `source`, each record carrying `addresses` made-up loopback addresses (ADD_PROVIDER
/// messages). At most 256 announcements are in flight; gives up after `within`.
pub fn flood_provider_records(
    victim: &str,
    source: IpAddr,
    keys: usize,
    addresses: usize,
    within: Duration,
) -> FloodReport {
    use libp2p::kad::store::MemoryStoreConfig;
    use libp2p::kad::{QueryResult, RecordKey};

    let runtime = peer_runtime();
    let (victim, victim_peer) = parse_victim(victim);
    runtime.block_on(async move {
        let mut swarm = kad_swarm_from(
            source,
            Keypair::generate_ed25519(),
            MemoryStoreConfig {
                max_provided_keys: keys + 1,
                ..MemoryStoreConfig::default()
            },
        );
        for i in 0..addresses {
            let address = format!(
                "/ip4/127.{}.{}.{}/tcp/9",
                i / 62_500 % 250,
                i / 250 % 250,
                i % 250 + 1
            );
            swarm.add_external_address(address.parse().expect("made-up address"));
        }
        aim_at(&mut swarm, &victim, victim_peer);
        let mut started = 0usize;
        let send = |kad: &mut KadBehaviour| {
            (started < keys).then(|| {
                let key = RecordKey::new(blake3::hash(&started.to_le_bytes()).as_bytes());
                started += 1;
                kad.start_providing(key).is_ok()
            })
        };
        let outcome = |result: &QueryResult| match result {
            QueryResult::StartProviding(result) => Some(result.is_ok()),
            _ => None,
        };
        run_flood(&mut swarm, within, 256, send, outcome).await
    })
}

/// TCP connections from one address that never say a word, each renewed when the
/// victim closes it or after 10 s, until dropped.
pub struct SilentConnections {
    /// Runs the connections; dropping it closes them.
    _runtime: tokio::runtime::Runtime,
    opened: Arc<AtomicU64>,
}

impl SilentConnections {
    /// Opens `count` connections from `source` to `target` and keeps them open.
    pub fn start(target: SocketAddr, source: IpAddr, count: usize) -> Self {
        let runtime = peer_runtime();
        let opened = Arc::new(AtomicU64::new(0));
        for _ in 0..count {
            let opened = opened.clone();
            runtime.spawn(async move {
                loop {
                    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                    if socket.bind(SocketAddr::new(source, 0)).is_err() {
                        return;
                    }
                    let Ok(mut stream) = socket.connect(target).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    let mut byte = [0u8; 1];
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        tokio::io::AsyncReadExt::read(&mut stream, &mut byte),
                    )
                    .await;
                    // Bounded in rate: a closed connection is renewed after a pause.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        Self {
            _runtime: runtime,
            opened,
        }
    }

    /// Connections opened so far (renewals included).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// The TCP socket address in a `/ip4/…/tcp/…[/p2p/…]` address.
pub fn tcp_socket_address(address: &str) -> SocketAddr {
    socket_address(&address.parse().expect("address")).expect("a TCP address")
}

/// Puts `records` (DHT key and value, sent unchecked) to the daemon at `victim` from
/// one identity at `source` (PUT_VALUE messages); at most 64 puts are in flight; gives
/// up after `within`.
pub fn flood_value_records(
    victim: &str,
    source: IpAddr,
    records: Vec<([u8; 32], Vec<u8>)>,
    within: Duration,
) -> FloodReport {
    use libp2p::kad::{self, QueryResult, Record, RecordKey};

    let runtime = peer_runtime();
    let (victim, victim_peer) = parse_victim(victim);
    runtime.block_on(async move {
        let mut swarm = kad_swarm_from(source, Keypair::generate_ed25519(), Default::default());
        aim_at(&mut swarm, &victim, victim_peer);
        let mut records = records.into_iter();
        let send = |kad: &mut KadBehaviour| {
            let (key, value) = records.next()?;
            let record = Record::new(RecordKey::new(&key), value);
            kad.put_record_to(record, std::iter::once(victim_peer), kad::Quorum::One);
            Some(true)
        };
        let outcome = |result: &QueryResult| match result {
            QueryResult::PutRecord(result) => Some(result.is_ok()),
            _ => None,
        };
        run_flood(&mut swarm, within, 64, send, outcome).await
    })
}
