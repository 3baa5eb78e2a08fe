//! The node's wall clock: the one source of the times it stamps and schedules by
//! (`added_at`, pins, last use, releases, re-put and re-announce schedules, denylist
//! refreshes). Monotonic timeouts and intervals use tokio's `Instant` instead.
//!
//! The daemon makes one [`Clock`] when it starts and hands a clone to every part that
//! stamps time; nothing reads the system time on its own. A test moves the clock
//! forward rather than sleeping until the wall clock does: a daemon started with the
//! hidden `--test-clock` flag runs on [`Clock::advanceable`], which keeps flowing with
//! the wall clock plus whatever the tests added; unit tests may use [`Clock::manual`],
//! which stands still until advanced.
//!
//! Invariants: a clock never goes back on its own account (an advance only adds), and
//! [`Clock::system`] cannot be moved at all, so nothing reachable in a real daemon can
//! shift the times it keeps. Leaf module: it imports nothing from the crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most one [`Clock::advance`] may move a clock: ten years is far past every schedule
/// the node keeps (re-announcements every 12 hours, record re-puts every 6), so no test
/// needs more, and a typo of a few digits too many is refused instead of sending every
/// stamp the daemon writes centuries ahead.
pub const MAX_ADVANCE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Why a clock was not moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The clock is the plain wall clock ([`Clock::system`]), which nothing moves.
    #[error("this clock follows the system time and cannot be moved")]
    NotAdvanceable,
    /// More than [`MAX_ADVANCE`] at once.
    #[error("cannot move the clock {asked} s at once; at most {max} s (10 years)", asked = .asked.as_secs(), max = MAX_ADVANCE.as_secs())]
    TooFar {
        /// What was asked for.
        asked: Duration,
    },
}

/// The node's wall clock; clones share one time. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: Base,
    /// Whether [`Clock::advance`] may move it.
    advanceable: bool,
    /// Milliseconds added by [`Clock::advance`] so far.
    offset_millis: AtomicU64,
}

/// Where a clock's time comes from before its offset is added.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// The system's wall clock.
    Wall,
    /// A fixed instant, in milliseconds since the Unix epoch.
    Fixed(u64),
}

impl Clock {
    /// The system's wall clock, which cannot be moved: what a daemon runs on.
    pub fn system() -> Self {
        Self::new(Base::Wall, false)
    }

    /// The system's wall clock that [`Clock::advance`] can move forward: what a daemon
    /// started with `--test-clock` runs on. Time keeps flowing between advances.
    pub fn advanceable() -> Self {
        Self::new(Base::Wall, true)
    }

    /// A clock standing still at `since_epoch` after the Unix epoch until advanced, for
    /// unit tests that need exact times.
    pub fn manual(since_epoch: Duration) -> Self {
        Self::new(Base::Fixed(millis(since_epoch)), true)
    }

    fn new(base: Base, advanceable: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                base,
                advanceable,
                offset_millis: AtomicU64::new(0),
            }),
        }
    }

    /// Milliseconds since the Unix epoch (0 if the system clock is set before it).
    pub fn now_millis(&self) -> u64 {
        let base = match self.inner.base {
            Base::Wall => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, millis),
            Base::Fixed(at) => at,
        };
        base.saturating_add(self.inner.offset_millis.load(Ordering::Relaxed))
    }

    /// Whole seconds since the Unix epoch.
    pub fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }

    /// Whether [`Clock::advance`] may move this clock.
    pub fn is_advanceable(&self) -> bool {
        self.inner.advanceable
    }

    /// How far advances have moved this clock so far.
    pub fn advanced(&self) -> Duration {
        Duration::from_millis(self.inner.offset_millis.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `by` for every clone; returns how far advances have
    /// moved it in all. Refused on [`Clock::system`] and beyond [`MAX_ADVANCE`] at once.
    pub fn advance(&self, by: Duration) -> Result<Duration, ClockError> {
        if !self.inner.advanceable {
            return Err(ClockError::NotAdvanceable);
        }
        if by > MAX_ADVANCE {
            return Err(ClockError::TooFar { asked: by });
        }
        let by = millis(by);
        let before = self
            .inner
            .offset_millis
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| {
                Some(offset.saturating_add(by))
            })
            // The closure always returns `Some`, so the update cannot fail.
            .unwrap_or_else(|offset| offset);
        Ok(Duration::from_millis(before.saturating_add(by)))
    }
}

/// Whole milliseconds of `duration`, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_follows_the_wall_clock_and_cannot_be_moved() {
        let clock = Clock::system();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(clock.now_secs().abs_diff(wall) <= 1);
        assert!(!clock.is_advanceable());
        assert_eq!(
            clock.advance(Duration::from_secs(1)),
            Err(ClockError::NotAdvanceable)
        );
        assert!(clock.now_secs().abs_diff(wall) <= 1);
        assert_eq!(clock.advanced(), Duration::ZERO);
    }

    #[test]
    fn a_manual_clock_stands_still_until_advanced_and_clones_share_it() {
        let clock = Clock::manual(Duration::from_millis(1_700_000_000_250));
        let clone = clock.clone();
        assert_eq!(clock.now_millis(), 1_700_000_000_250);
        assert_eq!(clock.now_secs(), 1_700_000_000);
        assert_eq!(
            clone.advance(Duration::from_millis(750)).unwrap(),
            Duration::from_millis(750)
        );
        assert_eq!(clock.now_secs(), 1_700_000_001);
        assert_eq!(
            clock.advance(Duration::from_secs(2)).unwrap(),
            Duration::from_millis(2_750)
        );
        assert_eq!(clone.now_millis(), 1_700_000_003_000);
        assert_eq!(clock.advanced(), Duration::from_millis(2_750));
    }

    #[test]
    fn an_advanceable_clock_keeps_flowing_ahead_of_the_wall_clock() {
        let clock = Clock::advanceable();
        let before = Clock::system().now_millis();
        clock.advance(Duration::from_secs(3600)).unwrap();
        let now = clock.now_millis();
        let after = Clock::system().now_millis();
        assert!(now >= before + 3_600_000, "{now} vs {before}");
        assert!(now <= after + 3_600_000, "{now} vs {after}");
    }

    #[test]
    fn an_advance_beyond_the_bound_is_refused_and_changes_nothing() {
        let clock = Clock::manual(Duration::from_secs(10));
        let asked = MAX_ADVANCE + Duration::from_secs(1);
        assert_eq!(clock.advance(asked), Err(ClockError::TooFar { asked }));
        assert_eq!(clock.now_secs(), 10);
        assert!(clock
            .advance(asked)
            .unwrap_err()
            .to_string()
            .contains("at most"));
        assert_eq!(clock.advance(MAX_ADVANCE).unwrap(), MAX_ADVANCE);
        assert_eq!(clock.now_secs(), 10 + MAX_ADVANCE.as_secs());
    }

    #[test]
    fn the_offset_saturates_instead_of_wrapping() {
        let clock = Clock::manual(Duration::from_millis(u64::MAX - 5));
        clock.advance(Duration::from_secs(1)).unwrap();
        assert_eq!(clock.now_millis(), u64::MAX);
    }
}
