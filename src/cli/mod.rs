//! Command-line front end: parse flags, size the thread pools, run one command, turn errors
//! into a one-line message and an exit status (0 ok, 1 failure, 2 usage: a bad option or a path that names no input;
//! `precis batch` also exits 130 when stopped by a signal).

mod allocator;
mod args;
mod batch;
mod bench;
mod common;
mod eval;
mod eval_output;
mod eval_summarize;
mod models;
mod output;
mod progress;
mod serve;
mod summarize;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (success) and usage errors to stderr.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.verbose, cli.quiet);
    let result = size_thread_pools(cli.command.threads()).and_then(|()| match cli.command {
        Command::Summarize(args) => summarize::run(args, cli.quiet),
        Command::Batch(args) => batch::run(args, cli.quiet),
        Command::Models => models::run(),
        Command::Bench(args) => bench::run(args, cli.quiet),
        Command::Serve(args) => serve::run(args, cli.quiet),
        Command::Eval(args) => eval::run(args, cli.quiet),
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("precis: error: {}", one_line(&err));
            ExitCode::from(exit_status(&err))
        }
    }
}

/// Sizes the tensor kernels' thread pools: `--threads`, else one thread per physical core.
///
/// candle's CPU kernels and the rayon pool read `RAYON_NUM_THREADS` when they first run, which
/// is later than this: here, right after parsing, no other thread exists yet.
fn size_thread_pools(threads: Option<usize>) -> anyhow::Result<()> {
    let threads = match threads {
        Some(0) => {
            return Err(precis::Error::InvalidOption {
                option: "threads",
                value: "0".into(),
                expected: "must be at least 1".into(),
            }
            .into());
        }
        Some(threads) => Some(threads),
        // An explicit RAYON_NUM_THREADS in the environment is left as it is.
        None if std::env::var_os("RAYON_NUM_THREADS").is_some() => None,
        // Physical cores, as candle counts them: rayon's own default is every logical CPU, and
        // two hyper-threads of one core only fight over its vector units and memory bandwidth.
        None => Some(candle_core::utils::get_num_threads()),
    };
    if let Some(threads) = threads {
        // SAFETY: the process has one thread here (see above), so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    // candle splits a large element-wise operation (a residual sum, say) over a pool of its
    // own, sized like rayon's. precis runs the whole model on a rayon thread, so that pool's
    // threads would be extra threads for the same cores: each split waits for a thread the
    // kernel pool is spinning on. Measured on a 2-core Zen 4 at 32 concurrent `precis serve`
    // clients: 0.87x `precis batch`'s throughput with candle's pool, 0.93x without (medians of
    // alternating rounds); `precis batch` itself the same. Such operations are memory-bound
    // and a small part of the work, so they run on the kernel thread that calls them. An
    // explicit CANDLE_NUM_THREADS stays.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: as above, still one thread.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    name_kernel_threads()?;
    tracing::info!(
        "threads: {} for the kernels, {} for candle's element-wise operations",
        rayon::current_num_threads(),
        candle_core::utils::barrier_pool().n_workers() + 1
    );
    Ok(())
}

/// Starts the kernels' rayon pool with named threads: unnamed, they would take the name of
/// whichever thread first ran a kernel (an HTTP worker of `precis serve`, say), and `top -H`
/// would show the model's work on the wrong threads.
fn name_kernel_threads() -> anyhow::Result<()> {
    // Sized by RAYON_NUM_THREADS, as candle's kernels are.
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("precis-kernel-{i}"))
        .build_global()?;
    Ok(())
}

/// A mistake in how precis was called that clap cannot see (flags that do not go together
/// given their values); exit status 2 like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The error and its causes on one line, skipping a cause whose text an outer message already
/// includes (many libraries repeat their source in their own message).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = describe(cause);
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// One cause as the command line shows it: a library error about a setting names the flag
/// that sets it.
fn describe(cause: &(dyn std::error::Error + 'static)) -> String {
    match cause.downcast_ref::<precis::Error>() {
        Some(err) => match err.setting() {
            Some(setting) => err.message_naming(&flag(setting)),
            None => err.to_string(),
        },
        None => cause.to_string(),
    }
}

/// The flag that sets the library setting `setting`; an environment variable (upper case) is
/// set by its own name.
fn flag(setting: &str) -> String {
    match setting {
        "extensions" => "--ext".to_string(),
        "globs" => "--glob".to_string(),
        variable if variable.chars().any(|c| c.is_ascii_uppercase()) => variable.to_string(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// 2 for mistakes in how precis was called (the library says which of its errors are), 1 for
/// everything that went wrong after that.
fn exit_status(err: &anyhow::Error) -> u8 {
    let usage = err.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause
                .downcast_ref::<precis::Error>()
                .is_some_and(precis::Error::is_usage)
    });
    if usage { EXIT_USAGE } else { EXIT_FAILURE }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PRECIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("precis={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_shown_as_the_flags_that_set_them() {
        for (setting, expected) in [
            ("max_input_tokens", "--max-input-tokens"),
            ("num_beams", "--num-beams"),
            ("device", "--device"),
            ("extensions", "--ext"),
            ("globs", "--glob"),
            ("PRECIS_CPU_KERNELS", "PRECIS_CPU_KERNELS"),
        ] {
            assert_eq!(flag(setting), expected);
        }
        let err = anyhow::Error::new(precis::Error::InvalidOption {
            option: "max_input_tokens",
            value: "2".into(),
            expected: "must be at least 4".into(),
        })
        .context("cannot summarise");
        assert_eq!(
            one_line(&err),
            "cannot summarise: invalid value for --max-input-tokens: 2 (must be at least 4)"
        );
        assert_eq!(exit_status(&err), EXIT_USAGE);
        let failure = anyhow::Error::new(precis::Error::SummaryCount {
            expected: 2,
            got: 1,
        });
        assert_eq!(exit_status(&failure), EXIT_FAILURE);
    }
}
