//! Which licences a node seeds (config `seed_licences`).

/// The node's licence allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicencePolicy {
    allowed: Vec<String>,
}

impl LicencePolicy {
    /// Seeds only `allowed` (compared without regard to case); everything when empty.
    pub fn new(allowed: Vec<String>) -> Self {
        Self { allowed }
    }

    /// Whether the node seeds an artifact under `licence`. With an allowlist, an
    /// artifact under no known licence is not seeded.
    pub fn allows(&self, licence: Option<&str>) -> bool {
        self.allowed.is_empty()
            || licence.is_some_and(|l| self.allowed.iter().any(|a| a.eq_ignore_ascii_case(l)))
    }

    /// Why `licence` is refused, for messages.
    pub fn refusal(&self, licence: Option<&str>) -> String {
        format!(
            "this node seeds only {} (seed_licences), and this artifact is under {}",
            self.allowed.join(", "),
            licence.map_or("no stated licence".to_owned(), |l| format!("licence {l}"))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_allows_everything_and_a_list_only_its_licences() {
        assert!(LicencePolicy::default().allows(None));
        let policy = LicencePolicy::new(vec!["MIT".into(), "Apache-2.0".into()]);
        assert!(policy.allows(Some("mit")));
        assert!(!policy.allows(Some("CC-BY-NC-4.0")));
        assert!(!policy.allows(None));
        assert!(policy.refusal(Some("GPL-3.0")).contains("MIT, Apache-2.0"));
    }
}
