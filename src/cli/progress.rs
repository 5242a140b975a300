//! Progress bars on stderr, for multi-chunk summaries and for batches: shown only on a terminal
//! and never with --quiet, so piped or scripted runs stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use precis::Progress;
use precis::batch::Progress as BatchEvent;

fn shown(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `style` with a `{rate}` key: documents per second to one decimal.
fn rate_style(template: &str) -> ProgressStyle {
    style(template).with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1} docs/s", state.per_sec());
        },
    )
}

/// Files done of the total, docs/s, ETA and the round being summarised.
pub struct BatchProgress {
    bar: Option<ProgressBar>,
}

impl BatchProgress {
    /// `total` is `None` for a JSONL input, read as it comes: then a counter, not a bar.
    pub fn new(total: Option<usize>, quiet: bool) -> Self {
        if !shown(quiet) || total == Some(0) {
            return Self { bar: None };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total as u64).with_style(rate_style(
                "[{bar:30}] {pos}/{len} files, {rate}, ETA {eta}  {wide_msg}",
            )),
            None => ProgressBar::new_spinner()
                .with_style(rate_style("{spinner} {pos} documents, {rate}  {wide_msg}")),
        };
        // Ticks while a round is in the model, so the elapsed time and spinner stay alive.
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar: Some(bar) }
    }

    pub fn update(&mut self, event: BatchEvent<'_>) {
        let Some(bar) = &self.bar else {
            return;
        };
        match event {
            BatchEvent::RoundStarted { files: 1, first } => bar.set_message(first.to_string()),
            BatchEvent::RoundStarted { files, first } => {
                bar.set_message(format!("{first} and {} more", files - 1));
            }
            BatchEvent::FileDone { done, .. } => bar.set_position(done as u64),
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

pub struct ChunkProgress {
    bar: Option<ProgressBar>,
    enabled: bool,
    label: String,
}

impl ChunkProgress {
    pub fn new(label: &str, quiet: bool) -> Self {
        Self {
            bar: None,
            enabled: shown(quiet),
            label: label.to_string(),
        }
    }

    /// Feed one progress event; the bar appears once there is more than one chunk.
    pub fn update(&mut self, event: Progress) {
        if !self.enabled {
            return;
        }
        match event {
            Progress::Chunks { total, .. } if total <= 1 => {}
            Progress::Chunks { done, total } => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(total as u64)
                        .with_style(style("{msg} [{bar:30}] {pos}/{len} chunks, ETA {eta}"));
                    bar.set_message(self.label.clone());
                    bar
                });
                bar.set_position(done as u64);
            }
            Progress::Merging { inputs } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{}: merging {inputs} summaries", self.label));
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
