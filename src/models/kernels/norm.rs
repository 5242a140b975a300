//! Norms in one pass per row, on the CPU, in float32: T5's RMS norm, and BART's residual sum
//! followed by its layer norm.
//!
//! Written with candle's tensor ops T5's RMS norm is five passes over the activations, each into
//! a fresh tensor (square, mean, scale by the inverse root, scale by the weight, and a copy);
//! here each row is read twice (sum of squares, then the scaled output) while it is in cache,
//! and rows run in parallel. BART's `layer_norm(x + sublayer(x))` is one pass per row instead of
//! candle's sum (a fresh tensor, on candle's second thread pool) and its layer norm.

use rayon::prelude::*;

use super::path::{self, KernelPath};

/// Rows per parallel task: enough work to amortise the task for 512-wide rows.
const ROWS_PER_TASK: usize = 16;

/// `out[r] = x[r] / sqrt(mean(x[r]²) + eps) * weight` for each row of `x`, `weight.len()` wide.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    rms_norm_on(path::active(), x, weight, eps)
}

/// [`rms_norm`] on a given path, which the CPU must support.
pub(crate) fn rms_norm_on(path: KernelPath, x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let width = weight.len();
    assert!(
        width > 0 && x.len().is_multiple_of(width),
        "rms_norm: rows of {width}"
    );
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(ROWS_PER_TASK * width)
        .zip(x.par_chunks(ROWS_PER_TASK * width))
        .for_each(|(out, x)| {
            for (out, x) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
                match path.vector_kernels() {
                    // SAFETY: the CPU supports the path's features (`path` is one it runs).
                    #[cfg(target_arch = "x86_64")]
                    KernelPath::Avx512 => unsafe { row_avx512(x, weight, eps, out) },
                    #[cfg(target_arch = "x86_64")]
                    KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe {
                        row_avx2(x, weight, eps, out)
                    },
                    _ => row(x, weight, eps, out),
                }
            }
        });
    out
}

/// `layer_norm(x + y)` over rows of `weight.len()`, bit for bit what candle gives for
/// `LayerNorm::forward(&(x + y))` (candle-nn's CPU layer norm: sums in row order, the
/// variance as `E[v²] - mean²`), with one pass fewer and no intermediate tensor.
pub fn add_layer_norm(
    x: &[f32],
    y: &[f32],
    (weight, bias): (&[f32], &[f32]),
    eps: f32,
) -> Vec<f32> {
    let width = weight.len();
    assert!(
        width > 0 && x.len().is_multiple_of(width) && x.len() == y.len() && bias.len() == width,
        "add_layer_norm: rows of {width}"
    );
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(ROWS_PER_TASK * width)
        .zip(x.par_chunks(ROWS_PER_TASK * width))
        .zip(y.par_chunks(ROWS_PER_TASK * width))
        .for_each(|((out, x), y)| {
            let rows = out.chunks_exact_mut(width).zip(x.chunks_exact(width));
            for ((out, x), y) in rows.zip(y.chunks_exact(width)) {
                for ((o, a), b) in out.iter_mut().zip(x).zip(y) {
                    *o = a + b;
                }
                let (mut sum, mut sum2) = (0f32, 0f32);
                for v in out.iter() {
                    sum += v;
                    sum2 += v * v;
                }
                let mean = sum / width as f32;
                let var = sum2 / width as f32 - mean * mean;
                let inverse_std = (var + eps).sqrt().recip();
                for ((o, w), b) in out.iter_mut().zip(weight).zip(bias) {
                    *o = (*o - mean) * inverse_std * w + b;
                }
            }
        });
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn row_avx512(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    row(x, weight, eps, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    row(x, weight, eps, out);
}

/// One row, with the sum of squares in sixteen lanes (vector registers of the path).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed lanes unroll into registers
fn row(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mut lanes = [0f32; 16];
    let (main, tail) = x.split_at(x.len() - x.len() % 16);
    for chunk in main.chunks_exact(16) {
        for i in 0..16 {
            lanes[i] += chunk[i] * chunk[i];
        }
    }
    let squares = lanes.iter().sum::<f32>() + tail.iter().map(|v| v * v).sum::<f32>();
    // As transformers: hidden * rsqrt(mean + eps), then weight * that.
    let inverse_root = 1.0 / (squares / x.len() as f32 + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * inverse_root * w;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    #[test]
    fn every_path_matches_the_formula_on_odd_widths() {
        for (rows, width) in [(1, 1), (3, 5), (40, 17), (33, 512)] {
            let x = values(rows * width, 1);
            let weight = values(width, 2);
            for path in KernelPath::supported() {
                let ours = rms_norm_on(path, &x, &weight, 1e-6);
                for (r, row) in x.chunks(width).enumerate() {
                    let mean: f64 = row
                        .iter()
                        .map(|&v| f64::from(v) * f64::from(v))
                        .sum::<f64>()
                        / width as f64;
                    let scale = 1.0 / (mean + 1e-6).sqrt();
                    for (c, v) in row.iter().enumerate() {
                        let want = f64::from(*v) * scale * f64::from(weight[c]);
                        let got = f64::from(ours[r * width + c]);
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{path}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn residual_layer_norm_is_candles_bit_for_bit() {
        use candle_core::{Device, Module, Tensor};
        let (rows, width) = (37, 96);
        let (x, y) = (values(rows * width, 1), values(rows * width, 2));
        let (weight, bias) = (values(width, 3), values(width, 4));
        let tensor =
            |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &Device::Cpu).unwrap();
        let norm =
            candle_nn::LayerNorm::new(tensor(&weight, &[width]), tensor(&bias, &[width]), 1e-5);
        let sum = (tensor(&x, &[rows, width]) + tensor(&y, &[rows, width])).unwrap();
        let theirs: Vec<f32> = norm
            .forward(&sum)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let ours = add_layer_norm(&x, &y, (&weight, &bias), 1e-5);
        assert!(
            ours.iter()
                .zip(&theirs)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }
}
