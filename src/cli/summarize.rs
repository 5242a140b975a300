//! `precis summarize FILE...|-`: read and check every input first (so a bad file fails before
//! the model loads and before anything is printed), load the model once, print each summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use precis::generation::{GenerationOverrides, Sampling};
use precis::loading::HubSettings;
use precis::merge::MergeStrategy;
use precis::text::{self, Document};
use precis::{LoadOptions, Summarizer, SummaryOptions, device};

use super::args::{GenerationArgs, InputArgs, ModelArgs, SummarizeArgs};
use super::output::Printer;
use super::progress::ChunkProgress;

pub fn run(args: SummarizeArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let options = summary_options(&args.generation, &args.input)?;
    let load = load_options(&args.model, quiet)?;
    let inputs = read_inputs(&args.files, args.input.max_bytes)?;

    let summarizer =
        Summarizer::load(&load).with_context(|| format!("cannot load model '{}'", load.model))?;
    let mut printer = Printer::new(args.format, inputs.len() > 1);
    for (document, text) in &inputs {
        let mut progress = ChunkProgress::new(&document.name, quiet);
        let summary = summarizer
            .summarize_with_progress(text, &options, &mut |event| progress.update(event))
            .with_context(|| format!("{}: summarising failed", document.name))?;
        progress.finish();
        if !printer.print(&document.name, &summarizer, &summary)? {
            break; // stdout was closed (e.g. piped into `head`): not an error.
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and cleans every input up front; no input means standard input.
fn read_inputs(
    files: &[PathBuf],
    max_bytes: Option<u64>,
) -> anyhow::Result<Vec<(Document, String)>> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    files
        .iter()
        .map(|path| {
            let document = text::read_document(Path::new(path), max_bytes)?;
            let cleaned = text::prepare(&document)?;
            Ok((document, cleaned))
        })
        .collect()
}

pub fn load_options(args: &ModelArgs, quiet: bool) -> anyhow::Result<LoadOptions> {
    if let Some(threads) = args.threads {
        if threads == 0 {
            return Err(precis::Error::InvalidOption {
                option: "--threads",
                value: "0".into(),
                expected: "must be at least 1".into(),
            }
            .into());
        }
        // candle's CPU kernels size their thread pools from this variable on first use,
        // which has not happened yet: nothing else runs in this process at this point.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    } else if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Physical cores, as candle counts them: rayon's own default is every logical CPU, and
        // two hyper-threads of one core only fight over its vector units and memory bandwidth.
        let physical = candle_core::utils::get_num_threads();
        // SAFETY: as above, before any other thread exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", physical.to_string()) };
    }
    let mut hub = HubSettings::from_env();
    hub.offline |= args.offline;
    hub.progress &= !quiet;
    Ok(LoadOptions {
        model: args.model.clone(),
        device: args.device.parse()?,
        dtype: args.dtype.as_deref().map(device::parse_dtype).transpose()?,
        quantize: args.quantize.as_deref().map(str::parse).transpose()?,
        hub,
    })
}

pub fn summary_options(
    generation: &GenerationArgs,
    input: &InputArgs,
) -> anyhow::Result<SummaryOptions> {
    let sampling = generation.do_sample.then(|| Sampling {
        temperature: generation.temperature.unwrap_or(1.0),
        top_k: generation.top_k,
        top_p: generation.top_p,
        seed: generation.seed,
    });
    let options = SummaryOptions {
        generation: GenerationOverrides {
            num_beams: generation.num_beams,
            max_length: generation.max_length,
            max_new_tokens: generation.max_new_tokens,
            min_length: generation.min_length,
            length_penalty: generation.length_penalty,
            no_repeat_ngram_size: generation.no_repeat_ngram_size,
            early_stopping: generation
                .early_stopping
                .as_deref()
                .map(str::parse)
                .transpose()?,
            repetition_penalty: generation.repetition_penalty,
            sampling,
        },
        max_input_tokens: input.max_input_tokens,
        chunk_tokens: input.chunk_tokens,
        chunk_overlap: Some(input.chunk_overlap),
        merge: input.merge.parse::<MergeStrategy>()?,
        batch_size: input.batch_size,
        batch_tokens: None,
    };
    options.validate()?;
    Ok(options)
}
