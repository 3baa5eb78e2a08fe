//! Choosing which artifacts to evict so that new bytes fit under `max_storage`: least
//! recently used first, never one that must stay, and counting as freed only the blobs
//! no remaining artifact still holds. Pure: the quota gathers the facts and carries the
//! plan out.

use std::collections::{HashMap, HashSet};

use seedbank_protocol::{BlobHash, ContentId};

/// An artifact (or a fetch under way) and the blobs it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// Its root.
    pub root: ContentId,
    /// Its root, manifest and file blobs, as far as they are known.
    pub blobs: HashSet<BlobHash>,
    /// When it was last used, milliseconds since the Unix epoch.
    pub last_used: u64,
    /// False for what is never evicted: pinned, being fetched, the target itself.
    pub evictable: bool,
}

/// What is asked to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// New bytes the operation will store.
    pub needed: u64,
    /// Bytes other operations under way have yet to store (already promised to them).
    pub reserved: u64,
    /// `max_storage`.
    pub max: u64,
}

/// The artifacts to evict, in order, with the bytes each frees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictionPlan {
    /// Root and bytes freed, least recently used first.
    pub evict: Vec<(ContentId, u64)>,
}

/// Why nothing can make room: even with every evictable artifact gone, `held` bytes
/// stay, and `held + needed > max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Bytes that would stay: stored and not evictable, plus those reserved.
    pub held: u64,
}

/// Plans the evictions that let `demand` fit, given every holding and the sizes of the
/// stored blobs that count against the quota (a blob missing from `sizes` counts as 0).
/// Fails, evicting nothing, when even evicting everything evictable is not enough.
pub fn plan_eviction(
    holdings: &[Holding],
    sizes: &HashMap<BlobHash, u64>,
    demand: Demand,
) -> Result<EvictionPlan, Shortfall> {
    let used: u64 = sizes.values().sum();
    let fits = |freed: u64| {
        (used - freed)
            .saturating_add(demand.reserved)
            .saturating_add(demand.needed)
            <= demand.max
    };
    if fits(0) {
        return Ok(EvictionPlan::default());
    }
    let mut holders: HashMap<BlobHash, usize> = HashMap::new();
    for holding in holdings {
        for blob in &holding.blobs {
            *holders.entry(*blob).or_default() += 1;
        }
    }
    // A blob some artifact that stays also holds is never freed: evicting an artifact
    // made only of such blobs gains nothing.
    let kept: HashSet<BlobHash> = holdings
        .iter()
        .filter(|h| !h.evictable)
        .flat_map(|h| h.blobs.iter().copied())
        .collect();
    let mut candidates: Vec<&Holding> = holdings
        .iter()
        .filter(|h| h.evictable)
        .filter(|h| {
            h.blobs
                .iter()
                .any(|b| !kept.contains(b) && sizes.get(b).is_some_and(|s| *s > 0))
        })
        .collect();
    candidates.sort_by_key(|h| (h.last_used, h.root.hash()));
    let mut plan = EvictionPlan::default();
    let mut freed = 0u64;
    for candidate in candidates {
        let mut gained = 0;
        for blob in &candidate.blobs {
            if let Some(count) = holders.get_mut(blob) {
                *count -= 1;
                if *count == 0 {
                    gained += sizes.get(blob).copied().unwrap_or(0);
                }
            }
        }
        freed += gained;
        plan.evict.push((candidate.root, gained));
        if fits(freed) {
            return Ok(plan);
        }
    }
    Err(Shortfall {
        held: (used - freed).saturating_add(demand.reserved),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn blob(n: u8) -> BlobHash {
        BlobHash([n; 32])
    }

    fn holding(root: u8, blobs: &[u8], last_used: u64, evictable: bool) -> Holding {
        Holding {
            root: ContentId::from_hash(blob(100 + root)),
            blobs: blobs.iter().map(|b| blob(*b)).collect(),
            last_used,
            evictable,
        }
    }

    fn sizes(blobs: &[(u8, u64)]) -> HashMap<BlobHash, u64> {
        blobs.iter().map(|(b, s)| (blob(*b), *s)).collect()
    }

    fn roots(plan: &EvictionPlan) -> Vec<ContentId> {
        plan.evict.iter().map(|(root, _)| *root).collect()
    }

    fn demand(needed: u64, max: u64) -> Demand {
        Demand {
            needed,
            reserved: 0,
            max,
        }
    }

    #[test]
    fn nothing_is_evicted_while_it_fits() {
        let holdings = [holding(1, &[1], 10, true)];
        let plan = plan_eviction(&holdings, &sizes(&[(1, MIB)]), demand(MIB, 2 * MIB)).unwrap();
        assert!(plan.evict.is_empty());
    }

    #[test]
    fn least_recently_used_go_first_and_only_as_many_as_needed() {
        let holdings = [
            holding(1, &[1], 30, true),
            holding(2, &[2], 10, true),
            holding(3, &[3], 20, true),
        ];
        let stored = sizes(&[(1, MIB), (2, MIB), (3, MIB)]);
        let plan = plan_eviction(&holdings, &stored, demand(2 * MIB, 3 * MIB)).unwrap();
        assert_eq!(roots(&plan), vec![holdings[1].root, holdings[2].root]);
        assert_eq!(plan.evict[0].1, MIB);
    }

    #[test]
    fn pinned_is_never_chosen_however_old() {
        let holdings = [holding(1, &[1], 1, false), holding(2, &[2], 50, true)];
        let stored = sizes(&[(1, MIB), (2, MIB)]);
        let plan = plan_eviction(&holdings, &stored, demand(MIB, 2 * MIB)).unwrap();
        assert_eq!(roots(&plan), vec![holdings[1].root]);
        let short = plan_eviction(&holdings, &stored, demand(2 * MIB, 2 * MIB)).unwrap_err();
        assert_eq!(short.held, MIB);
    }

    #[test]
    fn a_blob_a_kept_artifact_shares_is_never_counted_as_freed() {
        // 1 shares all its bytes with the pinned 2: evicting it gains nothing, so the
        // newer 3 goes instead.
        let holdings = [
            holding(1, &[1], 1, true),
            holding(2, &[1, 2], 99, false),
            holding(3, &[3], 50, true),
        ];
        let stored = sizes(&[(1, MIB), (2, MIB), (3, MIB)]);
        let plan = plan_eviction(&holdings, &stored, demand(MIB, 3 * MIB)).unwrap();
        assert_eq!(roots(&plan), vec![holdings[2].root]);
        let short = plan_eviction(&holdings, &stored, demand(2 * MIB, 3 * MIB)).unwrap_err();
        assert_eq!(short.held, 2 * MIB);
    }

    #[test]
    fn a_blob_two_evictable_artifacts_share_is_freed_with_the_second() {
        let holdings = [holding(1, &[1, 2], 1, true), holding(2, &[2, 3], 2, true)];
        let stored = sizes(&[(1, MIB), (2, 4 * MIB), (3, MIB)]);
        let plan = plan_eviction(&holdings, &stored, demand(3 * MIB, 6 * MIB)).unwrap();
        assert_eq!(
            plan.evict,
            vec![(holdings[0].root, MIB), (holdings[1].root, 5 * MIB)]
        );
    }

    #[test]
    fn when_it_cannot_fit_nothing_is_evicted_and_the_held_bytes_are_told() {
        let holdings = [holding(1, &[1], 1, true), holding(2, &[2], 2, false)];
        let stored = sizes(&[(1, MIB), (2, 2 * MIB)]);
        let demand = Demand {
            needed: 2 * MIB,
            reserved: MIB,
            max: 4 * MIB,
        };
        let short = plan_eviction(&holdings, &stored, demand).unwrap_err();
        assert_eq!(short.held, 3 * MIB);
    }
}
