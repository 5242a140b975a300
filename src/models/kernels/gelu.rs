//! The exact (erf) GELU, `x · (1 + erf(x / √2)) / 2`, and its tanh approximation, on 16 lanes
//! at once.
//!
//! candle computes it per value with libm's scalar `erff`, which took 5% of DistilBART's encoder
//! (one call per hidden activation: 50 M of them for one 1024-token input). Here `1 + erf` is a
//! branch-free formula the compiler turns into vector instructions of the path:
//! - `|z| < 0.5`: `1 + z · P(z²)`, erf's Taylor series to the z¹³ term (the next is below 1e-9);
//! - otherwise: from `erfc(|z|) = t · e^(-z² + Q(t))`, `t = 1 / (1 + |z| / 2)`, the Chebyshev
//!   fit of Numerical Recipes (`erfcc`, relative error below 1.2e-7 for every `z`), as
//!   `2 - erfc` for positive `z` and `erfc` for negative `z`.
//!
//! Against the exact value in f64 the result is within 1.2e-7 · |x| everywhere (libm's form:
//! 1.0e-7) and far closer for negative inputs, where `erf + 1` loses its digits to cancellation
//! in libm's form (at x = -6 it is 100% off, here 4e-6). PyTorch's own CPU GELU also
//! approximates erf (a 5-term polynomial within 1.5e-7): no float formula matches it bit for bit,
//! and the tokens stay those of transformers (the goldens' margins are far wider than this).
//! Every path evaluates the same operations in the same order, so every path gives the same bits.

// Lanes are indexed on purpose: the loops unroll into whole vector registers.
#![allow(clippy::needless_range_loop)]

use std::f32::consts::FRAC_1_SQRT_2;

use rayon::prelude::*;

use super::path::{self, KernelPath};
use super::softmax::{LANES, exp_lanes};

/// Values per parallel task.
const CHUNK: usize = 16 * 1024;

/// `values` -> `gelu(values)` in place, on the thread pool, on the kernel path in use.
pub fn gelu_erf_in_place(values: &mut [f32]) {
    in_place(values, gelu_erf_on);
}

/// `values` -> the tanh approximation of GELU (transformers' `gelu_new`), in place, on the
/// thread pool, on the kernel path in use.
pub fn gelu_tanh_in_place(values: &mut [f32]) {
    in_place(values, gelu_tanh_on);
}

fn in_place(values: &mut [f32], on: fn(KernelPath, &mut [f32])) {
    let path = path::active();
    values
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| on(path, chunk));
}

type Lanes = [f32; LANES];

/// `$lanes` over every value of `$values`, 16 at a time (a macro, not a function taking the
/// lanes function: written out where it is used, the call is inlined into the path's code).
macro_rules! map_lanes {
    ($values:expr, $lanes:ident) => {{
        let values: &mut [f32] = $values;
        let mut chunks = values.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            let lanes: &mut Lanes = chunk.try_into().expect("whole chunk");
            *lanes = $lanes(*lanes);
        }
        let tail = chunks.into_remainder();
        let mut lanes = [0f32; LANES];
        lanes[..tail.len()].copy_from_slice(tail);
        let out = $lanes(lanes);
        tail.copy_from_slice(&out[..tail.len()]);
    }};
}

/// `$on(path, values)`: `$lanes` over `values` on one thread, on `path` (which the CPU must
/// support). Each path's variant calls `$lanes` itself, so that the lanes are inlined into code
/// compiled for the path's features (passed as a generic `impl Fn` they were not: they ran as
/// baseline code calling libm's `floorf`, a quarter of an encoder's time).
macro_rules! on_every_path {
    ($(#[$doc:meta])* $on:ident, $lanes:ident) => {
        $(#[$doc])*
        pub(crate) fn $on(path: KernelPath, values: &mut [f32]) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
            unsafe fn avx512(values: &mut [f32]) {
                map_lanes!(values, $lanes);
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(values: &mut [f32]) {
                map_lanes!(values, $lanes);
            }

            match path.vector_kernels() {
                // SAFETY: the CPU supports the path's features (`path` is one it runs).
                #[cfg(target_arch = "x86_64")]
                KernelPath::Avx512 => unsafe { avx512(values) },
                #[cfg(target_arch = "x86_64")]
                KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe { avx2(values) },
                _ => map_lanes!(values, $lanes),
            }
        }
    };
}

on_every_path!(
    /// [`gelu_erf_in_place`] on one thread, on a given path (which the CPU must support).
    gelu_erf_on,
    gelu_erf_lanes
);

on_every_path!(
    /// [`gelu_tanh_in_place`] on one thread, on a given path (which the CPU must support).
    gelu_tanh_on,
    gelu_tanh_lanes
);

/// `0.5 x (1 + tanh(y))`, `y = √(2/π) (x + 0.044715 x³)`, computed as `x / (1 + e^(-2y))`: the
/// same function (`1 + tanh(y) = 2 / (1 + e^(-2y))`) with no cancellation for negative inputs
/// and one vectorised exponential instead of libm's scalar `tanhf`.
#[inline(always)]
fn gelu_tanh_lanes(x: Lanes) -> Lanes {
    const MINUS_TWO_SQRT_2_OVER_PI: f32 = -1.595_769;
    let mut exponent = [0f32; LANES];
    for i in 0..LANES {
        exponent[i] = MINUS_TWO_SQRT_2_OVER_PI * (x[i] + 0.044_715 * x[i] * x[i] * x[i]);
    }
    let e = exp_lanes(exponent);
    let mut out = [0f32; LANES];
    for i in 0..LANES {
        out[i] = x[i] / (1.0 + e[i]);
    }
    out
}

/// Numerical Recipes' `erfcc` coefficients: `erfc(a) = t · e^(-a² + Q(t))`, lowest power first.
const ERFC: [f32; 10] = [
    -1.265_512_2,
    1.000_023_7,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_204,
    1.488_515_9,
    -0.822_152_2,
    0.170_872_77,
];

/// erf's Taylor series over `z · 2/√π`: `(-1)ⁿ / (n! (2n + 1))`, lowest power of `z²` first.
const ERF_SERIES: [f32; 7] = [
    1.0,
    -1.0 / 3.0,
    1.0 / 10.0,
    -1.0 / 42.0,
    1.0 / 216.0,
    -1.0 / 1320.0,
    1.0 / 9360.0,
];

/// Below this `|z|` the series is used, above it the `erfc` fit.
const SERIES_BELOW: f32 = 0.5;

#[inline(always)]
fn gelu_erf_lanes(x: Lanes) -> Lanes {
    const TWO_OVER_SQRT_PI: f32 = std::f32::consts::FRAC_2_SQRT_PI;
    // Plain loops over the lanes (no closures), so that the path's target features reach
    // every operation and each line becomes one vector instruction.
    let mut t = [0f32; LANES];
    let mut exponent = [0f32; LANES];
    for i in 0..LANES {
        let a = (x[i] * FRAC_1_SQRT_2).abs();
        t[i] = 1.0 / (1.0 + 0.5 * a);
        let mut q = ERFC[ERFC.len() - 1];
        for c in ERFC[..ERFC.len() - 1].iter().rev() {
            q = q * t[i] + c;
        }
        exponent[i] = q - a * a;
    }
    let e = exp_lanes(exponent);
    let mut out = [0f32; LANES];
    for i in 0..LANES {
        let z = x[i] * FRAC_1_SQRT_2;
        let erfc = t[i] * e[i];
        let from_erfc = if x[i] >= 0.0 { 2.0 - erfc } else { erfc };
        let z2 = z * z;
        let mut p = ERF_SERIES[ERF_SERIES.len() - 1];
        for c in ERF_SERIES[..ERF_SERIES.len() - 1].iter().rev() {
            p = p * z2 + c;
        }
        let from_series = 1.0 + TWO_OVER_SQRT_PI * z * p;
        let one_plus_erf = if z.abs() < SERIES_BELOW {
            from_series
        } else {
            from_erfc
        };
        out[i] = 0.5 * x[i] * one_plus_erf;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact GELU in f64 (erf in double precision).
    fn exact(x: f32) -> f64 {
        let x = f64::from(x);
        0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
    }

    fn grid() -> Vec<f32> {
        let mut xs: Vec<f32> = (0..=240_000).map(|i| -12.0 + i as f32 * 1e-4).collect();
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 1e4, -1e4]);
        xs
    }

    /// Asserts that `on` is within 1.5e-7 · |x| of `exact` on every path (what `1 + erf` or
    /// `1 + tanh` can give in float32) and, where the result is not tiny, within 1e-5 of it
    /// (negative inputs keep their digits; the input's own rounding moves an exponent by up to
    /// 1e-7 of itself).
    fn assert_close_on_every_path(
        name: &str,
        on: fn(KernelPath, &mut [f32]),
        exact: fn(f32) -> f64,
    ) {
        let xs = grid();
        for path in KernelPath::supported() {
            let mut ys = xs.clone();
            on(path, &mut ys);
            for (x, y) in xs.iter().zip(&ys) {
                let want = exact(*x);
                let error = (f64::from(*y) - want).abs();
                let relative_too = x.abs() < 6.0 && want.abs() > 1e-30;
                assert!(
                    error <= 1.5e-7 * f64::from(x.abs()) + 1e-37
                        && (!relative_too || error <= 1e-5 * want.abs()),
                    "{path}: {name}({x}) = {y}, f64 {want}"
                );
            }
        }
    }

    #[test]
    fn every_path_is_within_a_few_ulp_of_the_exact_gelu() {
        assert_close_on_every_path("gelu", gelu_erf_on, exact);
    }

    /// transformers' `gelu_new` in f64: `0.5 x (1 + tanh y)`, written as `x / (1 + e^(-2y))`
    /// where `1 + tanh y` would cancel to 0 (f64's tanh is -1 below y = -19).
    fn exact_tanh(x: f32) -> f64 {
        let x = f64::from(x);
        let y = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        if y > -1.0 {
            0.5 * x * (1.0 + y.tanh())
        } else {
            x / (1.0 + (-2.0 * y).exp())
        }
    }

    #[test]
    fn every_path_is_within_a_few_ulp_of_the_tanh_approximation() {
        assert_close_on_every_path("gelu_new", gelu_tanh_on, exact_tanh);
    }

    #[test]
    fn every_path_gives_the_same_bits_and_keeps_infinities() {
        let xs = grid();
        for (name, on) in [
            ("erf", gelu_erf_on as fn(KernelPath, &mut [f32])),
            ("tanh", gelu_tanh_on),
        ] {
            let run = |path| {
                let mut ys = xs.clone();
                on(path, &mut ys);
                ys.iter().map(|y| y.to_bits()).collect::<Vec<_>>()
            };
            let portable = run(KernelPath::Portable);
            for path in KernelPath::supported() {
                assert!(
                    run(path) == portable,
                    "{name}: {path} differs from portable"
                );
            }
        }
        for in_place in [gelu_erf_in_place, gelu_tanh_in_place] {
            let mut edges = [f32::INFINITY, f32::NAN, 7.0];
            in_place(&mut edges);
            assert_eq!(edges[0], f32::INFINITY);
            assert!(edges[1].is_nan());
            assert_eq!(edges[2], 7.0);
        }
    }
}
