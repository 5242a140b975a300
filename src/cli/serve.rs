//! `precis serve`: the flags become checked [`ServeOptions`] (any decoding or chunking flag of
//! `summarize` becomes the server's default), the address is bound, and [`precis::serve::serve`] runs
//! until SIGTERM or Ctrl-C. The model loads after the bind, so `/health` answers 503 meanwhile.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use precis::Summarizer;
use precis::serve::{self as server, Limits, ServeOptions};

use super::allocator;
use super::common::{ChunkingArgs, GenerationArgs, ModelArgs};

#[derive(Debug, Args)]
#[command(
    after_help = "Routes: POST / (Hugging Face summarization schema), POST /summarize, \
    GET /health, /info, /metrics, /docs, /api-doc/openapi.json. Exit status: 0 after a clean \
    shutdown (SIGTERM or Ctrl-C), 1 if the model cannot load, 2 usage error."
)]
pub struct ServeArgs {
    /// Address to listen on; 127.0.0.1 serves this machine only, 0.0.0.0 every interface.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on; 0 picks a free one (the address is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// Require `Authorization: Bearer KEY` on every route but /health.
    #[arg(long, env = "PRECIS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Most padded encoder tokens (sequences × longest input) in the running batch.
    #[arg(long, value_name = "TOKENS", default_value_t = Limits::default().max_batch_tokens)]
    pub max_batch_tokens: usize,

    /// Most sequences (chunks or merge passes) in the running batch.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_batch_size)]
    pub max_batch_size: usize,

    /// Most input tokens encoded between two decoder steps: encoding stalls every running
    /// sequence, so long inputs join over several steps (one pass always joins).
    #[arg(long, value_name = "TOKENS", default_value_t = Limits::default().max_prefill_tokens)]
    pub max_prefill_tokens: usize,

    /// Summarisation requests in flight before new ones are answered 429.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_requests)]
    pub max_concurrent_requests: usize,

    /// Largest request body in bytes (413 above).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_input_bytes)]
    pub max_input_bytes: usize,

    /// Most texts in one request's `inputs` list.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_inputs_per_request)]
    pub max_inputs_per_request: usize,

    /// Most tokens a request may ask one summary to generate.
    #[arg(long, value_name = "TOKENS", default_value_t = Limits::default().max_new_tokens_limit)]
    pub max_new_tokens_limit: usize,

    /// Widest beam search a request may ask for.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_num_beams)]
    pub max_num_beams: usize,

    /// Seconds a shutdown waits for requests in flight before cancelling them.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        allow_negative_numbers = true
    )]
    pub shutdown_timeout: f64,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub chunking: ChunkingArgs,
}

pub fn run(args: ServeArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let options = serve_options(&args)?;
    let address = address(&args)?;
    let load = args.model.load_options(quiet)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("precis-http")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = listener
            .local_addr()
            .context("cannot read the bound address")?;
        // Tests and scripts read this line to find an ephemeral port.
        eprintln!("precis: listening on http://{bound}");
        let loader = move || {
            let summarizer = Summarizer::load(&load).map_err(|e| {
                tracing::error!("cannot load model '{}': {e}", load.model);
                e
            })?;
            allocator::after_load();
            Ok(summarizer)
        };
        server::serve(listener, options, loader, shutdown_signal())
            .await
            .map_err(anyhow::Error::from)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn serve_options(args: &ServeArgs) -> anyhow::Result<ServeOptions> {
    if !(args.shutdown_timeout >= 0.0 && args.shutdown_timeout.is_finite()) {
        return Err(precis::Error::InvalidOption {
            option: "shutdown_timeout",
            value: args.shutdown_timeout.to_string(),
            expected: "a number of seconds, 0 or more".into(),
        }
        .into());
    }
    let options = ServeOptions {
        defaults: args
            .chunking
            .summary_options(&args.generation, None, None)?,
        limits: Limits {
            max_batch_tokens: args.max_batch_tokens,
            max_batch_size: args.max_batch_size,
            max_prefill_tokens: args.max_prefill_tokens,
            max_concurrent_requests: args.max_concurrent_requests,
            max_input_bytes: args.max_input_bytes,
            max_inputs_per_request: args.max_inputs_per_request,
            max_new_tokens_limit: args.max_new_tokens_limit,
            max_num_beams: args.max_num_beams,
        },
        api_key: args.api_key.clone(),
        shutdown_timeout: Duration::from_secs_f64(args.shutdown_timeout),
    };
    options.validate()?;
    Ok(options)
}

fn address(args: &ServeArgs) -> anyhow::Result<SocketAddr> {
    let host: std::net::IpAddr = args
        .host
        .parse()
        .map_err(|_| precis::Error::InvalidOption {
            option: "host",
            value: args.host.clone(),
            expected: "an IP address such as 127.0.0.1 or 0.0.0.0".into(),
        })?;
    Ok(SocketAddr::new(host, args.port))
}

/// Resolves on the first SIGTERM or Ctrl-C; a second one ends the process at once.
async fn shutdown_signal() {
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            tracing::error!(
                "cannot watch for SIGTERM / Ctrl-C ({e}); stop the server with SIGKILL"
            );
            return std::future::pending().await;
        }
    };
    signals.next().await;
    eprintln!("precis: shutting down (again to stop at once)");
    tokio::spawn(async move {
        signals.next().await;
        eprintln!("precis: stopped");
        std::process::exit(130);
    });
}

/// SIGTERM and SIGINT, as one stream.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
