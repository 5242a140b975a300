//! A progress bar on stderr for multi-chunk summaries: shown only on a terminal and never
//! with --quiet, so piped or scripted runs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use precis::Progress;

pub struct ChunkProgress {
    bar: Option<ProgressBar>,
    enabled: bool,
    label: String,
}

impl ChunkProgress {
    pub fn new(label: &str, quiet: bool) -> Self {
        Self {
            bar: None,
            enabled: !quiet && std::io::stderr().is_terminal(),
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
                    let bar = ProgressBar::new(total as u64);
                    let style = ProgressStyle::with_template(
                        "{msg} [{bar:30}] {pos}/{len} chunks, ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                    bar.set_style(style);
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
