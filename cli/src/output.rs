//! How results look in a terminal: sizes, tables, progress bars, one-line errors.

use indicatif::{ProgressBar, ProgressStyle};
use seedbank_protocol::api::Progress;

/// An error and its causes on one line.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Bytes in binary units, e.g. `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
pub fn progress_bar(verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(verb.to_owned());
    bar
}

/// Moves `bar` to what `progress` says.
pub fn update_bar(bar: &ProgressBar, progress: &Progress) {
    bar.set_length(progress.total_bytes);
    bar.set_position(progress.done_bytes);
    if let Some(current) = &progress.current {
        bar.set_message(current.clone());
    }
}

/// Prints rows as left-aligned columns under `header`.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fold_onto_one_line() {
        let error = anyhow::anyhow!("disk full").context("adding /data/model");
        assert_eq!(one_line(&error), "adding /data/model: disk full");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(1536), "1.50 KiB");
    }
}
