//! Float32 matrix products on the CPU with the `gemm` crate's micro-kernels, on the kernel path
//! in use.
//!
//! candle's matmul calls `gemm::gemm`, which picks its micro-kernels itself (AVX-512 where the
//! crate's `x86-v4` feature is on and the CPU has it, else AVX2+FMA, else scalar) and cannot be
//! told otherwise. Here the same crate's blocked driver (`gemm_common::gemm::gemm_basic_generic`)
//! is called with the micro-kernel set of the kernel path it is given: with
//! `PRECIS_CPU_KERNELS=avx2` the AVX2 kernels really run, so the parity tests check each path.

use gemm_common::Parallelism;
use gemm_common::gemm::gemm_basic_generic;

use super::path::KernelPath;

/// A float32 matrix in memory: element `(row, col)` is `data[row * row_stride + col * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Panics unless every element of a `rows x cols` matrix lies inside `data`: the kernels
    /// read through raw pointers.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        let last = match (rows, cols) {
            (0, _) | (_, 0) => return,
            _ => (rows - 1) * self.row_stride + (cols - 1) * self.col_stride,
        };
        assert!(
            last < self.data.len(),
            "{what}: a {rows}x{cols} matrix with strides ({}, {}) does not fit in {} values",
            self.row_stride,
            self.col_stride,
            self.data.len()
        );
    }
}

/// A row-major float32 destination whose rows are `row_stride` apart (a block of columns of a
/// wider matrix when `row_stride` exceeds the column count).
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub row_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A contiguous row-major matrix with `cols` columns.
    pub fn row_major(data: &'a mut [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
        }
    }
}

/// `dst (m, n) = lhs (m, k) · rhs (k, n)`, or `dst += …` when `accumulate`, on `path` (which
/// the CPU must support), on the calling thread (the caller is one of many parallel tasks).
pub(crate) fn matmul_on(
    path: KernelPath,
    dst: MatMut,
    accumulate: bool,
    lhs: MatRef,
    rhs: MatRef,
    (m, n, k): (usize, usize, usize),
) {
    let dst_view = MatRef {
        data: &*dst.data,
        row_stride: dst.row_stride,
        col_stride: 1,
    };
    dst_view.check(m, n, "matmul destination");
    lhs.check(m, k, "matmul lhs");
    rhs.check(k, n, "matmul rhs");
    // The micro-kernels favour a column-major destination: compute dstᵀ = rhsᵀ · lhsᵀ, whose
    // column-major layout is `dst` in row-major order (what `gemm::gemm` does too).
    let args = Args {
        m: n,
        n: m,
        k,
        dst: dst.data.as_mut_ptr(),
        dst_cs: dst.row_stride as isize,
        dst_rs: 1,
        read_dst: accumulate,
        lhs: rhs.data.as_ptr(),
        lhs_cs: rhs.row_stride as isize,
        lhs_rs: rhs.col_stride as isize,
        rhs: lhs.data.as_ptr(),
        rhs_cs: lhs.row_stride as isize,
        rhs_rs: lhs.col_stride as isize,
        parallelism: Parallelism::None,
    };
    // SAFETY: `check` keeps every element the strides reach inside its slice (the destination
    // included), and `path` is one the CPU runs (the simd tokens are created only then).
    unsafe { args.run(path) }
}

/// `gemm_basic_generic`'s arguments after the transpose.
struct Args {
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
    parallelism: Parallelism,
}

/// One call of the blocked driver with the micro-kernel set in module `$kernels` of `gemm_f32`,
/// `$lanes` floats per register and the `$simd` token that enables their instructions.
macro_rules! run_with {
    ($args:expr, $simd:expr, $kernels:path, $lanes:expr) => {{
        use $kernels as kernels;
        let a = $args;
        gemm_basic_generic::<
            _,
            f32,
            { $lanes },
            { kernels::MR_DIV_N * $lanes },
            { kernels::NR },
            { kernels::MR_DIV_N },
            { kernels::H_M },
            { kernels::H_N },
        >(
            $simd,
            a.m,
            a.n,
            a.k,
            a.dst,
            a.dst_cs,
            a.dst_rs,
            a.read_dst,
            a.lhs,
            a.lhs_cs,
            a.lhs_rs,
            a.rhs,
            a.rhs_cs,
            a.rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            |x, y, z| x * y + z,
            &kernels::UKR,
            &kernels::H_UKR,
            false,
            a.parallelism,
        )
    }};
}

impl Args {
    /// # Safety
    /// The pointers and strides describe valid matrices and the CPU supports `path`.
    unsafe fn run(self, path: KernelPath) {
        use gemm_common::simd;
        #[cfg(target_arch = "x86_64")]
        match path {
            KernelPath::Avx512 => {
                if let Some(v4) = simd::V4::try_new() {
                    return unsafe { run_with!(self, v4, gemm_f32::microkernel::avx512f::f32, 16) };
                }
            }
            KernelPath::Avx2 | KernelPath::Avx2Vnni => {
                if let Some(v3) = simd::V3::try_new() {
                    return unsafe { run_with!(self, v3, gemm_f32::microkernel::fma::f32, 8) };
                }
            }
            KernelPath::Portable => {}
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = path;
        unsafe { run_with!(self, simd::Scalar, gemm_f32::microkernel::scalar::f32, 1) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    fn reference(lhs: MatRef, rhs: MatRef, (m, n, k): (usize, usize, usize)) -> Vec<f64> {
        let at =
            |x: MatRef, r: usize, c: usize| f64::from(x.data[r * x.row_stride + c * x.col_stride]);
        (0..m)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| (0..k).map(|t| at(lhs, i, t) * at(rhs, t, j)).sum())
            .collect()
    }

    #[test]
    fn every_path_matches_a_plain_product_with_transposed_and_accumulated_operands() {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 64),
            (64, 48, 130),
            (130, 20, 9),
        ] {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let start = values(m * n, 3);
            let lhs = MatRef::row_major(&x, k);
            // An (out, in) weight read as its transpose, as linear layers do.
            let rhs = MatRef {
                data: &w,
                row_stride: 1,
                col_stride: k,
            };
            let product = reference(lhs, rhs, (m, n, k));
            for path in KernelPath::supported() {
                for accumulate in [false, true] {
                    let mut dst = if accumulate {
                        start.clone()
                    } else {
                        vec![f32::NAN; m * n]
                    };
                    let out = MatMut::row_major(&mut dst, n);
                    matmul_on(path, out, accumulate, lhs, rhs, (m, n, k));
                    for (i, (got, want)) in dst.iter().zip(&product).enumerate() {
                        let want = want + if accumulate { f64::from(start[i]) } else { 0.0 };
                        assert!(
                            (f64::from(*got) - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{path} {m}x{n}x{k} accumulate {accumulate}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn operands_too_small_for_their_shape_are_refused() {
        let x = values(5, 1);
        let mut dst = vec![0.0; 4];
        let (lhs, rhs) = (MatRef::row_major(&x, 3), MatRef::row_major(&x, 2));
        let dst = MatMut::row_major(&mut dst, 2);
        matmul_on(KernelPath::Portable, dst, false, lhs, rhs, (2, 2, 3));
    }
}
