//! The slowest an origin may send before a mirror download counts as dropped, as curl's
//! `--speed-limit`/`--speed-time` and git's `http.lowSpeedLimit`/`http.lowSpeedTime`:
//! an origin that sends one byte every 20 s never trips a read timeout, but it trips
//! this, so a mirror ends (after its resumptions) instead of running on for ever.

use std::time::Duration;

use tokio::time::Instant;

/// Fewer than `limit` bytes per second, averaged over `time`, drops the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowSpeed {
    /// Bytes per second.
    pub limit: u64,
    /// The span the average is taken over.
    pub time: Duration,
}

impl Default for LowSpeed {
    /// 1 KiB/s over 60 s.
    fn default() -> Self {
        Self {
            limit: 1024,
            time: Duration::from_secs(60),
        }
    }
}

impl LowSpeed {
    /// This rule under a rate limit of `cap` bytes per second: at most half of it, so
    /// a limit the user chose never looks like a slow origin.
    pub fn under_cap(self, cap: Option<u64>) -> Self {
        let limit = cap.map_or(self.limit, |cap| self.limit.min(cap / 2));
        Self { limit, ..self }
    }

    /// Starts watching a transfer at `now`.
    pub fn watch(self, now: Instant) -> SpeedWatch {
        SpeedWatch {
            rule: self,
            started: now,
            bytes: 0,
        }
    }
}

/// One transfer's current span under a [`LowSpeed`] rule.
#[derive(Debug)]
pub struct SpeedWatch {
    rule: LowSpeed,
    started: Instant,
    bytes: u64,
}

impl SpeedWatch {
    /// When the current span ends: wait for bytes no longer than this.
    pub fn deadline(&self) -> Instant {
        self.started + self.rule.time
    }

    /// Counts `bytes` that arrived at `now` (0 when the wait reached the deadline).
    /// Fails, saying how slow the origin was, when a whole span went by under the limit;
    /// otherwise starts a new span once one is complete.
    pub fn arrived(&mut self, bytes: u64, now: Instant) -> Result<(), String> {
        self.bytes = self.bytes.saturating_add(bytes);
        if now < self.deadline() {
            return Ok(());
        }
        let floor = self
            .rule
            .limit
            .saturating_mul(self.rule.time.as_secs().max(1));
        if self.bytes < floor {
            return Err(format!(
                "the origin sent {} bytes in {} s, under the floor of {} bytes/s",
                self.bytes,
                self.rule.time.as_secs(),
                self.rule.limit
            ));
        }
        self.started = now;
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_is_dropped_after_one_span_and_a_steady_flow_is_not() {
        let rule = LowSpeed {
            limit: 100,
            time: Duration::from_secs(10),
        };
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);

        let mut steady = rule.watch(start);
        for second in 1..=35 {
            assert_eq!(steady.arrived(150, at(second)), Ok(()));
        }

        let mut trickle = rule.watch(start);
        for second in 1..10 {
            assert_eq!(trickle.arrived(1, at(second)), Ok(()));
        }
        assert_eq!(trickle.deadline(), at(10));
        let error = trickle.arrived(0, at(10)).unwrap_err();
        assert!(error.contains("9 bytes in 10 s"), "{error}");
    }

    #[test]
    fn a_rate_limit_lowers_the_floor_to_half_of_it() {
        let rule = LowSpeed::default();
        assert_eq!(rule.under_cap(None).limit, 1024);
        assert_eq!(rule.under_cap(Some(1000)).limit, 500);
        assert_eq!(rule.under_cap(Some(1 << 20)).limit, 1024);
    }
}
