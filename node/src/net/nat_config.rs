//! Settings for nodes behind NAT and for the relay service this node may offer them.

use std::num::NonZeroU32;
use std::time::Duration;

use libp2p::relay;
use serde::{Deserialize, Serialize};

use crate::units::ByteSize;

/// Whether this node relays for nodes behind NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RelayService {
    /// On once this node knows it is public (a public listen address, or one confirmed
    /// by AutoNAT), off otherwise.
    #[default]
    Auto,
    /// Always on (a server whose public address is not its listen address).
    On,
    /// Never.
    Off,
}

/// Limits of the relay service: what one node behind NAT, one IP address and everyone
/// together may take from this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayLimits {
    /// Most reservations held for others at once.
    pub max_reservations: u32,
    /// Most reservations one peer holds.
    pub max_reservations_per_peer: u32,
    /// New reservations one IP address may make per minute.
    pub reservations_per_ip_per_minute: u32,
    /// How long a reservation lasts before its holder renews it (`1h`).
    #[serde(with = "crate::units::duration_text")]
    pub reservation_duration: Duration,
    /// Most circuits relayed at once.
    pub max_circuits: u32,
    /// Most circuits one peer has relayed at once.
    pub max_circuits_per_peer: u32,
    /// New circuits one IP address may open per minute.
    pub circuits_per_ip_per_minute: u32,
    /// A circuit is closed after this long (`2m`): long enough to punch a hole.
    #[serde(with = "crate::units::duration_text")]
    pub circuit_duration: Duration,
    /// A circuit is closed after this many bytes each way: enough for the DHT, identify
    /// and hole punching, never for a model.
    pub circuit_bytes: ByteSize,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 64,
            max_reservations_per_peer: 1,
            reservations_per_ip_per_minute: 4,
            reservation_duration: Duration::from_secs(3600),
            max_circuits: 16,
            max_circuits_per_peer: 4,
            circuits_per_ip_per_minute: 8,
            circuit_duration: Duration::from_secs(120),
            circuit_bytes: ByteSize::new(1 << 20),
        }
    }
}

impl RelayLimits {
    /// The relay behaviour's configuration.
    pub fn to_relay_config(&self) -> relay::Config {
        let (reservations, reservation_gap) = per_minute(self.reservations_per_ip_per_minute);
        let (circuits, circuit_gap) = per_minute(self.circuits_per_ip_per_minute);
        relay::Config {
            max_reservations: self.max_reservations as usize,
            max_reservations_per_peer: self.max_reservations_per_peer as usize,
            reservation_duration: self.reservation_duration,
            reservation_rate_limiters: Vec::new(),
            max_circuits: self.max_circuits as usize,
            max_circuits_per_peer: self.max_circuits_per_peer as usize,
            max_circuit_duration: self.circuit_duration,
            max_circuit_bytes: self.circuit_bytes.bytes(),
            circuit_src_rate_limiters: Vec::new(),
        }
        .reservation_rate_per_ip(reservations, reservation_gap)
        .circuit_src_per_ip(circuits, circuit_gap)
    }
}

/// `n` per minute as libp2p's rate limiter takes it: a token bucket of `n` tokens at
/// most, one more every minute / `n` (at least one per minute).
fn per_minute(n: u32) -> (NonZeroU32, Duration) {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    (n, Duration::from_secs(60) / n.get())
}

/// Which of the NAT features a node runs: decided once from its settings, so the
/// behaviours it builds and the reachability it reports agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatFeatures {
    /// Listens on loopback only: none of the features below.
    pub local_only: bool,
    /// Asks the home router for port mappings.
    pub port_mapping: bool,
    /// Relays for others (`Off` on the simulator's in-memory network).
    pub relay_service: RelayService,
    /// Reserves slots on relays while behind NAT.
    pub use_relays: bool,
    /// Checks its addresses with AutoNAT and punches holes (real networks only).
    pub real_network: bool,
}

impl NatFeatures {
    /// The features of a node with `config`; `real_network` is false on the simulator's
    /// in-memory transport, which has no addresses to check, map or relay.
    pub fn of(config: &super::NetConfig, real_network: bool) -> Self {
        let beyond_loopback = super::listens_beyond_loopback(&config.listen);
        Self {
            local_only: !beyond_loopback,
            port_mapping: real_network && beyond_loopback && config.port_mapping,
            relay_service: if real_network {
                config.relay_service
            } else {
                RelayService::Off
            },
            use_relays: real_network && beyond_loopback && config.use_relays,
            real_network,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_per_minute_is_a_bucket_of_n_refilled_n_times_a_minute() {
        let eight = NonZeroU32::new(8).unwrap_or(NonZeroU32::MIN);
        assert_eq!(per_minute(8), (eight, Duration::from_millis(7500)));
        assert_eq!(per_minute(0), (NonZeroU32::MIN, Duration::from_secs(60)));
    }
}
