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
use futures_util::{AsyncReadExt, FutureExt};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{noise, yamux, Multiaddr, PeerId, Transport};
use seedbank_node::net::{start_network, NetConfig, NetHandle, NetTransport, BLOB_PROTOCOL};
use seedbank_protocol::blob_wire::BUSY_ANSWER;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// A dial-only TCP transport whose connections leave from `source`.
struct TcpFrom {
    source: IpAddr,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("building the attacker's runtime");
        let victim: Multiaddr = victim.parse().expect("victim address");
        let Some(Protocol::P2p(victim_peer)) = victim.iter().last() else {
            panic!("victim address lacks /p2p/");
        };
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
        let deadline = std::time::Instant::now() + within;
        while self.opened() < streams {
            assert!(
                std::time::Instant::now() < deadline,
                "the attacker opened only {} streams",
                self.opened()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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
