//! Progress bars on stderr for long operations: a total bar with rate and ETA, and one
//! bar per file under way beneath it (indicatif's `MultiProgress`).
//!
//! Invariants: no line is wider than 80 columns (file names are cut to a fixed width);
//! nothing is drawn as a bar until the total is known (a spinner stands in); the rate
//! and ETA count only bytes moved while this command watched, so re-attaching to a fetch
//! that is half done does not show its first half as one burst. indicatif draws nothing
//! when stderr is not a terminal; `--quiet` hides the bars everywhere.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use seedbank_protocol::api::{FileProgress, Progress, STALLED};

use crate::output::human_duration;

/// Columns a file name gets under the total bar; longer names lose their start.
const NAME_COLUMNS: usize = 32;

/// Per-file bars shown at once; more files under way show as the first few.
const MAX_FILE_BARS: usize = 6;

/// No ETA is shown until the rate has been measured this long: early estimates swing.
const ETA_WARM_UP: Duration = Duration::from_secs(3);

/// The total bar, at most 76 columns before the message (which fills what is left).
const TOTAL_TEMPLATE: &str = "{prefix:9!} {bar:16} {binary_bytes:>11}/{binary_total_bytes:<11} {binary_bytes_per_sec:>13} {eta_after_warm_up:>6} {wide_msg}";

/// A file's bar: 75 columns.
const FILE_TEMPLATE: &str = "  {prefix:32!} {bar:16} {binary_bytes:>11}/{binary_total_bytes:<11}";

/// Before the total is known.
const SPINNER_TEMPLATE: &str = "{spinner} {prefix} {wide_msg}";

/// The bars of one operation.
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    files: Vec<(String, ProgressBar)>,
    /// Whether a report has been shown: the first one sets the starting point.
    started: bool,
}

impl Bars {
    /// Bars for an operation described by `verb` (`fetching`); hidden when `quiet`.
    pub fn new(verb: &str, quiet: bool) -> Self {
        let multi = if quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        let total = multi.add(ProgressBar::no_length());
        total.set_style(style(SPINNER_TEMPLATE));
        total.set_prefix(verb.to_owned());
        total.enable_steady_tick(Duration::from_millis(120));
        Self {
            multi,
            total,
            files: Vec::new(),
            started: false,
        }
    }

    /// Shows what `progress` says.
    pub fn update(&mut self, progress: &Progress) {
        if let Some(current) = &progress.current {
            if current.starts_with(STALLED) {
                // Nothing is arriving: no rate decaying from the last burst, no ETA.
                self.total.reset_eta();
            }
            self.total.set_message(current.clone());
        }
        if progress.total_bytes == 0 {
            return;
        }
        if self.total.length().is_none() {
            // The spinner's ticker would take over recording the position (a manual
            // tick does nothing while it runs), so the jump below would count as speed.
            self.total.disable_steady_tick();
            self.total.set_style(style(TOTAL_TEMPLATE));
        }
        self.total.set_length(progress.total_bytes);
        self.total.set_position(progress.done_bytes);
        if !self.started {
            // What was done before this command watched must not count as just moved:
            // record it as the starting point, then start measuring from here.
            self.started = true;
            self.total.tick();
            self.total.reset_eta();
            self.total.reset_elapsed();
        }
        self.update_files(&progress.files);
    }

    fn update_files(&mut self, files: &[FileProgress]) {
        let shown = &files[..files.len().min(MAX_FILE_BARS)];
        self.files.retain(|(path, bar)| {
            let keep = shown.iter().any(|f| &f.path == path);
            if !keep {
                bar.finish_and_clear();
            }
            keep
        });
        for file in shown {
            let bar = match self.files.iter().find(|(path, _)| path == &file.path) {
                Some((_, bar)) => bar.clone(),
                None => {
                    let bar = self.multi.add(ProgressBar::new(file.total_bytes));
                    bar.set_style(style(FILE_TEMPLATE));
                    bar.set_prefix(fit_name(&file.path, NAME_COLUMNS));
                    self.files.push((file.path.clone(), bar.clone()));
                    bar
                }
            };
            bar.set_length(file.total_bytes);
            bar.set_position(file.done_bytes);
        }
    }

    /// Clears every bar.
    pub fn finish(self) {
        for (_, bar) in &self.files {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("eta_after_warm_up", eta_after_warm_up)
        .progress_chars("=> ")
}

/// The ETA once the rate has been measured for a while, in people's units (`3m 5s`).
fn eta_after_warm_up(state: &ProgressState, out: &mut dyn std::fmt::Write) {
    if state.elapsed() < ETA_WARM_UP || state.per_sec() <= 0.0 {
        let _ = out.write_str("");
        return;
    }
    let _ = write!(out, "{}", human_duration(state.eta()));
}

/// `name` in at most `columns` characters: whole if it fits, else its start and its end
/// around `…` (the end names the file, the start its folder or series).
pub fn fit_name(name: &str, columns: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= columns {
        return name.to_owned();
    }
    let kept = columns.saturating_sub(1);
    let head = kept / 3;
    let tail = kept - head;
    let mut fitted: String = chars[..head].iter().collect();
    fitted.push('…');
    fitted.extend(&chars[chars.len() - tail..]);
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_end_and_fit() {
        assert_eq!(fit_name("config.json", 32), "config.json");
        let long = "weights/model-00001-of-00004.safetensors";
        let fitted = fit_name(long, 32);
        assert_eq!(fitted.chars().count(), 32);
        assert!(fitted.starts_with("weights/m"), "{fitted}");
        assert!(fitted.contains('…'));
        assert!(fitted.ends_with("00004.safetensors"), "{fitted}");
        assert_eq!(fit_name("żółw-ąę", 5).chars().count(), 5);
    }

    #[test]
    fn re_attaching_does_not_count_earlier_bytes_as_transferred() {
        let mut bars = Bars::new("fetching", true);
        let report = |done| Progress {
            done_bytes: done,
            total_bytes: 1 << 30,
            current: None,
            files: Vec::new(),
        };
        // The first report of a fetch already half done.
        bars.update(&report(512 << 20));
        std::thread::sleep(Duration::from_millis(50));
        bars.update(&report((512 << 20) + 1024));
        bars.total.tick();
        let rate = bars.total.per_sec();
        assert!(
            rate < (1 << 20) as f64,
            "1 KiB in ~50 ms must not read as {rate} bytes/s"
        );
    }

    #[test]
    fn no_bar_before_the_total_is_known() {
        let mut bars = Bars::new("adding", true);
        bars.update(&Progress {
            done_bytes: 0,
            total_bytes: 0,
            current: Some("walking".into()),
            files: Vec::new(),
        });
        assert_eq!(bars.total.length(), None);
    }
}
