//! Running a model call on the kernels' rayon pool with its other threads kept awake.
//!
//! A decoder step is a few hundred short parallel operations (each product, norm and
//! attention), with a little serial work between them. Between two of them an idle rayon worker
//! yields a few times and then sleeps; the next operation must wake it (a futex call on the
//! driving thread), and on a virtual machine an idle vCPU takes long to come back, so the
//! driving thread does much of each split alone. Here each other worker runs a job that keeps
//! taking the pool's work while the call lasts, the way OpenMP runtimes spin between parallel
//! regions. On an Intel Xeon (2 threads) that made a t5-small batch-1 decode step 10-15% faster
//! and a flan-t5-base one 15-18%; encoder times moved within the noise.
//!
//! Which thread runs a task never changes how it sums: results are the same bits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A worker with nothing to take for this long stops spinning and goes back to rayon's own
/// sleep: far longer than the serial stretches between a step's operations, short enough to
/// bound the one stall spinning can cause (a thread that took a spinner while it waited inside
/// another call's parallel operation is held until the spinner stops). Limits of 1 ms and
/// 50 ms decoded alike on t5-small and flan-t5-base.
const IDLE_LIMIT: Duration = Duration::from_millis(10);

/// Held by the one call whose workers spin: concurrent calls (a server's, or tests') run
/// without spinners rather than nest theirs inside each other's.
static SPINNING: AtomicBool = AtomicBool::new(false);

/// Runs `f` on a thread of the current rayon pool (one hand-off to it, when called from
/// outside), with the pool's other threads taking its parallel work as soon as it is split
/// instead of sleeping between operations.
pub fn with_workers_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let done = AtomicBool::new(false);
    let done = &done;
    rayon::scope(|scope| {
        let spinning = rayon::current_num_threads() > 1
            && SPINNING
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
        if spinning {
            let driver = rayon::current_thread_index();
            for _ in 1..rayon::current_num_threads() {
                scope.spawn(move |_| {
                    // The driving thread may pop a spinner itself while it waits for a split:
                    // it must not spin on a flag only it will set.
                    if rayon::current_thread_index() != driver {
                        spin_until(done);
                    }
                });
            }
        }
        // Set even when `f` panics (the scope then rethrows once its spinners have stopped).
        let _stop = Stop { done, spinning };
        f()
    })
}

/// Takes the pool's work until `done`, or until there has been none for [`IDLE_LIMIT`].
fn spin_until(done: &AtomicBool) {
    let mut idle_since = None;
    while !done.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => idle_since = None,
            _ => {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > IDLE_LIMIT {
                    return;
                }
                std::hint::spin_loop();
            }
        }
    }
}

/// Tells the spinners to stop, and hands the spinning on, when the call ends.
struct Stop<'a> {
    done: &'a AtomicBool,
    spinning: bool,
}

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if self.spinning {
            SPINNING.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use rayon::prelude::*;

    use super::*;

    /// Parallel work with a result that shows whether every part of it ran: nested splits, so
    /// that threads wait inside each other's operations and take each other's jobs.
    fn sum_of_squares(n: usize) -> u64 {
        (0..n)
            .into_par_iter()
            .with_max_len(n.div_ceil(16))
            .map(|i| {
                let inner: u64 = (0..i % 64)
                    .into_par_iter()
                    .with_max_len(4)
                    .map(|j| (j * j) as u64)
                    .sum();
                inner + (i * i) as u64
            })
            .sum()
    }

    #[test]
    fn the_call_returns_its_result_and_the_spinners_stop() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let want = sum_of_squares(100_000);
        for _ in 0..20 {
            assert_eq!(
                pool.install(|| with_workers_awake(|| sum_of_squares(100_000))),
                want
            );
        }
        // Called from outside any pool: the global pool's threads run it.
        assert_eq!(
            with_workers_awake(|| sum_of_squares(1000)),
            sum_of_squares(1000)
        );
    }

    #[test]
    fn concurrent_calls_on_one_pool_all_finish() {
        // Several threads drive model calls on one small pool at once: whoever holds the
        // spinners, the others' parallel work must still be taken, and nothing may wait on a
        // spinner forever. A deadlock fails the test at the timeout instead of hanging it.
        let pool = std::sync::Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap(),
        );
        let (sender, results) = mpsc::channel();
        for caller in 0..6usize {
            let (pool, sender) = (pool.clone(), sender.clone());
            std::thread::spawn(move || {
                for round in 0..50 {
                    let n = 10_000 + 1000 * caller + round;
                    let got = pool.install(|| with_workers_awake(|| sum_of_squares(n)));
                    sender.send(got == sum_of_squares(n)).unwrap();
                }
            });
        }
        drop(sender);
        for _ in 0..300 {
            let right = results
                .recv_timeout(Duration::from_secs(60))
                .expect("a call did not finish within a minute");
            assert!(right, "a call gave a wrong sum");
        }
    }

    #[test]
    fn a_panic_in_the_call_reaches_the_caller_and_the_next_call_finishes() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                with_workers_awake(|| {
                    sum_of_squares(1000);
                    panic!("model code panicked")
                })
            })
        }));
        assert!(panicked.is_err());
        // The pool is left usable: the next call gives its result.
        assert_eq!(
            pool.install(|| with_workers_awake(|| sum_of_squares(1000))),
            sum_of_squares(1000)
        );
    }
}
