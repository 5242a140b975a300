//! Flag groups several commands share (which model, how to decode, how to read and split the
//! input), each with the method that turns it into checked library options. Raw flags become
//! options here, once; the commands only use the options.

use clap::{Args, ValueEnum};
use precis::generation::{GenerationOverrides, SamplingOverrides};
use precis::loading::HubSettings;
use precis::merge::MergeStrategy;
use precis::{LoadOptions, SummaryOptions, device};

/// The padded input tokens (rows × longest row) per model batch that `precis batch` allows by
/// default: 32 rows of a full 512-token T5 window. It never cuts the default batches of T5
/// models (8 rows on CPU, 32 on a GPU), and on a GPU halves batches of full 1024-token BART
/// windows, whose encoder attention and per-beam cross-attention caches grow with
/// rows × length and would otherwise hold 32 × 1024 tokens at once.
pub const DEFAULT_BATCH_TOKENS: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Which model to run and where.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A preset name (see `precis models`), a Hugging Face repo id, or a local model folder.
    #[arg(short, long, default_value = "t5-small", env = "PRECIS_MODEL")]
    pub model: String,

    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Weight and activation precision: f32, f16 or bf16 (f32 on CPU unless asked).
    #[arg(long)]
    pub dtype: Option<String>,

    /// Never touch the network: use only models already in the Hugging Face cache or on disk.
    #[arg(long, env = "HF_HUB_OFFLINE", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub offline: bool,

    /// CPU threads for the tensor kernels (default: the physical cores).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Quantize the model's weights for faster CPU inference: q8 (int8 weights with one scale
    /// per output feature and integer dot products; 1.4-2.5x faster than float32 on t5-small,
    /// depending on the CPU, a quarter of the weight memory, summaries very close to float32
    /// but not bit-identical).
    #[arg(long, value_name = "q8")]
    pub quantize: Option<String>,
}

/// Decoding options. Each one left out keeps the model's own default, so that with none given
/// the output equals transformers' `pipeline("summarization")`.
#[derive(Debug, Args, Default)]
pub struct GenerationArgs {
    /// Beam width (1 = greedy search).
    #[arg(long)]
    pub num_beams: Option<usize>,

    /// Maximum summary length in tokens, counting the decoder start token as transformers does.
    #[arg(long)]
    pub max_length: Option<usize>,

    /// Maximum number of generated tokens (overrides --max-length).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,

    /// Minimum summary length in tokens (end of sequence is blocked until then).
    #[arg(long)]
    pub min_length: Option<usize>,

    /// Exponent of the beam-search length normalisation (>0 favours longer summaries).
    #[arg(long, allow_negative_numbers = true)]
    pub length_penalty: Option<f64>,

    /// Never repeat an n-gram of this size (0 disables).
    #[arg(long)]
    pub no_repeat_ngram_size: Option<usize>,

    /// Beam search stopping rule: true, false (heuristic) or never.
    #[arg(long)]
    pub early_stopping: Option<String>,

    /// Penalise tokens already generated (1.0 = off).
    #[arg(long)]
    pub repetition_penalty: Option<f32>,

    /// Sample instead of searching (seeded, reproducible); `--do-sample=false` searches even
    /// when the model's settings sample [default: the model's, else false].
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub do_sample: Option<bool>,

    /// Sampling temperature [default: the model's, else 1.0].
    #[arg(long)]
    pub temperature: Option<f64>,

    /// Keep only the k most likely tokens when sampling, 0 for all [default: the model's,
    /// else 50].
    #[arg(long)]
    pub top_k: Option<usize>,

    /// Nucleus sampling probability mass, 1.0 for all [default: the model's, else 1.0].
    #[arg(long)]
    pub top_p: Option<f64>,

    /// Random seed for sampling [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
}

/// How long inputs are split and merged.
#[derive(Debug, Clone, Args)]
pub struct ChunkingArgs {
    /// Encoder window in tokens (default: the model's, 512 for T5, 1024 for BART).
    #[arg(long)]
    pub max_input_tokens: Option<usize>,

    /// Largest chunk in tokens (default: the window minus the prefix and special tokens).
    #[arg(long)]
    pub chunk_tokens: Option<usize>,

    /// Sentences repeated at the start of the next chunk.
    #[arg(long, default_value_t = 1)]
    pub chunk_overlap: usize,

    /// How chunk summaries become one abstract: reduce (summarise them again) or concat.
    #[arg(long, default_value = "reduce")]
    pub merge: String,
}

/// What is read and how many chunks share a model batch, with the chunking flags.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    #[command(flatten)]
    pub chunking: ChunkingArgs,

    /// Chunks per model batch (default: chosen for the device).
    #[arg(long)]
    pub batch_size: Option<usize>,

    /// Refuse inputs larger than this many bytes.
    #[arg(long)]
    pub max_bytes: Option<u64>,
}

impl ModelArgs {
    /// The model to load and where, checked. `quiet` turns off download progress bars.
    /// (`--threads` is not here: the thread pools are sized once, by `cli::run`.)
    pub fn load_options(&self, quiet: bool) -> precis::Result<LoadOptions> {
        let mut hub = HubSettings::from_env();
        hub.offline |= self.offline;
        hub.progress &= !quiet;
        Ok(LoadOptions {
            model: self.model.clone(),
            device: self.device.parse()?,
            dtype: self.dtype.as_deref().map(device::parse_dtype).transpose()?,
            quantize: self.quantize.as_deref().map(str::parse).transpose()?,
            hub,
        })
    }
}

impl GenerationArgs {
    /// The decoding flags given, as settings over the model's own.
    pub fn overrides(&self) -> precis::Result<GenerationOverrides> {
        let sampling = SamplingOverrides {
            do_sample: self.do_sample,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        };
        // None when nothing is said, so that runs without sampling flags hash as they did.
        let sampling = (sampling != SamplingOverrides::default()).then_some(sampling);
        Ok(GenerationOverrides {
            num_beams: self.num_beams,
            max_length: self.max_length,
            max_new_tokens: self.max_new_tokens,
            min_length: self.min_length,
            length_penalty: self.length_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            early_stopping: self.early_stopping.as_deref().map(str::parse).transpose()?,
            repetition_penalty: self.repetition_penalty,
            sampling,
        })
    }
}

impl InputArgs {
    /// Every option of one summary, validated: these flags with `generation`'s, and a cap on
    /// padded tokens per model batch for the commands that have one.
    pub fn summary_options(
        &self,
        generation: &GenerationArgs,
        batch_tokens: Option<usize>,
    ) -> precis::Result<SummaryOptions> {
        self.chunking
            .summary_options(generation, self.batch_size, batch_tokens)
    }
}

impl ChunkingArgs {
    /// Every option of one summary, validated: these flags with `generation`'s and the model
    /// batch caps of the commands that have them.
    pub fn summary_options(
        &self,
        generation: &GenerationArgs,
        batch_size: Option<usize>,
        batch_tokens: Option<usize>,
    ) -> precis::Result<SummaryOptions> {
        let options = SummaryOptions {
            generation: generation.overrides()?,
            max_input_tokens: self.max_input_tokens,
            chunk_tokens: self.chunk_tokens,
            chunk_overlap: Some(self.chunk_overlap),
            merge: self.merge.parse::<MergeStrategy>()?,
            batch_size,
            batch_tokens,
        };
        options.validate()?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use precis::device::DeviceChoice;
    use precis::generation::EarlyStopping;

    use crate::cli::args::{Cli, Command};
    use crate::cli::summarize::SummarizeArgs;

    fn summarize(flags: &[&str]) -> SummarizeArgs {
        let line = ["precis", "summarize"].iter().chain(flags);
        match Cli::try_parse_from(line).unwrap().command {
            Command::Summarize(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn every_decoding_flag_becomes_its_setting() {
        let args = summarize(&[
            "--num-beams",
            "3",
            "--max-length",
            "50",
            "--max-new-tokens",
            "40",
            "--min-length",
            "5",
            "--length-penalty",
            "-0.5",
            "--no-repeat-ngram-size",
            "2",
            "--early-stopping",
            "never",
            "--repetition-penalty",
            "1.2",
            "--do-sample",
            "--temperature",
            "0.7",
            "--top-k",
            "9",
            "--top-p",
            "0.8",
            "--seed",
            "5",
        ]);
        let o = args.generation.overrides().unwrap();
        assert_eq!(
            (o.num_beams, o.max_length, o.max_new_tokens),
            (Some(3), Some(50), Some(40))
        );
        assert_eq!((o.min_length, o.length_penalty), (Some(5), Some(-0.5)));
        assert_eq!(o.no_repeat_ngram_size, Some(2));
        assert_eq!(o.early_stopping, Some(EarlyStopping::Never));
        assert_eq!(o.repetition_penalty, Some(1.2));
        let sampling = o.sampling.unwrap();
        assert_eq!(sampling.do_sample, Some(true));
        assert_eq!((sampling.temperature, sampling.top_k), (Some(0.7), Some(9)));
        assert_eq!((sampling.top_p, sampling.seed), (Some(0.8), Some(5)));
        // No sampling flag, no sampling settings: the model's own stay whole.
        let nothing = summarize(&[]).generation.overrides().unwrap();
        assert_eq!(nothing, precis::generation::GenerationOverrides::default());
        // Without --do-sample a temperature is kept for a model whose settings sample, as
        // transformers keeps it; `--do-sample=false` turns the model's sampling off.
        let warm = summarize(&["--temperature", "0.7"]).generation.overrides();
        let warm = warm.unwrap().sampling.unwrap();
        assert_eq!((warm.do_sample, warm.temperature), (None, Some(0.7)));
        let off = summarize(&["--do-sample=false"]).generation.overrides();
        assert_eq!(off.unwrap().sampling.unwrap().do_sample, Some(false));
    }

    #[test]
    fn input_flags_become_summary_options_and_are_checked() {
        let args = summarize(&[
            "--max-input-tokens",
            "256",
            "--chunk-tokens",
            "100",
            "--chunk-overlap",
            "2",
            "--merge",
            "concat",
            "--batch-size",
            "4",
            "--num-beams",
            "2",
        ]);
        let options = args
            .input
            .summary_options(&args.generation, Some(999))
            .unwrap();
        assert_eq!(
            (options.max_input_tokens, options.chunk_tokens),
            (Some(256), Some(100))
        );
        assert_eq!(options.chunk_overlap, Some(2));
        assert_eq!(options.merge, precis::merge::MergeStrategy::Concat);
        assert_eq!(
            (options.batch_size, options.batch_tokens),
            (Some(4), Some(999))
        );
        assert_eq!(options.generation.num_beams, Some(2));
        let args = summarize(&["--batch-size", "0"]);
        let err = args
            .input
            .summary_options(&args.generation, None)
            .unwrap_err();
        assert!(err.to_string().contains("0"), "{err}");
    }

    #[test]
    fn model_flags_become_load_options() {
        let args = summarize(&[
            "--model",
            "./m",
            "--device",
            "cpu",
            "--dtype",
            "bf16",
            "--quantize",
            "q8",
            "--offline",
        ]);
        let load = args.model.load_options(true).unwrap();
        assert_eq!(
            (load.model.as_str(), load.device),
            ("./m", DeviceChoice::Cpu)
        );
        assert_eq!(load.dtype, Some(candle_core::DType::BF16));
        assert_eq!(load.quantize, Some(precis::Quantization::Q8));
        assert!(load.hub.offline && !load.hub.progress);
        let bad = summarize(&["--device", "tpu"]).model.load_options(false);
        assert!(bad.unwrap_err().to_string().contains("tpu"));
    }

    #[test]
    fn threads_are_read_from_every_command_that_runs_a_model() {
        let threads = |line: &[&str]| Cli::try_parse_from(line).unwrap().command.threads();
        assert_eq!(threads(&["precis", "summarize", "--threads", "3"]), Some(3));
        assert_eq!(threads(&["precis", "bench", "--threads", "2"]), Some(2));
        assert_eq!(
            threads(&["precis", "batch", "in", "-o", "out", "--threads", "4"]),
            Some(4)
        );
        assert_eq!(threads(&["precis", "summarize"]), None);
        assert_eq!(threads(&["precis", "models"]), None);
    }
}
