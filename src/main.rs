//! The `precis` command: a thin shell over the library (see `src/cli/`).

mod cli;

/// Decoding allocates and frees many tensor buffers per step. glibc's malloc hands the large ones
/// back to the kernel each time, so every step paid for fresh zeroed pages (~10% of decode time
/// in `perf`); mimalloc keeps them for reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
