//! bfloat16 weights packed once at load for `x · Wᵀ` (`--dtype bf16` on the CPU), and the
//! product over them.
//!
//! Each product multiplies bfloat16 weights by its inputs rounded to bfloat16 and sums in
//! float32, as Intel's AMX and AVX512-BF16 instructions (and oneDNN's bf16 products in
//! PyTorch) do; everything between the products (norms, attention, residuals) stays float32.
//! Rounding both sides keeps the products' meaning the same on every path; only the tiles
//! sum in their own order ([`super::amx`]).
//!
//! On the `amx` path the products run on the tiles: 16 × 16 × 32 multiply-adds an
//! instruction, the sums starting from the bias (as the float32 product's do), and the tiles
//! storing every whole block straight into the output. On `avx512-bf16` they run on
//! AVX512-BF16's `vdpbf16ps`, which adds a pair of products to each of 16 float32 sums: the
//! odd input's, then the even one's, each rounded like an FMA (Intel's definition, and what
//! AMD's Zen 5 computes: checked against that order on 3.2M random sums; the bit-for-bit test
//! passes on a Zen 5 and on an Intel Xeon with AMX). Elsewhere each weight is widened to
//! float32 (a shift) and multiplied with FMAs in that same order; the product of two
//! bfloat16 values is exact in float32, so an FMA and a multiply then an add
//! give the same bits, and `avx512-bf16`, `avx512`, `avx2-vnni`, `avx2` and `portable` agree
//! bit for bit (the bias is added after the sums there). The one exception: `vdpbf16ps`
//! flushes a sum that falls below float32's smallest normal to zero, which the FMAs keep.
//! Off the tiles the speed comes from reading half float32's bytes, which is what a decoder
//! step waits for, and on `avx512-bf16` also from doing half the instructions.
//!
//! Layout: features in panels of [`PANEL`]; in a panel, for each pair of inputs, the
//! features' two values side by side (one 64-byte row of an AMX weight tile, one 512-bit
//! register). The input width is padded with zeros to a multiple of [`CHUNK`], the feature
//! count to a whole panel.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use super::grid::Grid;
use super::packed::{SharedOut, output_of, written_by};
use super::path::{self, KernelPath};

/// Features per panel: one AMX tile's 16 float32 columns, one 512-bit register.
pub const PANEL: usize = 16;
/// Inputs per AMX step (16 pairs: one 64-byte row of an input tile).
const CHUNK: usize = 32;
/// Rows of inputs the widening kernels take at once (each keeps a row's 16 sums in
/// registers): at most this many, [`tile_rows`] on a path. The `vdpbf16ps` kernel takes as
/// many against two panels (16 sums in registers, and each input pair read once for both).
pub(super) const TILE_ROWS: usize = 8;
/// Rows of inputs the AMX kernel takes at once: two input tiles.
const AMX_ROWS: usize = 32;

/// An `(out, in)` float32 weight rounded to bfloat16 and packed (see the module header).
/// Cloning shares the values.
#[derive(Debug, Clone)]
pub struct PackedBf16 {
    // `Arc<Vec>`: an `Arc<[T]>` made from the vector would copy it (see `PackedF32`).
    panels: Arc<Vec<u16>>,
    out: usize,
    inner: usize,
}

impl PackedBf16 {
    /// Rounds the row-major `(out, inner)` float32 matrix `w` to bfloat16 and packs it.
    pub fn pack(w: &[f32], out: usize, inner: usize) -> Self {
        assert_eq!(w.len(), out * inner, "pack: a {out}x{inner} weight");
        let padded = padded_inner(inner);
        let mut panels = vec![0u16; out.div_ceil(PANEL) * PANEL * padded];
        panels
            .par_chunks_mut(PANEL * padded)
            .enumerate()
            .for_each(|(p, panel)| {
                for j in 0..PANEL.min(out - p * PANEL) {
                    let f = p * PANEL + j;
                    for (k, &v) in w[f * inner..(f + 1) * inner].iter().enumerate() {
                        panel[k / 2 * 2 * PANEL + 2 * j + k % 2] = to_bf16(v);
                    }
                }
            });
        Self {
            panels: Arc::new(panels),
            out,
            inner,
        }
    }

    pub fn out(&self) -> usize {
        self.out
    }

    fn panel_count(&self) -> usize {
        self.out.div_ceil(PANEL)
    }

    fn panel_len(&self) -> usize {
        PANEL * padded_inner(self.inner)
    }

    /// The weights as float32 (each exactly its bfloat16 value), row-major `(out, inner)`.
    #[cfg(test)]
    fn unpack(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.out * self.inner];
        for (f, row) in w.chunks_exact_mut(self.inner).enumerate() {
            let panel = &self.panels[f / PANEL * self.panel_len()..];
            for (k, value) in row.iter_mut().enumerate() {
                *value = from_bf16(panel[k / 2 * 2 * PANEL + 2 * (f % PANEL) + k % 2]);
            }
        }
        w
    }
}

fn padded_inner(inner: usize) -> usize {
    inner.div_ceil(CHUNK) * CHUNK
}

/// `v` rounded to the nearest bfloat16 (ties to even). A NaN stays a (quiet) NaN; a
/// subnormal becomes a zero of its sign, which is how the AMX tiles read one anyway, so every
/// path sees the same values.
#[inline(always)]
pub fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    let magnitude = bits & 0x7fff_ffff;
    // Branch-free (selects), so that converting a row vectorises.
    let nearest = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16;
    let quiet_nan = (bits >> 16) | 0x0040;
    let signed_zero = (bits >> 16) & 0x8000;
    let b = if magnitude > 0x7f80_0000 {
        quiet_nan
    } else if magnitude < 0x0080_0000 {
        signed_zero
    } else {
        nearest
    };
    b as u16
}

/// Writes each of `from` rounded to bfloat16 ([`to_bf16`]) at the start of `to`, and zeros
/// after them. On the paths with AVX512-BF16 (`amx`, `avx512-bf16`) by its conversion, which
/// rounds the same way (ties to even, subnormals to zeros of their sign, NaNs quiet) 32 values
/// an instruction.
pub(super) fn bf16_row(path: KernelPath, from: &[f32], to: &mut [MaybeUninit<u16>]) {
    assert!(
        to.len() >= from.len(),
        "bf16_row: {} into {}",
        from.len(),
        to.len()
    );
    #[cfg(target_arch = "x86_64")]
    if path.has_avx512_bf16() {
        // SAFETY: such a path has AVX-512 F and BF16.
        let done = unsafe { bf16_whole_vectors(from, to) };
        convert_row(path, &from[done..], &mut to[done..], to_bf16);
        return;
    }
    convert_row(path, from, to, to_bf16);
}

/// [`bf16_row`] over the values of `from` that fill whole 32-value vectors; returns how many.
///
/// # Safety
/// The CPU must support AVX-512 F and BF16; `to` must be at least as long as `from`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn bf16_whole_vectors(from: &[f32], to: &mut [MaybeUninit<u16>]) -> usize {
    use std::arch::x86_64::*;
    let whole = from.len() / 32 * 32;
    for i in (0..whole).step_by(32) {
        // SAFETY: 32 values read from `from` and written to `to` at `i`, inside both.
        unsafe {
            let low = _mm512_loadu_ps(from.as_ptr().add(i));
            let high = _mm512_loadu_ps(from.as_ptr().add(i + 16));
            let rounded: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
            _mm512_storeu_si512(to.as_mut_ptr().add(i).cast(), rounded);
        }
    }
    whole
}

/// [`bf16_row`] into values already initialised.
pub(super) fn bf16_row_into(path: KernelPath, from: &[f32], to: &mut [u16]) {
    // SAFETY: the same layout, and `bf16_row` writes only initialised values through it.
    let to = unsafe { &mut *(std::ptr::from_mut(to) as *mut [MaybeUninit<u16>]) };
    bf16_row(path, from, to);
}

/// The float32 value of the bfloat16 `b` (exact).
pub fn from_bf16(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// `x (rows, inner) · Wᵀ (+ bias)`, row-major, on the kernel path in use.
pub fn matmul(x: &[f32], w: &PackedBf16, bias: Option<&[f32]>, rows: usize) -> Vec<f32> {
    matmul_on(path::active(), x, w, bias, rows)
}

/// [`matmul`] on a given path, which the CPU must support.
pub(crate) fn matmul_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedBf16,
    bias: Option<&[f32]>,
    rows: usize,
) -> Vec<f32> {
    // SAFETY: `product_on` writes every one of the `rows x out` floats, and nothing past them.
    unsafe { written_by(rows * w.out, |y| product_on(path, x, w, bias, rows, y)) }
}

/// [`matmul`] into `y` (`rows x out`, every value overwritten), so that a caller going over a
/// big input in chunks of rows writes each chunk's product in place.
pub fn matmul_into(x: &[f32], w: &PackedBf16, bias: Option<&[f32]>, rows: usize, y: &mut [f32]) {
    let y = output_of(y, rows, w.out);
    // SAFETY: `y` holds the `rows x out` floats the product writes; the active path is one
    // the CPU supports.
    unsafe { product_on(path::active(), x, w, bias, rows, y) };
}

/// Writes every one of the `rows x out` floats at `y` (never reading them) with the product.
///
/// # Safety
/// `y` must be valid for `rows * w.out` writes, and `path` one the CPU supports.
unsafe fn product_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedBf16,
    bias: Option<&[f32]>,
    rows: usize,
    y: *mut f32,
) {
    assert_eq!(
        x.len(),
        rows * w.inner,
        "matmul: {rows} rows of {}",
        w.inner
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), w.out, "matmul: bias of {}", w.out);
    }
    let dst = Output {
        y: SharedOut(y),
        out: w.out,
        bias,
    };
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if path == KernelPath::Amx {
        // SAFETY: the path is supported, so the tiles are usable.
        unsafe { amx_product(x, w, rows, &dst) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if path == KernelPath::Avx512Bf16 {
        // SAFETY: the path is supported, so the CPU has AVX-512 F and BF16.
        unsafe { dot_product(x, w, rows, &dst) };
        return;
    }
    let padded = padded_inner(w.inner);
    let xs = converted_rows(x, (rows, w.inner), padded, 1, |from, to| {
        convert_row(path, from, to, |v| from_bf16(to_bf16(v)));
    });
    by_blocks::<PANEL>(w, rows, (tile_rows(path), 1), &dst, |rows, panel, sums| {
        let x = &xs[rows.start * padded..rows.end * padded];
        widened_tile(path, x, padded, panel, sums);
    });
}

/// Runs `tile` over the product's blocks of at most `row_step` rows and `panel_step`
/// panels, the grid's tasks in parallel, and writes each block's sums (per row, its panels'
/// features in order) into `dst`. `tile` gets the block's rows, its panels' weights and
/// one row of sums for each of those rows.
fn by_blocks<const N: usize>(
    w: &PackedBf16,
    rows: usize,
    (row_step, panel_step): (usize, usize),
    dst: &Output,
    tile: impl Fn(Range<usize>, &[u16], &mut [[f32; N]]) + Sync,
) {
    assert!(
        row_step <= TILE_ROWS && panel_step * PANEL <= N,
        "block of sums"
    );
    let grid = Grid::new(rows, w.panel_count());
    (0..grid.tasks()).into_par_iter().for_each(|task| {
        let (row_range, panels) = grid.task(task);
        let mut sums = [[0f32; N]; TILE_ROWS];
        for p in panels.clone().step_by(panel_step) {
            let count = panel_step.min(panels.end - p);
            let weights = &w.panels[p * w.panel_len()..(p + count) * w.panel_len()];
            for r0 in row_range.clone().step_by(row_step) {
                let block = r0..(r0 + row_step).min(row_range.end);
                let sums = &mut sums[..block.len()];
                tile(block, weights, sums);
                // SAFETY: each (panel, row) pair is visited by exactly one task.
                unsafe { dst.write(r0, p * PANEL, sums, count * PANEL) };
            }
        }
    });
}

/// Where a product's sums go: the output rows, with the bias added on the way.
#[derive(Clone, Copy)]
struct Output<'a> {
    y: SharedOut,
    out: usize,
    bias: Option<&'a [f32]>,
}

impl Output<'_> {
    /// Writes `sums` (one row of `width` sums per input row from `first_row`, for features
    /// from `first_feature`; the ones past the last feature are padding and dropped).
    ///
    /// # Safety
    /// No other task writes these rows' features, and the rows are inside the product.
    unsafe fn write<const N: usize>(
        &self,
        first_row: usize,
        first_feature: usize,
        sums: &[[f32; N]],
        width: usize,
    ) {
        let columns = width.min(self.out - first_feature);
        let bias = self
            .bias
            .map(|b| &b[first_feature..first_feature + columns]);
        for (r, row) in sums.iter().enumerate() {
            let y = self.y.at((first_row + r) * self.out + first_feature);
            for (j, &sum) in row[..columns].iter().enumerate() {
                let value = bias.map_or(sum, |b| sum + b[j]);
                // SAFETY: inside the product's `rows x out` (the caller's promise and
                // `columns`); written, never read, so `y` may be uninitialised.
                unsafe { y.add(j).write(value) };
            }
        }
    }
}

/// The `rows` rows of `x` (`inner` wide) converted by `convert_row` (which writes a row's
/// values and zeros after them) into rows `padded` wide, and `row_multiple`-aligned with zero
/// rows.
fn converted_rows<T: Copy + Default + Send + Sync>(
    x: &[f32],
    (rows, inner): (usize, usize),
    padded: usize,
    row_multiple: usize,
    convert_row: impl Fn(&[f32], &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let len = rows.div_ceil(row_multiple) * row_multiple * padded;
    let mut xs = Vec::with_capacity(len);
    // Written in parallel, never zeroed first (fresh pages cost the kernel's zeroing too):
    // each row writes its values and its padding, the rows past the input zeros.
    xs.spare_capacity_mut()[..len]
        .par_chunks_mut(padded)
        .enumerate()
        .with_min_len(16)
        .for_each(|(r, to)| {
            let from = x.get(r * inner..(r + 1) * inner).unwrap_or(&[]);
            convert_row(from, to);
        });
    // SAFETY: every row was written, values and padding.
    unsafe { xs.set_len(len) };
    xs
}

/// Writes `convert` of each of `from` at the start of `to` and `T::default()` after them,
/// compiled for the path's vector width (the conversion is branch-free, so it vectorises).
fn convert_row<T: Copy + Default>(
    path: KernelPath,
    from: &[f32],
    to: &mut [MaybeUninit<T>],
    convert: impl Fn(f32) -> T + Copy,
) {
    #[inline(always)]
    fn each<T: Copy + Default>(
        from: &[f32],
        to: &mut [MaybeUninit<T>],
        convert: impl Fn(f32) -> T,
    ) {
        let (values, padding) = to.split_at_mut(from.len());
        for (t, &v) in values.iter_mut().zip(from) {
            t.write(convert(v));
        }
        padding.fill(MaybeUninit::new(T::default()));
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512<T: Copy + Default>(
        from: &[f32],
        to: &mut [MaybeUninit<T>],
        convert: impl Fn(f32) -> T,
    ) {
        each(from, to, convert)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2<T: Copy + Default>(
        from: &[f32],
        to: &mut [MaybeUninit<T>],
        convert: impl Fn(f32) -> T,
    ) {
        each(from, to, convert)
    }
    // SAFETY (each arm): the caller's path is one the CPU supports.
    match path.vector_kernels() {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { avx512(from, to, convert) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Vnni | KernelPath::Avx2 => unsafe { avx2(from, to, convert) },
        _ => each(from, to, convert),
    }
}

/// Rows the widening kernel of `path` takes at once: as many as keep its sums, a panel row
/// of weights and an input in registers (8 × 2 sums + 2 + 1 of the 16 AVX2 registers would
/// spill).
fn tile_rows(path: KernelPath) -> usize {
    match path {
        KernelPath::Avx2Vnni | KernelPath::Avx2 => 6,
        _ => TILE_ROWS,
    }
}

/// Sums of up to [`tile_rows`] rows `x` (each `padded` wide, rounded to bfloat16) with one
/// panel of weights, into `sums` (one row of [`PANEL`] per input row).
fn widened_tile(
    path: KernelPath,
    x: &[f32],
    padded: usize,
    panel: &[u16],
    sums: &mut [[f32; PANEL]],
) {
    assert!(x.len() == sums.len() * padded && panel.len() == PANEL * padded);
    assert!(!sums.is_empty() && sums.len() <= tile_rows(path));
    macro_rules! by_rows {
        ($kernel:ident) => {
            match sums.len() {
                1 => $kernel::<1>(x, padded, panel, sums),
                2 => $kernel::<2>(x, padded, panel, sums),
                3 => $kernel::<3>(x, padded, panel, sums),
                4 => $kernel::<4>(x, padded, panel, sums),
                5 => $kernel::<5>(x, padded, panel, sums),
                6 => $kernel::<6>(x, padded, panel, sums),
                7 => $kernel::<7>(x, padded, panel, sums),
                _ => $kernel::<8>(x, padded, panel, sums),
            }
        };
    }
    // SAFETY (each arm): the sizes are checked above, and the caller's path is one the CPU
    // supports.
    match path.vector_kernels() {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { by_rows!(tile_avx512) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Vnni | KernelPath::Avx2 => unsafe { by_rows!(tile_avx2) },
        _ => by_rows!(tile_portable),
    }
}

/// The widening kernel in plain Rust: each feature's sum over the input pairs in order, the
/// odd input then the even one (`vdpbf16ps`'s order). Exact products make `s + x · w` the
/// FMA's result.
fn tile_portable<const R: usize>(
    x: &[f32],
    padded: usize,
    panel: &[u16],
    sums: &mut [[f32; PANEL]],
) {
    let mut acc = [[0f32; PANEL]; R];
    for (pair, weights) in panel.chunks_exact(2 * PANEL).enumerate() {
        for (r, acc) in acc.iter_mut().enumerate() {
            let (even, odd) = (x[r * padded + 2 * pair], x[r * padded + 2 * pair + 1]);
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc += odd * from_bf16(weights[2 * j + 1]);
                *acc += even * from_bf16(weights[2 * j]);
            }
        }
    }
    sums[..R].copy_from_slice(&acc);
}

/// The widening kernel on 16 lanes: a panel row is one register; shifting each 32-bit lane
/// left by 16 gives the even inputs' weights as float32, masking the low half the odd ones'.
///
/// # Safety
/// The CPU must support AVX-512 F; the sizes are the caller's checked ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const R: usize>(
    x: &[f32],
    padded: usize,
    panel: &[u16],
    sums: &mut [[f32; PANEL]],
) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); R];
    let high = _mm512_set1_epi32(0xffff_0000_u32 as i32);
    let (x, w) = (x.as_ptr(), panel.as_ptr());
    for pair in 0..padded / 2 {
        // SAFETY: `pair < padded / 2`, so the 64 bytes of this panel row and input
        // `2 * pair + 1` of each of the `R` rows are inside the slices.
        unsafe {
            let both = _mm512_loadu_si512(w.add(pair * 2 * PANEL).cast());
            let even = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(both));
            let odd = _mm512_castsi512_ps(_mm512_and_si512(both, high));
            for (r, acc) in acc.iter_mut().enumerate() {
                let row = x.add(r * padded + 2 * pair);
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*row.add(1)), odd, *acc);
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*row), even, *acc);
            }
        }
    }
    for (sums, acc) in sums.iter_mut().zip(acc) {
        // SAFETY: a row of sums is 16 floats.
        unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), acc) };
    }
}

/// The widening kernel on 8 lanes: a panel row is two registers (features 0–7, 8–15). Each
/// sum still takes the odd input before the even one, but all rows take their odd inputs
/// first, so only two widened registers are live.
///
/// # Safety
/// The CPU must support AVX2 and FMA; the sizes are the caller's checked ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize>(
    x: &[f32],
    padded: usize,
    panel: &[u16],
    sums: &mut [[f32; PANEL]],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let high = _mm256_set1_epi32(0xffff_0000_u32 as i32);
    let (x, w) = (x.as_ptr(), panel.as_ptr());
    for pair in 0..padded / 2 {
        // SAFETY: as in `tile_avx512`.
        unsafe {
            let row_of_w = w.add(pair * 2 * PANEL);
            let halves = [
                _mm256_loadu_si256(row_of_w.cast()),
                _mm256_loadu_si256(row_of_w.add(PANEL).cast()),
            ];
            let odd = halves.map(|h| _mm256_castsi256_ps(_mm256_and_si256(h, high)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let xo = _mm256_set1_ps(*x.add(r * padded + 2 * pair + 1));
                for half in 0..2 {
                    acc[half] = _mm256_fmadd_ps(xo, odd[half], acc[half]);
                }
            }
            let even = halves.map(|h| _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let xe = _mm256_set1_ps(*x.add(r * padded + 2 * pair));
                for half in 0..2 {
                    acc[half] = _mm256_fmadd_ps(xe, even[half], acc[half]);
                }
            }
        }
    }
    for (sums, acc) in sums.iter_mut().zip(acc) {
        // SAFETY: a row of sums is 16 floats.
        unsafe {
            _mm256_storeu_ps(sums.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(sums.as_mut_ptr().add(8), acc[1]);
        }
    }
}

/// The product by `vdpbf16ps`: the inputs as bfloat16 rows, each task taking its panels two
/// at a time against its rows [`TILE_ROWS`] at a time.
///
/// # Safety
/// The CPU must support AVX-512 F and BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_product(x: &[f32], w: &PackedBf16, rows: usize, dst: &Output) {
    let padded = padded_inner(w.inner);
    let xs = converted_rows(x, (rows, w.inner), padded, 1, |from, to| {
        bf16_row(KernelPath::Avx512Bf16, from, to);
    });
    by_blocks::<{ 2 * PANEL }>(w, rows, (TILE_ROWS, 2), dst, |rows, weights, sums| {
        let x = &xs[rows.start * padded..rows.end * padded];
        // SAFETY: the CPU has AVX-512 F and BF16 (this function's promise).
        unsafe { dot_tile(x, padded, weights, sums) };
    });
}

/// Sums of up to [`TILE_ROWS`] bfloat16 rows `x` (each `padded` wide) with one or two panels
/// of weights (`weights`, whole panels), into `sums` (per row, the first panel's 16 features
/// then the second's).
///
/// # Safety
/// The CPU must support AVX-512 F and BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn dot_tile(
    x: &[u16],
    padded: usize,
    weights: &[u16],
    sums: &mut [[f32; 2 * PANEL]],
) {
    let panels = weights.len() / (PANEL * padded);
    assert!(x.len() == sums.len() * padded && weights.len() == panels * PANEL * padded);
    assert!((1..=TILE_ROWS).contains(&sums.len()) && (1..=2).contains(&panels));
    macro_rules! by_shape {
        ($($rows:literal)*) => {
            match (sums.len(), panels) {
                $(($rows, 1) => dot_kernel::<$rows, 1>(x, padded, weights, sums),
                  ($rows, _) => dot_kernel::<$rows, 2>(x, padded, weights, sums),)*
                _ => unreachable!("checked above"),
            }
        };
    }
    // SAFETY (each arm): the sizes match the kernel's, as checked above.
    unsafe { by_shape!(1 2 3 4 5 6 7 8) }
}

/// [`dot_tile`] for `R` rows and `P` panels: `R × P` sums in registers; per input pair, one
/// load of each panel's row of weights and one broadcast of each row's pair.
///
/// # Safety
/// The CPU must support AVX-512 F and BF16; `x` is `R` rows `padded` wide, `weights` `P`
/// panels, `sums` `R` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_kernel<const R: usize, const P: usize>(
    x: &[u16],
    padded: usize,
    weights: &[u16],
    sums: &mut [[f32; 2 * PANEL]],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    let panel_len = PANEL * padded;
    let (x, w) = (x.as_ptr(), weights.as_ptr());
    for pair in 0..padded / 2 {
        // SAFETY: `pair < padded / 2`: the 64 bytes of each panel's row for this pair and the
        // two inputs of each row are inside the slices. A pair of bfloat16 and a 32-bit lane
        // have the same layout (the even input in the low half), as `vdpbf16ps` wants.
        unsafe {
            let rows_of_w: [__m512bh; P] = std::array::from_fn(|q| {
                std::mem::transmute(_mm512_loadu_si512(
                    w.add(q * panel_len + pair * 2 * PANEL).cast(),
                ))
            });
            for (r, acc) in acc.iter_mut().enumerate() {
                let inputs = x.add(r * padded + 2 * pair).cast::<i32>().read_unaligned();
                let inputs: __m512bh = std::mem::transmute(_mm512_set1_epi32(inputs));
                for (acc, row_of_w) in acc.iter_mut().zip(rows_of_w) {
                    *acc = _mm512_dpbf16_ps(*acc, inputs, row_of_w);
                }
            }
        }
    }
    for (sums, acc) in sums.iter_mut().zip(acc) {
        for (q, acc) in acc.into_iter().enumerate() {
            // SAFETY: a row of sums holds two panels' 16 floats.
            unsafe { _mm512_storeu_ps(sums.as_mut_ptr().add(q * PANEL), acc) };
        }
    }
}

/// The product on AMX tiles: the inputs as bfloat16 rows (zero rows up to a whole tile), each
/// task taking its rows 32 at a time against its panels two at a time. The sums start from
/// the bias, as the float32 product's do; a block wholly inside the output is stored there
/// by the tiles, a ragged one (the last rows, a partial panel) through a buffer.
///
/// # Safety
/// [`super::amx::usable`] must hold.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
unsafe fn amx_product(x: &[f32], w: &PackedBf16, rows: usize, dst: &Output) {
    const TILE: usize = AMX_ROWS / 2;
    let padded = padded_inner(w.inner);
    let xs = converted_rows(x, (rows, w.inner), padded, TILE, |from, to| {
        bf16_row(KernelPath::Amx, from, to);
    });
    // The bias of every panel's 16 features, the padding's zero, for the tiles to load.
    let bias = dst.bias.map(|b| {
        let mut whole = b.to_vec();
        whole.resize(w.panel_count() * PANEL, 0.0);
        whole
    });
    let ragged = Output { bias: None, ..*dst };
    let grid = Grid::new(rows, w.panel_count());
    let panel_bytes = w.panel_len() * size_of::<u16>();
    (0..grid.tasks()).into_par_iter().for_each(|task| {
        let (row_range, panels) = grid.task(task);
        // SAFETY: the caller checked that the tiles are usable.
        let tiles = unsafe { super::amx::Tiles::configure() };
        let mut buffer = [[0f32; AMX_ROWS]; AMX_ROWS];
        for p in panels.clone().step_by(2) {
            let features = if p + 1 < panels.end { 2 * PANEL } else { PANEL };
            for r0 in row_range.clone().step_by(AMX_ROWS) {
                let tokens = AMX_ROWS.min(row_range.end - r0);
                // Grid blocks start at multiples of 256 rows, so `r0` is a whole tile in and
                // the zero rows after the last one fill its tile.
                let tile_rows = if tokens > TILE { AMX_ROWS } else { TILE };
                let inside = r0 + tile_rows <= rows && p * PANEL + features <= w.out;
                let out = if inside {
                    (dst.y.at(r0 * w.out + p * PANEL), w.out * size_of::<f32>())
                } else {
                    (buffer.as_mut_ptr().cast(), AMX_ROWS * size_of::<f32>())
                };
                // SAFETY: the input tiles read rows r0..r0 + tile_rows (inside `xs`, which is
                // whole tiles long) over `padded` values; the weight tiles read panels p and
                // (for 32 features) p + 1, each `padded / 32` tiles long, and the bias their
                // features (`bias` covers every panel). The stores go to this task's own
                // (rows, features) block of the output, wholly inside it, or to the buffer.
                unsafe {
                    tiles.product(
                        (xs.as_ptr().add(r0 * padded), padded * size_of::<u16>()),
                        tile_rows,
                        (w.panels.as_ptr().add(p * w.panel_len()), panel_bytes),
                        features,
                        padded / CHUNK,
                        bias.as_ref().map(|b| b[p * PANEL..].as_ptr()),
                        out,
                    );
                }
                if !inside {
                    // SAFETY: each (panel pair, row) pair is visited by exactly one task.
                    unsafe { ragged.write(r0, p * PANEL, &buffer[..tokens], features) };
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    /// `x · Wᵀ (+ bias)` in float64 from the values the products see (both rounded to
    /// bfloat16), row-major.
    fn reference(x: &[f32], w: &PackedBf16, bias: Option<&[f32]>, rows: usize) -> Vec<f64> {
        let weights = w.unpack();
        let mut y = Vec::with_capacity(rows * w.out);
        for row in x.chunks_exact(w.inner) {
            for (f, weights) in weights.chunks_exact(w.inner).enumerate() {
                let sum: f64 = row
                    .iter()
                    .zip(weights)
                    .map(|(&x, &w)| f64::from(from_bf16(to_bf16(x))) * f64::from(w))
                    .sum();
                y.push(sum + bias.map_or(0.0, |b| f64::from(b[f])));
            }
        }
        y
    }

    #[test]
    fn rounding_to_bfloat16_is_to_nearest_even_and_keeps_specials() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: to even, down. 1 + 3·2⁻⁸: up.
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(to_bf16(-2.5), 0xc020);
        assert_eq!(to_bf16(f32::INFINITY), 0x7f80);
        assert_eq!(
            to_bf16(f32::MAX),
            0x7f80,
            "past bfloat16's largest: infinity"
        );
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(to_bf16(-1e-40), 0x8000, "a subnormal is a zero of its sign");
        for v in values(1000, 3) {
            let b = from_bf16(to_bf16(v));
            assert!((b - v).abs() <= v.abs() / 256.0, "{v} -> {b}");
        }
    }

    #[test]
    fn rows_round_like_to_bf16_on_every_path() {
        // Ties both ways, specials, subnormals, and bit patterns from all over the range; 77
        // values, so the vector paths have a tail, then padding.
        let mut from = vec![
            1.0 + 1.0 / 256.0,
            1.0 + 3.0 / 256.0,
            -0.0,
            1e-40,
            -1e-40,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001),
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN_POSITIVE,
        ];
        let mut bits = 0x9e37_79b9u32;
        while from.len() < 77 {
            bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            from.push(f32::from_bits(bits));
        }
        let want: Vec<u16> = from.iter().map(|&v| to_bf16(v)).chain([0; 19]).collect();
        for path in KernelPath::supported() {
            let mut to = vec![MaybeUninit::new(0xdead); want.len()];
            bf16_row(path, &from, &mut to);
            // SAFETY: every value was initialised above.
            let got: Vec<u16> = to.iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_eq!(got, want, "{path:?}");
        }
    }

    #[test]
    fn packing_keeps_every_weight_as_its_bfloat16() {
        // 70 inputs, 20 features: padding on both sides.
        let (out, inner) = (20, 70);
        let w = values(out * inner, 5);
        let packed = PackedBf16::pack(&w, out, inner);
        let want: Vec<f32> = w.iter().map(|&v| from_bf16(to_bf16(v))).collect();
        assert_eq!(packed.unpack(), want);
    }

    #[test]
    fn every_path_is_close_to_the_exact_sum_of_the_rounded_values() {
        // 300 inputs: not a whole chunk; 200 features: a partial panel, and enough panels
        // (13) that the tasks take them two at a time, with one left alone.
        let (inner, out) = (300, 200);
        let w = PackedBf16::pack(&values(out * inner, 1), out, inner);
        let bias = values(out, 2);
        for path in KernelPath::supported() {
            for rows in [1, 7, 16, 17, 40, 300] {
                let x = values(rows * inner, rows as u32);
                for bias in [None, Some(bias.as_slice())] {
                    let got = matmul_on(path, &x, &w, bias, rows);
                    let want = reference(&x, &w, bias, rows);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        // float32 sums of 300 products of magnitude up to 3.3.
                        assert!(
                            (f64::from(*g) - w).abs() < 1e-3,
                            "{path}, {rows} rows, output {i}: {g} against {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_path_but_the_tiles_gives_the_same_bits() {
        let (inner, out) = (200, 40);
        let w = PackedBf16::pack(&values(out * inner, 3), out, inner);
        for rows in [1, 9, 33] {
            let x = values(rows * inner, 4);
            let want = matmul_on(KernelPath::Portable, &x, &w, None, rows);
            for path in KernelPath::supported() {
                if path == KernelPath::Amx {
                    continue; // the tiles sum in their own order (module header)
                }
                let got = matmul_on(path, &x, &w, None, rows);
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{path}, {rows} rows");
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_in_a_batch_of_any_size_on_every_path() {
        let (inner, out) = (300, 200);
        let w = PackedBf16::pack(&values(out * inner, 6), out, inner);
        for path in KernelPath::supported() {
            super::super::assert_rows_independent(path.as_str(), inner, |x, rows| {
                matmul_on(path, x, &w, None, rows)
            });
        }
    }

    #[test]
    fn a_product_overwrites_whatever_its_output_held() {
        let (inner, out) = (70, 20);
        let w = PackedBf16::pack(&values(out * inner, 7), out, inner);
        super::super::assert_overwrites_its_output(
            (inner, out),
            &[1, 5, 40],
            |path, x, bias, rows| matmul_on(path, x, &w, bias, rows),
            |path, x, bias, rows, y| {
                let y = output_of(y, rows, w.out);
                // SAFETY: `y` holds the product; the path is a supported one.
                unsafe { product_on(path, x, &w, bias, rows, y) }
            },
        );
    }
}
