//! Percentiles for scenario reports.

use std::time::Duration;

use serde::Serialize;

/// Nearest-rank percentiles of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Percentiles of `samples` (nearest rank); zeros when there are none.
pub fn spread(samples: &[f64]) -> Spread {
    if samples.is_empty() {
        return Spread::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    };
    Spread {
        p50: at(0.50),
        p90: at(0.90),
        p95: at(0.95),
        p99: at(0.99),
    }
}

/// Percentiles of durations, in milliseconds.
pub fn spread_ms(samples: &[Duration]) -> Spread {
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    spread(&ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = spread_ms(&samples);
        assert_eq!((p.p50, p.p90, p.p95, p.p99), (50.0, 90.0, 95.0, 99.0));
        assert_eq!(spread(&[]).p50, 0.0);
        assert_eq!(spread(&[3.0]).p99, 3.0);
    }
}
