//! Strided transposition of float32 blocks, in 8 x 8 register blocks on AVX2 and wider.
//!
//! The kernels lay data out for their register tiles: a weight in panels of features (once, at
//! load), a product's inputs in groups of tokens, the encoder attention's queries as a weight
//! panel and its scores keys-down. Done one strided
//! scalar load or store per value, those copies took 12% of a one-thread t5-small encoder
//! (`perf`, AMD EPYC Zen 3; 5% as 8 x 8 blocks, a few shuffles per 64 values). Each value is
//! moved (or added once) exactly as the plain loop does, so the results are the same bits on
//! every path.

use super::path::KernelPath;

/// What a transposition does with each destination value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// `dst = src`.
    Store,
    /// `dst += src`: one addition per value, as the plain loop does it.
    Add,
}

/// A `rows x cols` block read with `stride` floats between rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

/// `dst[j * dst_stride + i] = src[i * block.stride + j]` (or `+=`, per `write`) for every
/// `i < block.rows`, `j < block.cols`.
///
/// # Safety
/// `src` must be valid for those reads, `dst` for those reads and writes, the two must not
/// overlap, and the CPU must support `path`.
pub(super) unsafe fn transpose(
    path: KernelPath,
    src: *const f32,
    block: Block,
    dst: *mut f32,
    dst_stride: usize,
    write: Write,
) {
    let mut done = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if path >= KernelPath::Avx2 {
        // SAFETY: the caller's contract, and every path from `Avx2` on has AVX2.
        done = unsafe { avx2::blocks(src, block, dst, dst_stride, write) };
    }
    let _ = path;
    // The rows below the whole 8 x 8 blocks, and the columns right of them.
    let (rows_done, cols_done) = done;
    for i in 0..block.rows {
        let first_col = if i < rows_done { cols_done } else { 0 };
        for j in first_col..block.cols {
            // SAFETY: i < rows and j < cols: inside what the caller guarantees.
            unsafe {
                let value = *src.add(i * block.stride + j);
                let at = dst.add(j * dst_stride + i);
                *at = match write {
                    Write::Store => value,
                    Write::Add => *at + value,
                };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Block, Write};

    /// The whole 8 x 8 blocks of `block`, eight source rows at a time (each read in order: a
    /// source whose rows are a power of two apart would keep only a few of them in L1 if the
    /// blocks went down its columns); returns how many rows and columns of the source they
    /// covered (multiples of 8).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn blocks(
        src: *const f32,
        block: Block,
        dst: *mut f32,
        dst_stride: usize,
        write: Write,
    ) -> (usize, usize) {
        let (rows, cols) = (block.rows / 8 * 8, block.cols / 8 * 8);
        for i0 in (0..rows).step_by(8) {
            for j0 in (0..cols).step_by(8) {
                // SAFETY: rows i0..i0 + 8 and columns j0..j0 + 8 are inside the block.
                unsafe {
                    let r: [__m256; 8] = std::array::from_fn(|t| {
                        _mm256_loadu_ps(src.add((i0 + t) * block.stride + j0))
                    });
                    for (j, column) in transpose8(r).into_iter().enumerate() {
                        let at = dst.add((j0 + j) * dst_stride + i0);
                        let value = match write {
                            Write::Store => column,
                            Write::Add => _mm256_add_ps(_mm256_loadu_ps(at), column),
                        };
                        _mm256_storeu_ps(at, value);
                    }
                }
            }
        }
        (rows, cols)
    }

    /// Eight registers of eight rows into eight registers of eight columns.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    #[test]
    fn every_path_stores_and_adds_each_value_where_the_plain_loop_does() {
        for path in KernelPath::supported() {
            for (rows, cols) in [
                (1, 1),
                (8, 8),
                (9, 17),
                (16, 64),
                (48, 64),
                (23, 5),
                (7, 30),
            ] {
                let stride = cols + 3;
                let dst_stride = rows + 5;
                let src = values(rows * stride, (rows * cols) as u32);
                let start = values(cols * dst_stride, 7);
                for write in [Write::Store, Write::Add] {
                    let mut expected = start.clone();
                    for i in 0..rows {
                        for j in 0..cols {
                            let at = &mut expected[j * dst_stride + i];
                            *at = match write {
                                Write::Store => src[i * stride + j],
                                Write::Add => *at + src[i * stride + j],
                            };
                        }
                    }
                    let mut dst = start.clone();
                    let block = Block { rows, cols, stride };
                    // SAFETY: both buffers hold the block, and `path` is supported.
                    unsafe {
                        transpose(
                            path,
                            src.as_ptr(),
                            block,
                            dst.as_mut_ptr(),
                            dst_stride,
                            write,
                        )
                    };
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&dst),
                        bits(&expected),
                        "{path:?} {write:?} {rows}x{cols}"
                    );
                }
            }
        }
    }
}
