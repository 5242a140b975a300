//! Stopping a batch gracefully on Ctrl-C (SIGINT), SIGTERM or SIGHUP: the signal only sets a
//! flag, which the batch checks between rounds, so the round in flight finishes, its summaries
//! and manifest rows are written, and the CLI then exits with status 130.
//!
//! A second signal exits at once (status 130): that is safe too, because summaries are written
//! atomically and a resumed run redoes whatever the manifest does not record as done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Result};

/// A shared "please stop" flag. Clones share the flag; tests set it with [`StopFlag::request`].
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that nothing but [`StopFlag::request`] sets.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// A flag set by SIGINT, SIGTERM and SIGHUP. The handler is process-wide: call this once,
    /// from the CLI; a second call fails.
    pub fn on_signals() -> Result<StopFlag> {
        let flag = StopFlag::new();
        let handler_flag = flag.clone();
        ctrlc::try_set_handler(move || {
            if handler_flag.is_requested() {
                std::process::exit(130);
            }
            handler_flag.request();
        })
        .map_err(Error::SignalHandler)?;
        Ok(flag)
    }

    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn clones_share_the_flag() {
        let flag = StopFlag::new();
        let seen_by_worker = flag.clone();
        assert!(!seen_by_worker.is_requested());
        flag.request();
        assert!(seen_by_worker.is_requested());
    }

    #[cfg(unix)]
    #[test]
    fn sigterm_sets_the_flag_instead_of_killing_the_process() {
        let flag = StopFlag::on_signals().expect("first handler in this process");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status();
        if !sent.is_ok_and(|status| status.success()) {
            return; // no `kill` command here: nothing to test
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !flag.is_requested() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(flag.is_requested());
        let again = StopFlag::on_signals().expect_err("one handler per process");
        assert_eq!(
            again.to_string(),
            "cannot install the Ctrl-C / SIGTERM handler"
        );
    }
}
