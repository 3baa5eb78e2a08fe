//! Random numbers for the choices a peer must not be able to predict (which providers a
//! health check asks, which nodes and publishers a search reads), from the operating
//! system.

/// A random number; 0 when the system has no entropy to give, so a choice degrades to
/// a fixed order rather than failing.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0;
    }
    u64::from_le_bytes(bytes)
}

/// Shuffles `items` (Fisher–Yates) with numbers drawn from `random`.
pub fn shuffle<T>(items: &mut [T], mut random: impl FnMut() -> u64) {
    for i in (1..items.len()).rev() {
        let j = (random() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shuffle_keeps_every_item_and_moves_some() {
        let mut items: Vec<u32> = (0..100).collect();
        shuffle(&mut items, random_u64);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(items, sorted, "100 items left in order by chance");
    }
}
