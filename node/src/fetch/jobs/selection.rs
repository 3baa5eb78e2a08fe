//! Which files a fetch job covers, as requests join it: the union of their selections.

/// The union of two selections, or `None` if `running` already covers `wanted`. An
/// empty selection means every file.
pub(super) fn widened(running: &[String], wanted: &[String]) -> Option<Vec<String>> {
    if running.is_empty() {
        return None;
    }
    if wanted.is_empty() {
        return Some(Vec::new());
    }
    if wanted.iter().all(|glob| running.contains(glob)) {
        return None;
    }
    let mut union = running.to_vec();
    union.extend(wanted.iter().filter(|g| !running.contains(g)).cloned());
    Some(union)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(list: &[&str]) -> Vec<String> {
        list.iter().map(|g| (*g).to_owned()).collect()
    }

    #[test]
    fn a_wider_selection_widens_and_a_narrower_one_joins() {
        assert_eq!(widened(&[], &globs(&["*.json"])), None, "all covers any");
        assert_eq!(widened(&globs(&["*.json"]), &globs(&["*.json"])), None);
        assert_eq!(
            widened(&globs(&["*.json"]), &globs(&["*.bin"])),
            Some(globs(&["*.json", "*.bin"]))
        );
        assert_eq!(widened(&globs(&["*.json"]), &[]), Some(Vec::new()));
    }
}
