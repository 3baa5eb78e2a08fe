//! Which under-replicated artifacts a preserver fetches this round: least-replicated
//! first, within its disk budget, at most a few per round, ties broken at random.
//!
//! Many preservers watch the same collections and see the same copy drop at about the
//! same time. The cap, the random tie-break and the re-check after a random wait
//! ([`super::keeper`]) keep them from all fetching the same artifact at once: each
//! takes a few, and finds the others already repaired when it looks again.

/// An artifact a preserver could fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<T> {
    /// What to fetch (a root, in the node).
    pub item: T,
    /// Its size in bytes.
    pub size: u64,
    /// Copies that proved they exist.
    pub verified: u32,
    /// Copies wanted.
    pub target: u32,
}

/// The candidates to fetch, in order: those below their target, fewest verified
/// copies first (then the largest shortfall), ties in the order `random` gives, taking
/// each that fits in `budget_left` (`None`: no budget) until `cap` are chosen.
pub fn choose_repairs<T: Clone>(
    candidates: &[Candidate<T>],
    budget_left: Option<u64>,
    cap: usize,
    random: impl FnMut() -> u64,
) -> Vec<Candidate<T>> {
    let mut random = random;
    let mut under: Vec<(Candidate<T>, u64)> = candidates
        .iter()
        .filter(|c| c.verified < c.target)
        .map(|c| (c.clone(), random()))
        .collect();
    under.sort_by(|(a, ra), (b, rb)| {
        a.verified
            .cmp(&b.verified)
            .then((b.target - b.verified).cmp(&(a.target - a.verified)))
            .then(ra.cmp(rb))
    });
    let mut left = budget_left;
    let mut chosen = Vec::new();
    for (candidate, _) in under {
        if chosen.len() >= cap {
            break;
        }
        match left {
            Some(bytes) if candidate.size > bytes => continue,
            Some(bytes) => left = Some(bytes - candidate.size),
            None => {}
        }
        chosen.push(candidate);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(item: u8, size: u64, verified: u32, target: u32) -> Candidate<u8> {
        Candidate {
            item,
            size,
            verified,
            target,
        }
    }

    fn items(chosen: &[Candidate<u8>]) -> Vec<u8> {
        chosen.iter().map(|c| c.item).collect()
    }

    #[test]
    fn least_replicated_first_and_none_at_target() {
        let candidates = [
            candidate(1, 10, 2, 3),
            candidate(2, 10, 0, 3),
            candidate(3, 10, 3, 3),
            candidate(4, 10, 1, 3),
            candidate(5, 10, 1, 5),
        ];
        let chosen = choose_repairs(&candidates, None, 10, || 0);
        assert_eq!(items(&chosen), vec![2, 5, 4, 1], "3 is at its target");
    }

    #[test]
    fn the_budget_skips_what_does_not_fit_and_the_cap_stops() {
        let candidates = [
            candidate(1, 60, 0, 3),
            candidate(2, 50, 1, 3),
            candidate(3, 30, 1, 3),
            candidate(4, 10, 2, 3),
        ];
        let chosen = choose_repairs(&candidates, Some(100), 10, || 0);
        assert_eq!(items(&chosen), vec![1, 3, 4], "2 no longer fits after 1");
        let chosen = choose_repairs(&candidates, Some(100), 2, || 0);
        assert_eq!(items(&chosen), vec![1, 3]);
        assert!(choose_repairs(&candidates, Some(5), 10, || 0).is_empty());
    }

    #[test]
    fn ties_are_broken_at_random_so_preservers_spread() {
        let candidates: Vec<Candidate<u8>> = (0..20).map(|i| candidate(i, 1, 1, 3)).collect();
        let mut seed = 7u64;
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..20 {
            let chosen = choose_repairs(&candidates, None, 1, || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed >> 33
            });
            firsts.insert(chosen[0].item);
        }
        assert!(firsts.len() > 5, "only {firsts:?} were ever chosen first");
    }
}
