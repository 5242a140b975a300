//! Where tensors live and in which float type: `--device auto|cpu|cuda|cuda:N|metal` and
//! `--dtype f32|f16|bf16`. The only file that knows which accelerators this build has.

use std::str::FromStr;

use candle_core::{DType, Device};

use crate::error::{Error, Result};

const DEVICE_VALUES: &str = "expected one of auto, cpu, cuda, cuda:N (N = GPU index), metal";
const DTYPE_VALUES: &str = "expected one of f32, f16, bf16";

/// A device as the user asked for it, before anything is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA GPU 0 if built in and present, else Metal if built in and present, else CPU.
    #[default]
    Auto,
    Cpu,
    /// A CUDA GPU by index (`cuda` means `cuda:0`).
    Cuda(usize),
    Metal,
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        let invalid = || Error::InvalidOption {
            option: "device",
            value: value.to_string(),
            expected: DEVICE_VALUES.to_string(),
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal),
            other => match other.strip_prefix("cuda:") {
                Some(index) => index.parse().map(Self::Cuda).map_err(|_| invalid()),
                None => Err(invalid()),
            },
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(index) => write!(f, "cuda:{index}"),
            Self::Metal => f.write_str("metal"),
        }
    }
}

const NO_CUDA: &str = "this precis was built without CUDA support; rebuild it with \
                       `--features cuda` (e.g. `cargo install precis --features cuda`)";
const NO_METAL: &str = "this precis was built without Metal support; rebuild it with \
                        `--features metal` (e.g. `cargo install precis --features metal`)";

impl DeviceChoice {
    /// Opens the device. An accelerator this build lacks is an error that says how to build
    /// with it; one that is built in but fails to open keeps candle's error as the source.
    pub fn open(self) -> Result<Device> {
        let unavailable = |why: &str| Error::Device(self.to_string(), why.to_string());
        let failed = |source| Error::DeviceInit {
            device: self.to_string(),
            source,
        };
        match self {
            Self::Auto => Ok(best_device()),
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(_) if !cfg!(feature = "cuda") => Err(unavailable(NO_CUDA)),
            Self::Cuda(index) => open_cuda(index).map_err(failed),
            Self::Metal if !cfg!(feature = "metal") => Err(unavailable(NO_METAL)),
            Self::Metal => Device::new_metal(0).map_err(failed),
        }
    }
}

/// The fastest device this build can open: CUDA GPU 0, then Metal, then CPU.
pub fn best_device() -> Device {
    if cfg!(feature = "cuda") {
        match open_cuda(0) {
            Ok(device) => return device,
            Err(error) => tracing::debug!("no usable CUDA GPU, trying the next device: {error}"),
        }
    }
    if cfg!(feature = "metal") {
        match Device::new_metal(0) {
            Ok(device) => return device,
            Err(error) => tracing::debug!("no usable Metal GPU, using the CPU: {error}"),
        }
    }
    Device::Cpu
}

/// A short name for messages and logs: `cpu`, `cuda:0`, `metal:0`.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

fn open_cuda(index: usize) -> candle_core::Result<Device> {
    // cudarc loads the driver library lazily and panics when it is absent; turn that into an
    // ordinary error so `auto` can fall back and `cuda` can say what is wrong.
    std::panic::catch_unwind(|| Device::new_cuda(index)).unwrap_or_else(|_| {
        Err(candle_core::Error::Msg(
            "the CUDA driver library could not be loaded (is an NVIDIA driver installed?)"
                .to_string(),
        ))
    })
}

/// Parses `--dtype`. f16 is accepted for any model, but T5 checkpoints overflow in f16
/// (their activations exceed 65504); bf16 or f32 are the safe choices for them.
pub fn parse_dtype(value: &str) -> Result<DType> {
    match value.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "f16" | "float16" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        _ => Err(Error::InvalidOption {
            option: "dtype",
            value: value.to_string(),
            expected: DTYPE_VALUES.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        let cases = [
            ("auto", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu),
            ("CPU", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:0", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
            (" metal ", DeviceChoice::Metal),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<DeviceChoice>().unwrap(), expected, "{text}");
        }
        assert_eq!(DeviceChoice::default(), DeviceChoice::Auto);
    }

    #[test]
    fn bad_device_names_name_the_option_the_values_and_the_input() {
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "", "tpu"] {
            let err = bad.parse::<DeviceChoice>().unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(
                    err,
                    Error::InvalidOption {
                        option: "device",
                        ..
                    }
                ),
                "{bad}"
            );
            assert!(message.contains("device"), "{message}");
            assert!(
                message.contains("cuda:N") && message.contains("metal"),
                "{message}"
            );
            assert!(message.contains(bad), "{message}");
        }
    }

    #[test]
    fn display_round_trips() {
        for choice in [
            DeviceChoice::Auto,
            DeviceChoice::Cpu,
            DeviceChoice::Cuda(2),
            DeviceChoice::Metal,
        ] {
            assert_eq!(choice.to_string().parse::<DeviceChoice>().unwrap(), choice);
        }
    }

    #[test]
    fn cpu_and_auto_always_open() {
        assert!(DeviceChoice::Cpu.open().unwrap().is_cpu());
        let auto = DeviceChoice::Auto.open().unwrap();
        if !cfg!(any(feature = "cuda", feature = "metal")) {
            assert!(auto.is_cpu());
        }
        assert_eq!(describe(&Device::Cpu), "cpu");
    }

    #[test]
    fn accelerators_missing_from_the_build_say_which_feature_to_enable() {
        if !cfg!(feature = "cuda") {
            let message = DeviceChoice::Cuda(1).open().unwrap_err().to_string();
            assert!(
                message.contains("cuda:1") && message.contains("--features cuda"),
                "{message}"
            );
        }
        if !cfg!(feature = "metal") {
            let message = DeviceChoice::Metal.open().unwrap_err().to_string();
            assert!(
                message.contains("metal") && message.contains("--features metal"),
                "{message}"
            );
        }
    }

    #[test]
    fn dtypes_parse_and_bad_ones_are_explained() {
        assert_eq!(parse_dtype("f32").unwrap(), DType::F32);
        assert_eq!(parse_dtype("F16").unwrap(), DType::F16);
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert_eq!(parse_dtype("bfloat16").unwrap(), DType::BF16);
        let err = parse_dtype("f64").unwrap_err();
        let message = err.to_string();
        assert!(matches!(
            err,
            Error::InvalidOption {
                option: "dtype",
                ..
            }
        ));
        assert!(
            message.contains("f64") && message.contains("bf16"),
            "{message}"
        );
    }
}
