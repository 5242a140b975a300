//! The one model loader: a model's files, a device, a dtype and an optional quantization become
//! a [`LoadedModel`] — the network, its tokenizer, its parsed config and summarisation
//! defaults, and how many parameters it stores. The summariser, `precis bench` and the server
//! all load through here, so the default-dtype rule and the weights-error mapping live once.

use candle_core::{DType, Device};
use tokenizers::Tokenizer;

use super::defaults::SummarizationDefaults;
use super::files::{JsonFile, ModelFiles};
use super::hub::HubSettings;
use super::tokenizer::load_tokenizer;
use super::weights::var_builder;
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::models::{self, Quantization, Seq2Seq};

/// How to find and place a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// A catalogue preset, a Hugging Face repo id or a local folder.
    pub model: String,
    pub device: DeviceChoice,
    /// `None`: [`default_dtype`] of the device.
    pub dtype: Option<DType>,
    /// Quantize the projections while loading (CPU, float32 only).
    pub quantize: Option<Quantization>,
    pub hub: HubSettings,
}

impl LoadOptions {
    /// `model` on the best available device, with hub settings from the environment.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            device: DeviceChoice::Auto,
            dtype: None,
            quantize: None,
            hub: HubSettings::from_env(),
        }
    }

    /// The device to open: as asked, except that `auto` means the CPU for a quantized model,
    /// whose kernels run only there.
    pub fn device_choice(&self) -> DeviceChoice {
        match (self.device, self.quantize) {
            (DeviceChoice::Auto, Some(_)) => DeviceChoice::Cpu,
            (choice, _) => choice,
        }
    }
}

/// The precision a model loads in unless asked otherwise: float32 on the CPU (half-precision
/// CPU kernels are slower, not faster), bfloat16 on a GPU (float16 overflows in T5).
pub fn default_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}

/// A model ready to run: everything loading learned about it. `Send + Sync`, so one loaded
/// model can serve many threads behind an `Arc`.
pub struct LoadedModel {
    /// The model name as the user gave it (preset, repo id or folder).
    pub name: String,
    pub model: Box<dyn Seq2Seq>,
    pub tokenizer: Tokenizer,
    /// `config.json`, parsed.
    pub config: JsonFile,
    /// The checkpoint's own summarisation settings (prefix, beams, lengths, window).
    pub defaults: SummarizationDefaults,
    pub device: Device,
    /// The precision the weights were loaded in.
    pub dtype: DType,
    /// The quantization of the projections, if any.
    pub quantization: Option<Quantization>,
    /// Parameters the checkpoint stores, when its format tells without reading the weights.
    pub parameters: Option<usize>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.name)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .field("quantization", &self.quantization)
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

impl LoadedModel {
    /// The checkpoint's `model_type` (`t5`, `bart`, `pegasus`, ...), which chose the model code.
    pub fn architecture(&self) -> &str {
        self.config
            .json
            .get("model_type")
            .and_then(|t| t.as_str())
            .unwrap_or("?")
    }
}

/// Finds the model (downloading it if needed), opens the device and loads it in the asked or
/// the device's default precision.
pub fn load(options: &LoadOptions) -> Result<LoadedModel> {
    let files = super::resolve(&options.model, &options.hub)?;
    load_resolved(&files, options)
}

/// [`load`] once the files are found: opens the device `options` ask for and loads `files`
/// there.
pub fn load_resolved(files: &ModelFiles, options: &LoadOptions) -> Result<LoadedModel> {
    let device = options.device_choice().open()?;
    let dtype = options.dtype.unwrap_or_else(|| default_dtype(&device));
    load_files(files, &device, dtype, options.quantize)
}

/// Loads a model whose files are already on disk, quantizing its projections layer by layer
/// as they load when `quantization` is given.
pub fn load_files(
    files: &ModelFiles,
    device: &Device,
    dtype: DType,
    quantization: Option<Quantization>,
) -> Result<LoadedModel> {
    let defaults = SummarizationDefaults::from_json(
        &files.config,
        files.generation_config.as_ref(),
        files.preset.as_ref(),
    )?;
    let tokenizer = load_tokenizer(files)?;
    let (build_dtype, projections) = built_as(device, dtype, quantization);
    let (vb, parameters) = var_builder(files, build_dtype, device)?;
    let model =
        models::from_config_with(&files.config.json, vb, projections).map_err(|e| match e {
            // A tensor missing or misshapen: the weights do not fit the config.
            Error::Candle(source) => Error::ModelWeights {
                model: files.name.clone(),
                source,
            },
            other => other,
        })?;
    Ok(LoadedModel {
        name: files.name.clone(),
        model,
        tokenizer,
        config: files.config.clone(),
        defaults,
        device: device.clone(),
        dtype,
        quantization,
        parameters,
    })
}

/// The dtype a model is built in and how its projections are stored, for `dtype` and
/// `quantization` on `device`. bfloat16 on the CPU builds a float32 model whose projections
/// hold bfloat16 weights and multiply in bfloat16 ([`Quantization::Bf16`]): candle's CPU
/// kernels would run every operation in bfloat16, several times slower than float32, where
/// the projections on AMX tiles run faster than float32 and everything else keeps float32's
/// precision. Anything else is built as asked.
fn built_as(
    device: &Device,
    dtype: DType,
    quantization: Option<Quantization>,
) -> (DType, Option<Quantization>) {
    match (device.is_cpu(), dtype, quantization) {
        (true, DType::BF16, None) => (DType::F32, Some(Quantization::Bf16)),
        _ => (dtype, quantization),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> ModelFiles {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut hub = HubSettings::from_vars(|_| None);
        hub.offline = true;
        super::super::resolve(dir.join(name).to_str().unwrap(), &hub).unwrap()
    }

    #[test]
    fn a_loaded_model_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<LoadedModel>();
    }

    #[test]
    fn loading_reports_config_defaults_and_parameters() {
        let files = fixture("bart-tiny");
        let loaded = load_files(&files, &Device::Cpu, DType::F32, None).unwrap();
        assert_eq!(loaded.architecture(), "bart");
        assert_eq!(loaded.name, files.name);
        let window = files.config.json["max_position_embeddings"]
            .as_u64()
            .unwrap() as usize;
        assert_eq!(loaded.defaults.window, window);
        let vocab = files.config.json["vocab_size"].as_u64().unwrap() as usize;
        let d_model = files.config.json["d_model"].as_u64().unwrap() as usize;
        let parameters = loaded.parameters.expect("safetensors are counted");
        assert!(parameters > vocab * d_model, "{parameters}");
        assert_eq!(loaded.model.spec().vocab_size, vocab);
    }

    #[test]
    fn weights_that_do_not_fit_the_config_name_the_model() {
        let mut files = fixture("t5-tiny");
        files.config.json["d_model"] = (files.config.json["d_model"].as_u64().unwrap() * 2).into();
        match load_files(&files, &Device::Cpu, DType::F32, None) {
            Err(Error::ModelWeights { model, .. }) => assert_eq!(model, files.name),
            other => panic!("expected ModelWeights, got {other:?}"),
        }
    }

    #[test]
    fn cpus_default_to_float32() {
        assert_eq!(default_dtype(&Device::Cpu), DType::F32);
    }

    #[test]
    fn a_quantized_model_on_auto_goes_to_the_cpu_and_an_explicit_device_is_kept() {
        let mut options = LoadOptions::new("t5-small");
        assert_eq!(options.device_choice(), DeviceChoice::Auto);
        options.quantize = Some(Quantization::Q8);
        assert_eq!(options.device_choice(), DeviceChoice::Cpu);
        // Asked for explicitly, the GPU stays: loading then refuses --quantize with a reason.
        options.device = DeviceChoice::Cuda(0);
        assert_eq!(options.device_choice(), DeviceChoice::Cuda(0));
    }
}
