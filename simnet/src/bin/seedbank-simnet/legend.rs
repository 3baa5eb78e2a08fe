//! The legend printed under every scenario's table.

/// Prints what each figure of a table means, one line each, names aligned.
pub(crate) fn print_legend(entries: &[(&str, &str)]) {
    let width = entries
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    println!();
    println!("legend:");
    for (name, meaning) in entries {
        println!("  {name:<width$}  {meaning}");
    }
}
