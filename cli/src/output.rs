//! How results look in a terminal: sizes, counts, durations, tables, one-line errors,
//! and [`print`], which every command's result goes through: JSON with `--json`, else
//! the command's own text.
//!
//! Everything meant for stdout goes through [`write_line`] (or [`outln!`]): when stdout
//! is a pipe that closed (`seedbank ls | head -1`), the command ends quietly with exit
//! code 0, as it would under the default SIGPIPE action, instead of `println!`'s panic.
//! (Resetting SIGPIPE itself needs `unsafe`, which the workspace forbids.)

use std::fmt;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

/// `println!` for command output: see [`write_line`].
macro_rules! outln {
    () => {
        $crate::output::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes one line to stdout. A closed pipe ends the process with exit code 0 (the
/// reader has what it wanted); any other write error ends it with exit code 1.
pub fn write_line(line: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(crate::exit::Exit::Ok as i32);
        }
        eprintln!("error: writing to stdout: {error}");
        std::process::exit(crate::exit::Exit::Internal as i32);
    }
}

/// Prints `value` as JSON, or runs `human` to print it as text.
pub fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce()) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human();
    }
    Ok(())
}

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

/// `count` and `noun`, with the noun's plural (`-s`) unless there is exactly one:
/// `1 file`, `2 files`, `0 peers`.
pub fn count(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// A duration in its two largest units, for people: `45s`, `3m 5s`, `3h 12m`, `2d 4h`.
pub fn human_duration(duration: Duration) -> String {
    const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut rest = duration.as_secs();
    let mut parts = Vec::new();
    for (name, seconds) in UNITS {
        let amount = rest / seconds;
        rest %= seconds;
        if amount > 0 || !parts.is_empty() {
            parts.push(format!("{amount}{name}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    match parts.as_slice() {
        [] => "0s".into(),
        [first, second] if second.starts_with('0') => first.clone(),
        _ => parts.join(" "),
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
        outln!("{}", padded.join("  ").trim_end());
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

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(2, "file"), "2 files");
        assert_eq!(count(0, "peer"), "0 peers");
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        let secs = Duration::from_secs;
        assert_eq!(human_duration(secs(0)), "0s");
        assert_eq!(human_duration(secs(45)), "45s");
        assert_eq!(human_duration(secs(185)), "3m 5s");
        assert_eq!(human_duration(secs(3 * 3600 + 12 * 60 + 59)), "3h 12m");
        assert_eq!(human_duration(secs(7200)), "2h");
        assert_eq!(human_duration(secs(2 * 86_400 + 4 * 3600 + 7)), "2d 4h");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1s");
    }
}
