//! Which failures of a fetch a later try may mend.

use crate::error::NodeError;

/// Whether trying again later may succeed: the network may change, the artifact will not.
pub(super) fn retry_may_mend(error: &NodeError) -> bool {
    matches!(
        error,
        NodeError::Unreachable(_)
            | NodeError::TimedOut(_)
            | NodeError::PeerMisbehaved(_)
            | NodeError::Store(_)
            | NodeError::Io { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_network_failures_are_retried() {
        assert!(retry_may_mend(&NodeError::Unreachable("x".into())));
        assert!(retry_may_mend(&NodeError::TimedOut("x".into())));
        assert!(!retry_may_mend(&NodeError::Cancelled("x".into())));
        assert!(!retry_may_mend(&NodeError::DiskFull("x".into())));
        assert!(!retry_may_mend(&NodeError::NothingMatches("x".into())));
        assert!(!retry_may_mend(&NodeError::Internal("x".into())));
        assert!(!retry_may_mend(&NodeError::NetworkStopped));
    }
}
