//! What the binary changes in how the process gets memory once a model is loaded (see
//! `main.rs` for the allocator, mimalloc): freed memory stays with the process, and memory it
//! maps from then on comes in 4 KiB pages.
//!
//! Freed memory stays. Why: an encoder pass allocates and frees buffers of megabytes per layer
//! (packed inputs, products, attention blocks). By default mimalloc hands freed memory back to
//! the OS about a second later (its purge delay, 1000 ms), so the next layer's buffers came
//! back as fresh pages that the kernel had to zero first: on a t5-base encoder at batch 8 (Zen
//! 4), 2-4 s of system time in every 4 passes and 19% of the encoder's wall time (median of 4
//! alternating runs: 6.67 s before, 5.39 s after).
//!
//! Not before the model is loaded: loading frees the checkpoint's copies of the weights as it
//! packs them, and returning those keeps the peak where it was (keeping them too cost 7% more
//! peak memory on distilbart-cnn-12-6). From after the load, what stays costs peak memory too:
//! +1-2% (t5-small, t5-base, distilbart-cnn-12-6 at batch 1 and 8; `--quantize q8` on
//! distilbart at batch 8 since its feed-forward runs in chunks too).
//!
//! Small pages after the load. mimalloc asks for transparent huge pages, which load the
//! weights fast (one page fault per 2 MiB, not 512) and keep them in few TLB entries; the
//! weights keep those pages. But the first model calls of a process take their buffers from
//! the OS too, and there a huge page is zeroed whole for a buffer that may use a part of it:
//! a t5-small encoder at batch 1 (512 tokens, AMD EPYC Zen 5) took 125-143 ms in each of its
//! first two calls against 71-76 later, and 78-105 ms with 4 KiB pages after the load; at
//! batch 8, 699-825 ms against 577-591 for the first call, and peak RSS 433-442 MiB against
//! 453-468. distilbart-cnn-12-6, whose buffers fill whole huge pages, moved within the noise.
//!
//! An explicit `MIMALLOC_PURGE_DELAY` or `MIMALLOC_ALLOW_THP` in the environment wins: mimalloc
//! reads them at start-up and this leaves the matching setting alone.

use libmimalloc_sys::{mi_collect, mi_option_set, mi_option_t};

/// `mi_option_purge_delay` in mimalloc.h (milliseconds; -1 never purges). The crate exports no
/// constant for it; the test below checks the index against the option's default.
const PURGE_DELAY: mi_option_t = 15;

/// The environment variable through which mimalloc reads [`PURGE_DELAY`].
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// The environment variable through which mimalloc reads whether it may ask for transparent
/// huge pages.
const ALLOW_THP_ENV: &str = "MIMALLOC_ALLOW_THP";

/// Sets how the process gets memory from now on (see the module header). Call it once the
/// model is loaded.
pub fn after_load() {
    keep_freed_memory_unless(std::env::var_os(PURGE_DELAY_ENV).is_some());
    small_pages_from_now_on_unless(std::env::var_os(ALLOW_THP_ENV).is_some());
}

fn keep_freed_memory_unless(set_in_environment: bool) {
    if set_in_environment {
        tracing::debug!("memory: {PURGE_DELAY_ENV} is set, left as it is");
        return;
    }
    // SAFETY: `mi_collect` is safe to call at any time. The setter writes mimalloc's option
    // table; it is called after loading, while no model call runs, so no allocation reads the
    // option at the same moment.
    unsafe {
        // What loading freed in its last second is still waiting for its purge, which would
        // never come once the delay is -1: return it now (q8 frees the float32 weights last).
        mi_collect(true);
        mi_option_set(PURGE_DELAY, -1);
    }
    tracing::info!("memory: freed buffers now stay with the process for reuse");
}

/// Makes the memory the process maps from now on come in 4 KiB pages; what is already mapped
/// (the weights) keeps its huge pages.
fn small_pages_from_now_on_unless(set_in_environment: bool) {
    if set_in_environment {
        tracing::debug!("memory: {ALLOW_THP_ENV} is set, huge pages left as they are");
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `PR_SET_THP_DISABLE` reads no memory of ours; it sets a flag of this process
        // that later page faults read (pages already mapped stay as they are).
        let status = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if status != 0 {
            let error = std::io::Error::last_os_error();
            tracing::debug!("memory: huge pages stay on for new memory: {error}");
            return;
        }
        tracing::info!("memory: new buffers now come in 4 KiB pages");
    }
}

#[cfg(test)]
mod tests {
    use libmimalloc_sys::mi_option_get;

    use super::*;

    /// The current purge delay, in milliseconds.
    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: a plain read of mimalloc's option table.
        unsafe { mi_option_get(PURGE_DELAY) }
    }

    #[test]
    fn freed_memory_stays_once_the_model_is_loaded_unless_the_environment_says() {
        // No other test in this binary changes the option, so it still holds mimalloc's
        // default (1000 ms in the mimalloc 3 that libmimalloc-sys builds; options.c) or what
        // the environment gave: the index names the purge delay.
        let configured = std::env::var(PURGE_DELAY_ENV).map_or(1000, |v| v.parse().unwrap());
        assert_eq!(
            purge_delay(),
            configured,
            "index {PURGE_DELAY} is not the purge delay"
        );
        keep_freed_memory_unless(true);
        assert_eq!(
            purge_delay(),
            configured,
            "an explicit setting was overridden"
        );
        keep_freed_memory_unless(false);
        assert_eq!(purge_delay(), -1);
    }

    /// Whether the process's new memory is kept out of transparent huge pages.
    #[cfg(target_os = "linux")]
    fn huge_pages_off() -> bool {
        // SAFETY: `PR_GET_THP_DISABLE` only reads a flag of this process.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert!(flag >= 0, "{}", std::io::Error::last_os_error());
        flag == 1
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn new_memory_comes_in_small_pages_once_the_model_is_loaded_unless_the_environment_says() {
        // No other test in this binary sets the flag, and a process starts without it.
        assert!(
            !huge_pages_off(),
            "the test process started with huge pages off"
        );
        small_pages_from_now_on_unless(true);
        assert!(!huge_pages_off(), "an explicit setting was overridden");
        small_pages_from_now_on_unless(false);
        assert!(huge_pages_off());
    }
}
