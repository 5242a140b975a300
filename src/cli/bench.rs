//! `precis bench`: time a model's encoder and decoder on synthetic inputs of a fixed size.
//!
//! Each run is one `generate_with_stats` call over the batch, which times its two phases apart,
//! synchronising the device after each: the encoder (with the decoder's cross-attention keys
//! and values, computed once per input) and the `--new-tokens` decoder steps (with every logits
//! processor and search step). The decode rate is output tokens over the second phase alone.
//! EOS is suppressed (`min_new_tokens = max_new_tokens`), as transformers does, so every
//! run decodes exactly `--new-tokens` tokens whatever the weights are. `scripts/bench.py`
//! compares the result with transformers and CTranslate2 on the same input ids.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use clap::Args;
use precis::generation::{self, GenerationConfig};
use precis::loading;
use precis::models::{self, Seq2Seq};
use serde::Serialize;
use tokenizers::Tokenizer;

use super::allocator;
use super::common::{ModelArgs, OutputFormat};

/// Seed of the synthetic input ids; `scripts/bench.py` draws the same ids from it.
pub const INPUT_SEED: u64 = 0x5EED_0001;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Tokens per input row, the final EOS included.
    #[arg(long, default_value_t = 512)]
    pub input_tokens: usize,

    /// Tokens generated per row (EOS is suppressed, so exactly this many).
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,

    /// Beam width (1 = greedy search).
    #[arg(long, default_value_t = 1)]
    pub num_beams: usize,

    /// Input rows per batch.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,

    /// Timed runs; the report gives their median.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,

    /// Untimed runs first (allocator, page cache and thread pools warm up).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,

    /// Output format: a short report, or one JSON object.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// The benchmark's shape, validated.
#[derive(Debug, Clone, Copy, Serialize)]
struct Shape {
    batch: usize,
    input_tokens: usize,
    new_tokens: usize,
    num_beams: usize,
    runs: usize,
    warmup: usize,
}

impl Shape {
    fn from_args(args: &BenchArgs) -> precis::Result<Self> {
        at_least(
            "input_tokens",
            args.input_tokens,
            2,
            "a token and the final EOS",
        )?;
        at_least("new_tokens", args.new_tokens, 1, "")?;
        at_least("num_beams", args.num_beams, 1, "")?;
        at_least("batch", args.batch, 1, "")?;
        at_least("runs", args.runs, 1, "")?;
        Ok(Self {
            batch: args.batch,
            input_tokens: args.input_tokens,
            new_tokens: args.new_tokens,
            num_beams: args.num_beams,
            runs: args.runs,
            warmup: args.warmup,
        })
    }

    /// Exactly `new_tokens` tokens, no EOS, no other processor: plain greedy or beam search.
    fn generation_config(&self) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: Some(self.new_tokens),
            min_new_tokens: Some(self.new_tokens),
            num_beams: self.num_beams,
            ..GenerationConfig::default()
        }
    }
}

fn at_least(option: &'static str, value: usize, min: usize, why: &str) -> precis::Result<()> {
    if value >= min {
        return Ok(());
    }
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(": {why}")
    };
    Err(precis::Error::InvalidOption {
        option,
        value: value.to_string(),
        expected: format!("at least {min}{why}"),
    })
}

pub fn run(args: BenchArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let shape = Shape::from_args(&args)?;
    let load = args.model.load_options(quiet)?;
    // Finding (or downloading) the files is not part of the timed load.
    let files = loading::resolve(&load.model, &load.hub)?;
    let started = Instant::now();
    let loaded = loading::load_resolved(&files, &load)
        .with_context(|| format!("cannot load model '{}'", load.model))?;
    allocator::after_load();
    let load_ms = millis(started.elapsed().as_secs_f64());
    let device = &loaded.device;

    let rows = synthetic_inputs(&loaded.tokenizer, loaded.model.spec(), &shape);
    let (ids, mask) = input_tensors(&rows, device)?;
    let config = shape.generation_config();
    let timer = Timer {
        model: loaded.model.as_ref(),
        ids: &ids,
        mask: &mask,
        config: &config,
        new_tokens: shape.new_tokens,
    };
    for _ in 0..shape.warmup {
        timer.run()?;
    }
    let mut runs = Vec::with_capacity(shape.runs);
    for i in 0..shape.runs {
        let timing = timer.run()?;
        if !quiet {
            eprintln!(
                "run {}/{}: encoder {:.1} ms, decode {:.1} ms, generate {:.1} ms",
                i + 1,
                shape.runs,
                timing.encoder_ms,
                timing.decode_ms,
                timing.generate_ms
            );
        }
        runs.push(timing);
    }

    let report = Report {
        model: loaded.name.clone(),
        architecture: loaded.architecture().to_string(),
        parameters: loaded.parameters.unwrap_or(0),
        device: precis::device::describe(device),
        cpu_kernels: device
            .is_cpu()
            .then(|| precis::models::cpu_kernels().map(|path| path.to_string()))
            .transpose()?,
        // A quantized model computes in float32 over quantized weights: the weights name it.
        dtype: loaded
            .quantization
            .map_or(loaded.dtype.as_str(), |q| q.as_str())
            .to_string(),
        threads: candle_core::utils::get_num_threads(),
        shape,
        input_checksum: checksum(&rows),
        load_ms,
        encoder_ms: Stats::of(runs.iter().map(|r| r.encoder_ms)),
        decode_tokens_per_s: Stats::of(runs.iter().map(|r| r.decode_tokens_per_s(&shape))),
        total_ms: Stats::of(runs.iter().map(|r| r.generate_ms)),
        peak_rss_mib: peak_rss_kib().map(|kib| kib as f64 / 1024.0),
        runs,
    };
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", report.text()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The ids inputs are drawn from: every id both the tokenizer and the model know, except the
/// tokenizer's special and added tokens (so each id is an ordinary piece of text).
fn candidate_ids(tokenizer: &Tokenizer, spec: &models::DecoderSpec) -> Vec<u32> {
    let special: HashSet<u32> = tokenizer.get_added_tokens_decoder().into_keys().collect();
    let limit = tokenizer.get_vocab_size(true).min(spec.vocab_size);
    let reserved = [
        spec.eos_token_id,
        spec.pad_token_id,
        spec.decoder_start_token_id,
    ];
    (0..limit as u32)
        .filter(|id| !special.contains(id) && !reserved.contains(id))
        .collect()
}

/// `batch` rows of `input_tokens` ids: pseudo-random ordinary tokens, then EOS. Deterministic:
/// one SplitMix64 stream seeded with [`INPUT_SEED`], drawn row after row.
fn synthetic_inputs(
    tokenizer: &Tokenizer,
    spec: &models::DecoderSpec,
    shape: &Shape,
) -> Vec<Vec<u32>> {
    let candidates = candidate_ids(tokenizer, spec);
    draw_rows(
        &candidates,
        spec.eos_token_id,
        shape.batch,
        shape.input_tokens,
    )
}

fn draw_rows(candidates: &[u32], eos: u32, batch: usize, len: usize) -> Vec<Vec<u32>> {
    let mut rng = SplitMix64(INPUT_SEED);
    (0..batch)
        .map(|_| {
            let mut row: Vec<u32> = (1..len)
                .map(|_| match candidates.len() as u64 {
                    0 => eos,
                    n => candidates[(rng.next() % n) as usize],
                })
                .collect();
            row.push(eos);
            row
        })
        .collect()
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, and easy to reproduce exactly in Python.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Sum of `id × (position + 1)` over all rows, so the harness can check it drew the same ids.
fn checksum(rows: &[Vec<u32>]) -> u64 {
    rows.iter()
        .flatten()
        .enumerate()
        .map(|(i, &id)| u64::from(id) * (i as u64 + 1))
        .sum()
}

fn input_tensors(rows: &[Vec<u32>], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let (batch, len) = (rows.len(), rows.first().map_or(0, Vec::len));
    let flat: Vec<u32> = rows.concat();
    let ids = Tensor::from_vec(flat, (batch, len), device)?;
    let mask = Tensor::ones((batch, len), DType::U32, device)?;
    Ok((ids, mask))
}

/// One configured model and batch, timed run after run.
struct Timer<'a> {
    model: &'a dyn Seq2Seq,
    ids: &'a Tensor,
    mask: &'a Tensor,
    config: &'a GenerationConfig,
    new_tokens: usize,
}

/// One run's phases, all from the same `generate_with_stats` call.
#[derive(Debug, Clone, Copy, Serialize)]
struct RunTiming {
    /// The encoder and the cross-attention keys and values.
    encoder_ms: f64,
    /// The decoder steps.
    decode_ms: f64,
    /// The whole call.
    generate_ms: f64,
}

impl RunTiming {
    /// Output tokens (batch × new tokens; beams are not counted) per second of decoding.
    /// NaN (JSON null) only for a clock that did not move during the decoder steps.
    fn decode_tokens_per_s(&self, shape: &Shape) -> f64 {
        let decode_s = self.decode_ms / 1000.0;
        if decode_s <= 0.0 {
            return f64::NAN;
        }
        (shape.batch * shape.new_tokens) as f64 / decode_s
    }
}

impl Timer<'_> {
    fn run(&self) -> anyhow::Result<RunTiming> {
        let started = Instant::now();
        let (sequences, stats) =
            generation::generate_with_stats(self.model, self.ids, self.mask, self.config)?;
        let generate_ms = millis(started.elapsed().as_secs_f64());
        // The decoder start token plus exactly the new tokens, or the numbers mean nothing.
        if let Some(bad) = sequences.iter().find(|s| s.len() != self.new_tokens + 1) {
            anyhow::bail!(
                "generation produced {} tokens instead of {}",
                bad.len().saturating_sub(1),
                self.new_tokens
            );
        }
        Ok(RunTiming {
            encoder_ms: millis(stats.encode.as_secs_f64()),
            decode_ms: millis(stats.decode.as_secs_f64()),
            generate_ms,
        })
    }
}

fn millis(seconds: f64) -> f64 {
    seconds * 1000.0
}

/// Median, min and max of a series of measurements.
#[derive(Debug, Clone, Copy, Serialize)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self {
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    architecture: String,
    parameters: usize,
    device: String,
    /// The CPU kernel path (`avx512`, `avx2`, ...) on the CPU; `None` on a GPU.
    cpu_kernels: Option<String>,
    dtype: String,
    /// The CPU threads of the tensor kernels (`--threads`, else the physical cores).
    threads: usize,
    #[serde(flatten)]
    shape: Shape,
    input_checksum: u64,
    load_ms: f64,
    encoder_ms: Stats,
    decode_tokens_per_s: Stats,
    total_ms: Stats,
    /// The process's peak resident set (VmHWM): weights, activations and caches; Linux only.
    peak_rss_mib: Option<f64>,
    runs: Vec<RunTiming>,
}

impl Report {
    fn text(&self) -> String {
        let s = &self.shape;
        let search = match s.num_beams {
            1 => "greedy".to_string(),
            n => format!("beam search ({n} beams)"),
        };
        let kernels = self
            .cpu_kernels
            .as_ref()
            .map_or(String::new(), |path| format!(" ({path} kernels)"));
        let rss = self
            .peak_rss_mib
            .map_or("unknown".to_string(), |mib| format!("{mib:.0} MiB"));
        let line = |name: &str, stats: &Stats, unit: &str| {
            format!(
                "{name:<12}{:>10.1} {unit:<6} (min {:.1}, max {:.1})\n",
                stats.median, stats.min, stats.max
            )
        };
        format!(
            "model       {} ({}, {:.1}M parameters) on {} {}{kernels}, {} threads\n\
             inputs      batch {} x {} tokens, {} new tokens, {search}\n\
             runs        {} timed (+{} warm-up), medians:\n{}{}{}peak RSS    {rss:>10}\n",
            self.model,
            self.architecture,
            self.parameters as f64 / 1e6,
            self.device,
            self.dtype,
            self.threads,
            s.batch,
            s.input_tokens,
            s.new_tokens,
            s.runs,
            s.warmup,
            line("encoder", &self.encoder_ms, "ms"),
            line("decode", &self.decode_tokens_per_s, "tok/s"),
            line("total", &self.total_ms, "ms"),
        )
    }
}

/// Peak resident set size in KiB (`VmHWM` in `/proc/self/status`); `None` off Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs for seed 0 from the reference C implementation.
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn rows_have_the_asked_length_end_with_eos_and_use_only_candidates() {
        let candidates = [5, 7, 9];
        let rows = draw_rows(&candidates, 1, 3, 6);
        assert_eq!(rows.len(), 3);
        for row in &rows {
            assert_eq!(row.len(), 6);
            assert_eq!(row.last(), Some(&1));
            assert!(row[..5].iter().all(|id| candidates.contains(id)));
        }
        assert_ne!(rows[0], rows[1], "rows continue one stream");
        assert_eq!(rows, draw_rows(&candidates, 1, 3, 6), "deterministic");
    }

    #[test]
    fn checksum_weights_ids_by_position() {
        assert_eq!(checksum(&[vec![3, 4], vec![5]]), 3 + 4 * 2 + 5 * 3);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Stats::of([3.0, 1.0, 2.0].into_iter());
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        assert_eq!(Stats::of([4.0, 1.0, 2.0, 3.0].into_iter()).median, 2.5);
    }

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\tprecis\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(12345));
        assert_eq!(parse_vm_hwm("Name:\tprecis\n"), None);
    }

    #[test]
    fn decode_rate_counts_output_tokens_over_the_decoder_steps_time() {
        let shape = Shape {
            batch: 2,
            input_tokens: 8,
            new_tokens: 10,
            num_beams: 4,
            runs: 1,
            warmup: 0,
        };
        // 2 rows × 10 tokens in 500 ms of decoder steps; neither the encoder nor the whole
        // call's time enters the rate.
        let run = RunTiming {
            encoder_ms: 100.0,
            decode_ms: 500.0,
            generate_ms: 650.0,
        };
        assert_eq!(run.decode_tokens_per_s(&shape), 40.0);
        // A clock that did not move: no rate, not infinity.
        let unmeasured = RunTiming {
            decode_ms: 0.0,
            ..run
        };
        assert!(unmeasured.decode_tokens_per_s(&shape).is_nan());
    }

    #[test]
    fn shape_errors_name_the_option_and_bound() {
        let err = at_least("input_tokens", 1, 2, "a token and the final EOS").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("input_tokens") && message.contains("at least 2"));
        assert!(matches!(err, precis::Error::InvalidOption { .. }));
    }
}
