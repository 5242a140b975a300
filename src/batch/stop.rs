//! Stopping a batch gracefully on SIGTERM, Ctrl-C (SIGINT) or SIGHUP: the signal only sets a
//! flag, which the batch checks between rounds, so the round in flight finishes, its summaries
//! and manifest rows are written, and the CLI then exits with status 130.
//!
//! A second signal exits at once (status 130): that is safe too, because summaries are written
//! atomically and a resumed run redoes whatever the manifest does not record as done.
//!
//! SIGTERM is always handled (it is how schedulers and `kill` ask a job to stop). SIGINT and
//! SIGHUP are left alone when the process started with them ignored, as shells and `nohup`
//! arrange for jobs that must outlive a Ctrl-C or a closed terminal: `nohup` ignores SIGHUP, and
//! a non-interactive shell ignores SIGINT (and SIGQUIT) for a job started with `&`. Taking them
//! over would make `nohup precis batch` stop when its terminal closes.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::signal::{SIGINT, SIGTERM};

use crate::{Error, Result};

/// Exit status of a second stop signal: 128 + SIGINT, as shells report Ctrl-C.
const EXIT_AT_ONCE: i32 = 130;

/// A shared "please stop" flag. Clones share the flag; tests set it with [`StopFlag::request`].
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that nothing but [`StopFlag::request`] sets.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// A flag set by SIGTERM, and by SIGINT and SIGHUP unless they were ignored when the
    /// process started (see the module notes). A second signal of any of them exits at once.
    pub fn on_signals() -> Result<StopFlag> {
        let flag = StopFlag::new();
        for signal in stop_signals(&is_ignored)? {
            let error = |source| Error::SignalHandler {
                signal: signal_name(signal),
                source,
            };
            // Registered first, so it sees the flag as the previous signal left it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                EXIT_AT_ONCE,
                Arc::clone(&flag.0),
            )
            .map_err(error)?;
            signal_hook::flag::register(signal, Arc::clone(&flag.0)).map_err(error)?;
        }
        Ok(flag)
    }

    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The signals to handle: SIGTERM always, the others unless `ignored` says they are.
fn stop_signals(ignored: &dyn Fn(i32) -> io::Result<bool>) -> Result<Vec<i32>> {
    let mut signals = vec![SIGTERM];
    for signal in polite_signals() {
        let ignored = ignored(signal).map_err(|source| Error::SignalHandler {
            signal: signal_name(signal),
            source,
        })?;
        if !ignored {
            signals.push(signal);
        }
    }
    Ok(signals)
}

/// The signals a user's shell may have told this process to ignore.
fn polite_signals() -> Vec<i32> {
    #[cfg(unix)]
    return vec![SIGINT, signal_hook::consts::signal::SIGHUP];
    #[cfg(not(unix))]
    return vec![SIGINT];
}

fn signal_name(signal: i32) -> &'static str {
    signal_hook::low_level::signal_name(signal).unwrap_or("a stop signal")
}

/// Whether `signal`'s disposition in this process is "ignore", as inherited across `exec`.
#[cfg(unix)]
fn is_ignored(signal: i32) -> io::Result<bool> {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction only writes the current one into `current`,
    // which is a properly sized, zero-initialised `struct sigaction`.
    let status = unsafe { libc::sigaction(signal, std::ptr::null(), current.as_mut_ptr()) };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction succeeded and filled it in (and it was zeroed before).
    let current = unsafe { current.assume_init() };
    Ok(current.sa_sigaction == libc::SIG_IGN)
}

/// Windows has no inherited "ignore" for console signals.
#[cfg(not(unix))]
fn is_ignored(_signal: i32) -> io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let flag = StopFlag::new();
        let seen_by_worker = flag.clone();
        assert!(!seen_by_worker.is_requested());
        flag.request();
        assert!(seen_by_worker.is_requested());
    }

    /// Whatever this test process inherited (`cargo test` run from a script may have SIGINT
    /// ignored), SIGTERM is handled. `raise` runs the handler on this thread before it returns,
    /// so the flag is set when it does. (Only one SIGTERM: a second would exit the process.)
    #[test]
    fn sigterm_sets_the_flag_instead_of_killing_the_process() {
        let flag = StopFlag::on_signals().expect("handlers install");
        assert!(!flag.is_requested());
        signal_hook::low_level::raise(SIGTERM).expect("raise SIGTERM");
        assert!(flag.is_requested());
    }

    #[cfg(unix)]
    #[test]
    fn ignored_sigint_and_sighup_stay_ignored_and_sigterm_is_always_handled() {
        use signal_hook::consts::signal::SIGHUP;
        let none = stop_signals(&|_| Ok(false)).expect("signals");
        assert_eq!(none, [SIGTERM, SIGINT, SIGHUP]);
        let all = stop_signals(&|_| Ok(true)).expect("signals");
        assert_eq!(
            all,
            [SIGTERM],
            "SIGTERM is handled even when it was ignored"
        );
        let nohup = stop_signals(&|s| Ok(s == SIGHUP)).expect("signals");
        assert_eq!(nohup, [SIGTERM, SIGINT]);
        let background = stop_signals(&|s| Ok(s == SIGINT)).expect("signals");
        assert_eq!(background, [SIGTERM, SIGHUP]);
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_query_names_the_signal() {
        let error = stop_signals(&|_| Err(io::Error::from_raw_os_error(libc::EINVAL)))
            .expect_err("the query fails");
        assert_eq!(error.to_string(), "cannot install a handler for SIGINT");
    }

    /// The query reads the real disposition, here of SIGUSR2, which nothing else here touches.
    #[cfg(unix)]
    #[test]
    fn the_disposition_query_tells_ignored_from_default() {
        let signal = libc::SIGUSR2;
        // SAFETY: SIG_DFL and SIG_IGN are valid dispositions; no other test uses SIGUSR2.
        let inherited = unsafe { libc::signal(signal, libc::SIG_DFL) };
        let default = is_ignored(signal).expect("query");
        // SAFETY: as above.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
        let ignored = is_ignored(signal).expect("query");
        // SAFETY: puts back what the process inherited.
        unsafe { libc::signal(signal, inherited) };
        assert!(!default);
        assert!(ignored);
    }
}
