//! Which hand-written CPU kernels run: the best path the CPU supports, decided once per process,
//! or a lower one forced with `PRECIS_CPU_KERNELS` (to compare paths, or to test each of them).
//!
//! One binary carries every path; each kernel is compiled per path with `#[target_feature]` and
//! picked here at run time, never with `-C target-cpu=native`. A path is a fixed set of
//! instruction-set extensions, so forcing `avx2` on an AVX-512 machine runs exactly what an
//! AVX2-only machine runs.

use std::fmt;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The environment variable that forces a kernel path.
pub const KERNELS_ENV: &str = "PRECIS_CPU_KERNELS";

/// A set of CPU kernels, from the most portable to the fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelPath {
    /// Plain Rust loops, vectorised by the compiler for the build's baseline target.
    Portable,
    /// AVX2 and FMA: 8-lane float32; int8 products with `vpmaddubsw` (e.g. AMD EPYC Zen 2/3).
    Avx2,
    /// AVX2 and FMA plus AVX-VNNI: int8 products with 256-bit `vpdpbusd` (CPUs that have
    /// AVX-VNNI without AVX-512).
    Avx2Vnni,
    /// AVX-512 F/BW/VL/DQ with AVX512-VNNI: 16-lane float32 and 512-bit `vpdpbusd`
    /// (Intel Xeon since Cascade Lake, AMD EPYC since Zen 4).
    Avx512,
    /// The AVX-512 path plus AVX512-BF16 (AMD EPYC since Zen 4, Intel Xeon since Cooper Lake):
    /// `--dtype bf16` products by `vdpbf16ps`, 32 multiply-adds an instruction, with the bits
    /// of the widening kernels ([`super::bf16`]); float32 and int8 products run the `avx512`
    /// kernels.
    Avx512Bf16,
    /// The AVX-512 path plus Intel's AMX tiles with bfloat16 products (Intel Xeon since
    /// Sapphire Rapids): `--dtype bf16` products run on the tiles ([`super::amx`]); float32
    /// and int8 products run the `avx512` kernels, so their results are those of `avx512`.
    Amx,
}

impl KernelPath {
    /// Every path, fastest first.
    pub const ALL: [KernelPath; 6] = [
        Self::Amx,
        Self::Avx512Bf16,
        Self::Avx512,
        Self::Avx2Vnni,
        Self::Avx2,
        Self::Portable,
    ];

    /// The name `PRECIS_CPU_KERNELS` takes and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx2Vnni => "avx2-vnni",
            Self::Avx512 => "avx512",
            Self::Avx512Bf16 => "avx512-bf16",
            Self::Amx => "amx",
        }
    }

    /// The path whose kernels run everything but the bfloat16 products: `amx` and
    /// `avx512-bf16` add only those to `avx512`, so float32, int8 and the element-wise
    /// kernels dispatch on this and run `avx512`'s. Its features are a subset of this path's,
    /// so a CPU that supports this path supports that one.
    pub(crate) fn vector_kernels(self) -> KernelPath {
        match self {
            Self::Amx | Self::Avx512Bf16 => Self::Avx512,
            other => other,
        }
    }

    /// Whether this path has AVX512-BF16's instructions (`amx`, `avx512-bf16`): the bfloat16
    /// conversions and products that take them instead of the widening kernels. Read off
    /// [`Self::features`], so that a new path with the feature gets them too.
    pub(crate) fn has_avx512_bf16(self) -> bool {
        self.features().contains(&"avx512bf16")
    }

    /// The CPU features this path's kernels are compiled for (`avx512-bf16`: `avx512`'s and
    /// AVX512-BF16; `amx`: those, which every CPU with the tiles has, and the tiles with
    /// bfloat16 products, which the process may use).
    fn features(self) -> &'static [&'static str] {
        const AVX512_AND_AMX: [&str; 10] = [
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512vnni",
            "avx512bf16",
            "amx-bf16",
        ];
        match self {
            Self::Portable => &[],
            Self::Avx2 => &["avx2", "fma", "f16c"],
            Self::Avx2Vnni => &["avx2", "fma", "f16c", "avxvnni"],
            Self::Avx512 => &AVX512_AND_AMX[..8],
            Self::Avx512Bf16 => &AVX512_AND_AMX[..9],
            Self::Amx => &AVX512_AND_AMX,
        }
    }

    /// The features of this path that a CPU with features `has` lacks.
    fn missing_features(self, has: &dyn Fn(&str) -> bool) -> Vec<&'static str> {
        self.features()
            .iter()
            .copied()
            .filter(|feature| !has(feature))
            .collect()
    }

    /// Every path a CPU with features `has` can run, fastest first; `portable` always.
    fn supported_with(has: &dyn Fn(&str) -> bool) -> Vec<KernelPath> {
        Self::ALL
            .into_iter()
            .filter(|path| path.missing_features(has).is_empty())
            .collect()
    }

    /// Every path this CPU can run, fastest first; `portable` is always among them.
    pub fn supported() -> Vec<KernelPath> {
        Self::supported_with(&cpu_has)
    }

    /// The fastest path this CPU can run.
    pub fn detected() -> KernelPath {
        Self::supported()[0]
    }

    /// The path `value` (of [`KERNELS_ENV`]) asks for, if this CPU can run it.
    pub fn requested(value: &str) -> Result<KernelPath> {
        Self::requested_with(value, &cpu_has)
    }

    fn requested_with(value: &str, has: &dyn Fn(&str) -> bool) -> Result<KernelPath> {
        let invalid = |expected: String| Error::InvalidOption {
            option: KERNELS_ENV,
            value: value.to_string(),
            expected,
        };
        let names = |paths: &[KernelPath]| {
            let names: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
            names.join(", ")
        };
        let wanted = value.trim().to_ascii_lowercase();
        let Some(path) = Self::ALL.into_iter().find(|p| p.as_str() == wanted) else {
            return Err(invalid(format!("expected one of {}", names(&Self::ALL))));
        };
        let missing = path.missing_features(has);
        if !missing.is_empty() {
            return Err(invalid(format!(
                "this CPU lacks {}; it supports {}",
                missing.join(", "),
                names(&Self::supported_with(has))
            )));
        }
        Ok(path)
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KernelPath {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        Self::requested(value)
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has(feature: &str) -> bool {
    // `is_x86_feature_detected!` takes a literal: one arm per feature a path names.
    match feature {
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        "avxvnni" => std::arch::is_x86_feature_detected!("avxvnni"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
        "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
        "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
        // The tiles, with the kernel's leave to use them (asked for once, here).
        "amx-bf16" => super::amx::usable(),
        _ => false,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has(_feature: &str) -> bool {
    false
}

/// The path in use, chosen on first call: [`KERNELS_ENV`] when it is set, else the detected one;
/// `Err` holds a value of the variable that names no path this CPU can run.
static SELECTED: OnceLock<std::result::Result<KernelPath, String>> = OnceLock::new();

fn selected() -> &'static std::result::Result<KernelPath, String> {
    SELECTED.get_or_init(|| {
        let detected = KernelPath::detected();
        let chosen = match std::env::var(KERNELS_ENV) {
            Ok(value) => KernelPath::requested(&value).map_err(|_| value),
            Err(_) => Ok(detected),
        };
        if let Ok(path) = &chosen {
            tracing::info!("CPU kernels: {path} (this CPU supports up to {detected})");
        }
        chosen
    })
}

/// The kernel path this process uses, or the error for a `PRECIS_CPU_KERNELS` value that names
/// no path or one this CPU cannot run. Model loading on the CPU calls this first, so a bad
/// value stops the program before any kernel runs.
pub fn cpu_kernels() -> Result<KernelPath> {
    match selected() {
        Ok(path) => Ok(*path),
        Err(value) => KernelPath::requested(value),
    }
}

/// The path the kernels take. Infallible for the kernels' sake: with an invalid
/// `PRECIS_CPU_KERNELS` (which [`cpu_kernels`] reports at load time) it is the portable path,
/// which every CPU runs.
pub(crate) fn active() -> KernelPath {
    selected().as_ref().copied().unwrap_or(KernelPath::Portable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_is_always_supported_and_detection_picks_the_fastest() {
        let supported = KernelPath::supported();
        assert_eq!(supported.last(), Some(&KernelPath::Portable));
        assert_eq!(KernelPath::detected(), supported[0]);
        assert!(supported.windows(2).all(|pair| pair[0] > pair[1]));
    }

    #[test]
    fn the_bf16_paths_run_avx512s_other_kernels_which_their_cpus_support() {
        for path in KernelPath::ALL {
            let vector = path.vector_kernels();
            let expected = match path {
                KernelPath::Amx | KernelPath::Avx512Bf16 => KernelPath::Avx512,
                other => other,
            };
            assert_eq!(
                path.has_avx512_bf16(),
                matches!(path, KernelPath::Amx | KernelPath::Avx512Bf16),
                "{path}"
            );
            assert_eq!(vector, expected, "{path}");
            // The dispatches run `vector`'s kernels on a CPU that supports `path`.
            let has = |feature: &str| path.features().contains(&feature);
            assert_eq!(vector.missing_features(&has), Vec::<&str>::new(), "{path}");
        }
    }

    #[test]
    fn requests_name_a_supported_path_or_fail_with_the_choices() {
        for path in KernelPath::supported() {
            assert_eq!(KernelPath::requested(path.as_str()).unwrap(), path);
        }
        assert_eq!(
            KernelPath::requested(" AVX2 ").ok(),
            KernelPath::supported()
                .contains(&KernelPath::Avx2)
                .then_some(KernelPath::Avx2)
        );
        let message = KernelPath::requested("sse9").unwrap_err().to_string();
        assert!(
            message.contains(KERNELS_ENV)
                && message.contains("sse9")
                && message.contains("amx, avx512-bf16, avx512, avx2-vnni, avx2, portable"),
            "{message}"
        );
    }

    #[test]
    fn a_path_above_the_cpu_is_refused_naming_what_it_lacks() {
        // An AVX2-only CPU, such as AMD EPYC Zen 2/3.
        let avx2_only = |feature: &str| matches!(feature, "avx2" | "fma" | "f16c");
        assert_eq!(
            KernelPath::supported_with(&avx2_only),
            [KernelPath::Avx2, KernelPath::Portable]
        );
        let message = KernelPath::requested_with("avx512", &avx2_only)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("lacks avx512f") && message.contains("supports avx2, portable"),
            "{message}"
        );
        assert!(KernelPath::requested_with("avx2-vnni", &avx2_only).is_err());
        assert_eq!(
            KernelPath::requested_with("avx2", &avx2_only).unwrap(),
            KernelPath::Avx2
        );
        // An AVX-512 CPU without AMX (AMD EPYC Zen 4): no `amx` path, and asking names why.
        let zen4 = |feature: &str| feature != "amx-bf16" && feature != "avxvnni";
        assert_eq!(
            KernelPath::supported_with(&zen4),
            [
                KernelPath::Avx512Bf16,
                KernelPath::Avx512,
                KernelPath::Avx2,
                KernelPath::Portable
            ]
        );
        // AVX-512 without AVX512-BF16 (Intel Xeon Cascade Lake): no `avx512-bf16` either.
        let cascade_lake =
            |feature: &str| !matches!(feature, "amx-bf16" | "avx512bf16" | "avxvnni");
        assert_eq!(
            KernelPath::supported_with(&cascade_lake)[0],
            KernelPath::Avx512
        );
        let message = KernelPath::requested_with("amx", &zen4)
            .unwrap_err()
            .to_string();
        assert!(message.contains("lacks amx-bf16"), "{message}");
        let with_tiles = |feature: &str| feature != "avxvnni";
        assert_eq!(KernelPath::supported_with(&with_tiles)[0], KernelPath::Amx);
        let nothing = |_: &str| false;
        assert_eq!(KernelPath::supported_with(&nothing), [KernelPath::Portable]);
    }
}
