//! Counts kept per key (per IP address, per provider) that vanish when they reach zero,
//! so maps keyed by what peers choose never keep entries for peers that left.

use std::collections::HashMap;
use std::hash::Hash;

/// Takes one from `key`'s count, forgetting the key at zero.
pub fn decrement<K: Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}
