//! Softmax over one row of attention scores, with a vectorised `exp` on the AVX paths.
//!
//! The row is normalised the way candle's `softmax_last_dim` does it: subtract the maximum,
//! exponentiate, divide by the sum. libm's `expf` is a scalar call per score; on the AVX paths
//! the exponential is a polynomial evaluated on 16 lanes at once (Cephes' `expf`, within 2 ulp),
//! which the compiler turns into vector instructions of the path.

// Lanes are indexed on purpose: the loops unroll into whole vector registers.
#![allow(clippy::needless_range_loop)]

use super::packed::PANEL;
use super::path::KernelPath;

/// `row` -> `softmax(row)` in place, on `path` (which the CPU must support): the kernels
/// calling it pass theirs.
pub(crate) fn softmax_on(path: KernelPath, row: &mut [f32]) {
    match path.vector_kernels() {
        // SAFETY: the CPU supports the path's features (`path` is one it runs).
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { softmax_avx512(row) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe { softmax_avx2(row) },
        _ => softmax_with(row, exp_libm),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn softmax_avx512(row: &mut [f32]) {
    softmax_with(row, exp_lanes);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_avx2(row: &mut [f32]) {
    softmax_with(row, exp_lanes);
}

/// Each column of the row-major `(rows, PANEL)` `block` -> `e^(x - column max)` in place;
/// returns the columns' sums, for the caller to divide by after the weighted sum (one division
/// per output instead of one per score). The encoder's attention keeps its scores this way:
/// keys down, a panel of queries across. Each column is summed over its rows in order and a
/// weight below `e^MIN_EXPONENT` (a masked key) is exactly 0, so keys past a row's real ones
/// change nothing: the result does not depend on how wide the batch is padded.
pub(crate) fn exp_columns_on(path: KernelPath, block: &mut [f32]) -> [f32; PANEL] {
    match path.vector_kernels() {
        // SAFETY: the CPU supports the path's features (`path` is one it runs).
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { exp_columns_avx512(block) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe { exp_columns_avx2(block) },
        _ => exp_columns_with(block, exp_libm),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn exp_columns_avx512(block: &mut [f32]) -> [f32; PANEL] {
    exp_columns_with(block, exp_lanes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_columns_avx2(block: &mut [f32]) -> [f32; PANEL] {
    exp_columns_with(block, exp_lanes)
}

/// ln(FLT_MIN): below it [`exp_lanes`] clamps, and a column weight is taken as 0.
const MIN_EXPONENT: f32 = -87.336_55;

#[inline(always)]
fn exp_columns_with(block: &mut [f32], exp: impl Fn([f32; LANES]) -> [f32; LANES]) -> [f32; PANEL] {
    let mut max = [f32::NEG_INFINITY; PANEL];
    for row in block.chunks_exact(PANEL) {
        for i in 0..PANEL {
            max[i] = if row[i] > max[i] { row[i] } else { max[i] };
        }
    }
    let mut sums = [0f32; PANEL];
    for row in block.chunks_exact_mut(PANEL) {
        for lanes in 0..PANEL / LANES {
            let mut shifted = [0f32; LANES];
            for l in 0..LANES {
                shifted[l] = row[lanes * LANES + l] - max[lanes * LANES + l];
            }
            let e = exp(shifted);
            for l in 0..LANES {
                let i = lanes * LANES + l;
                let weight = if shifted[l] < MIN_EXPONENT { 0.0 } else { e[l] };
                row[i] = weight;
                sums[i] += weight;
            }
        }
    }
    sums
}

/// Lanes processed together: one AVX-512 register, two AVX2 ones.
pub(super) const LANES: usize = 16;

#[inline(always)]
fn softmax_with(row: &mut [f32], exp: impl Fn([f32; LANES]) -> [f32; LANES]) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let (main, tail) = row.split_at_mut(row.len() - row.len() % LANES);
    for chunk in main.chunks_exact(LANES) {
        for i in 0..LANES {
            // A plain comparison (not f32::max, whose NaN rule costs extra instructions).
            lanes[i] = if chunk[i] > lanes[i] {
                chunk[i]
            } else {
                lanes[i]
            };
        }
    }
    let max = tail
        .iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sums = [0f32; LANES];
    for chunk in main.chunks_exact_mut(LANES) {
        let mut shifted = [0f32; LANES];
        for i in 0..LANES {
            shifted[i] = chunk[i] - max;
        }
        let e = exp(shifted);
        chunk.copy_from_slice(&e);
        for i in 0..LANES {
            sums[i] += e[i];
        }
    }
    // The tail goes into the same lanes as a whole chunk would: score `s` always adds into lane
    // `s % LANES`. A row padded wider (masked keys, whose exponentials are exactly 0) then sums
    // its real scores in the same order, so the result does not depend on the padded width.
    let mut tail_lanes = [f32::NEG_INFINITY; LANES];
    for (lane, s) in tail_lanes.iter_mut().zip(tail.iter()) {
        *lane = s - max;
    }
    let e = exp(tail_lanes);
    tail.copy_from_slice(&e[..tail.len()]);
    for (sum, e) in sums.iter_mut().zip(tail.iter()) {
        *sum += e;
    }
    let sum = sums.iter().sum::<f32>();
    for s in row.iter_mut() {
        *s /= sum;
    }
}

/// `e^x` on each lane: Cephes' `expf` (a degree-5 polynomial on the remainder of a base-2
/// range reduction). Below ln(FLT_MIN) the result is exactly 0 instead of a denormal, as libm's
/// is for masked scores: a masked key must add nothing at all to a softmax's sum (not even
/// FLT_MIN), or a row's sum would depend on how many padded keys it has. Above 88.376 (which a
/// softmax, exponentiating scores minus their maximum, never reaches) it stays at e^88.376.
#[inline(always)]
pub(super) fn exp_lanes(x: [f32; LANES]) -> [f32; LANES] {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        // 0.500_000_01 in Cephes: the same float.
        0.5,
    ];
    // Plain loops over the lanes (no closures), so that the path's target features reach
    // every operation and each line becomes one vector instruction.
    const LOWEST: f32 = -87.336_55;
    let mut out = [0f32; LANES];
    for i in 0..LANES {
        let underflows = x[i] < LOWEST;
        let x = x[i].clamp(LOWEST, 88.376_26);
        let n = (x * LOG2E + 0.5).floor();
        let r = x - n * LN2_HI - n * LN2_LO;
        let mut p = P[0];
        for c in &P[1..] {
            p = p * r + c;
        }
        let y = p * r * r + r + 1.0;
        // 2^n by placing n + 127 (in [1, 254] after the clamp) in the exponent field. Adding
        // 2^23 leaves n + 127 in the low mantissa bits, exactly, with no float-to-int
        // conversion (whose saturating semantics would not vectorise).
        let biased = (n + (127.0 + 8_388_608.0)).to_bits();
        let scale = f32::from_bits(biased << 23);
        out[i] = if underflows { 0.0 } else { y * scale };
    }
    out
}

/// libm's `expf` on each lane, for the portable path.
#[inline(always)]
fn exp_libm(x: [f32; LANES]) -> [f32; LANES] {
    x.map(f32::exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lane_exponential_is_within_two_ulp_of_libm() {
        let xs: Vec<f32> = (0..=4000)
            .map(|i| -87.0 + i as f32 * (175.3 / 4000.0))
            .collect();
        for chunk in xs.chunks(LANES) {
            let mut lanes = [0f32; LANES];
            lanes[..chunk.len()].copy_from_slice(chunk);
            let ours = exp_lanes(lanes);
            for (x, got) in chunk.iter().zip(ours) {
                let want = x.exp();
                let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
                assert!(ulp <= 2, "exp({x}) = {got}, libm {want} ({ulp} ulp)");
            }
        }
    }

    #[test]
    fn masked_keys_padding_a_row_wider_change_no_bit_of_the_real_ones() {
        for len in [1, 5, 15, 16, 17, 40, 75, 130] {
            let scores: Vec<f32> = super::super::test_values(len, len as u32)
                .iter()
                .map(|s| s * 3.0)
                .collect();
            for path in KernelPath::supported() {
                let mut alone = scores.clone();
                softmax_on(path, &mut alone);
                for padding in [1, 11, 16, 31] {
                    let mut padded = scores.clone();
                    padded.extend(std::iter::repeat_n(f32::MIN, padding));
                    softmax_on(path, &mut padded);
                    let bits = |row: &[f32]| row.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&padded[..len]), bits(&alone), "{path} {len}+{padding}");
                    assert!(
                        padded[len..].iter().all(|&w| w == 0.0),
                        "{path} {len}+{padding}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_lane_exponential_of_a_masked_score_is_exactly_zero() {
        let mut lanes = [0f32; LANES];
        lanes[..4].copy_from_slice(&[-87.4, -200.0, f32::MIN, f32::NEG_INFINITY]);
        assert_eq!(exp_lanes(lanes)[..4], [0.0; 4]);
        assert_eq!(exp_lanes(lanes)[4], 1.0);
    }

    #[test]
    fn every_path_normalises_like_the_formula_and_ignores_masked_scores() {
        for len in [1, 5, 16, 17, 40, 515] {
            let scores: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.9)
                .map(|s| if len > 4 && s > 8.0 { f32::MIN } else { s })
                .collect();
            let max = scores
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, |m, s| m.max(f64::from(s)));
            let exps: Vec<f64> = scores.iter().map(|&s| (f64::from(s) - max).exp()).collect();
            let total: f64 = exps.iter().sum();
            for path in KernelPath::supported() {
                let mut row = scores.clone();
                softmax_on(path, &mut row);
                for ((got, e), s) in row.iter().zip(&exps).zip(&scores) {
                    let want = e / total;
                    assert!(
                        (f64::from(*got) - want).abs() <= 1e-5 * want.max(1e-30) + 1e-37,
                        "{path} len {len}: score {s} -> {got}, want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn column_exponentials_over_their_sums_are_the_softmax_of_each_column() {
        for rows in [1, 7, 300] {
            let mut block: Vec<f32> = (0..rows * PANEL)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.9)
                .collect();
            // A masked key in the last row of every other column (when there are two rows).
            if rows > 1 {
                for i in (0..PANEL).step_by(2) {
                    block[(rows - 1) * PANEL + i] = f32::MIN;
                }
            }
            for path in KernelPath::supported() {
                let mut weights = block.clone();
                let sums = exp_columns_on(path, &mut weights);
                for i in 0..PANEL {
                    let column: Vec<f64> =
                        (0..rows).map(|r| f64::from(block[r * PANEL + i])).collect();
                    let max = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = column.iter().map(|s| (s - max).exp()).sum();
                    for (r, s) in column.iter().enumerate() {
                        let got = f64::from(weights[r * PANEL + i]) / f64::from(sums[i]);
                        let want = (s - max).exp() / total;
                        assert!(
                            (got - want).abs() <= 1e-5 * want.max(1e-30),
                            "{path} {rows} rows, column {i} row {r}: {got}, want {want}"
                        );
                        if *s == f64::from(f32::MIN) {
                            assert_eq!(weights[r * PANEL + i], 0.0, "{path}: a masked key");
                        }
                    }
                }
            }
        }
    }
}
