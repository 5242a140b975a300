//! Intel AMX tiles for the bfloat16 product ([`super::bf16`]): whether this process may use
//! them, and the tile step that multiplies up to 32 rows by 32 features.
//!
//! A tile register holds 16 rows of 64 bytes. `tdpbf16ps` adds to a 16 × 16 float32 tile the
//! products of a 16 × 32 bfloat16 tile of inputs with a 16-pair × 16-feature tile of weights
//! (each weight row holding, for one pair of inputs, every feature's two values side by side:
//! the layout of [`super::bf16::PackedBf16`]). One instruction is 16 × 16 × 32
//! multiply-adds, where an AVX-512 FMA is 16.
//!
//! How the hardware sums the 32 products inside one instruction is its own (it matches
//! neither a sequential float32 sum nor one rounding per pair), so this path's sums differ in
//! their last bits from the other paths' ones. They still do not depend on the other rows of
//! the batch: every row of a tile is summed on its own, in the same chunks of 32 inputs.
//!
//! Linux gives a process the tiles only when asked (`arch_prctl(ARCH_REQ_XCOMP_PERM)`): the
//! first use without that leave is a fatal signal. [`usable`] asks once, and the `amx` kernel
//! path exists only where it was granted.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tiles {
    use std::arch::asm;
    use std::sync::OnceLock;

    /// `arch_prctl` request for leave to use an extended-state component, and the component of
    /// the tile data (Linux's `ARCH_REQ_XCOMP_PERM`, `XFEATURE_XTILEDATA`).
    const ARCH_REQ_XCOMP_PERM: libc::c_ulong = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_ulong = 18;

    /// Whether the CPU has AMX tiles with bfloat16 products and the kernel let this process
    /// use them; asked once.
    pub fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
            if std::arch::x86_64::__cpuid(0).eax < 7 {
                return false;
            }
            let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
            let has_tiles = edx & (1 << 22) != 0 && edx & (1 << 24) != 0;
            // SAFETY: a plain system call with integer arguments; it fails cleanly where the
            // kernel knows no such request.
            has_tiles
                && unsafe {
                    libc::syscall(
                        libc::SYS_arch_prctl,
                        ARCH_REQ_XCOMP_PERM,
                        XFEATURE_XTILEDATA,
                    )
                } == 0
        })
    }

    /// The tile configuration `ldtilecfg` reads (palette 1): every tile 16 rows of 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    const FULL: TileConfig = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
        rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
    };

    /// Bytes of one weight tile: 16 pairs of inputs × 16 features × 2 values × 2 bytes.
    const WEIGHT_TILE: usize = 1024;

    /// The tiles configured on this thread for the span of one value: released on drop, so
    /// a thread never keeps 8 KiB of tile state (saved on every context switch) past a task.
    pub struct Tiles(());

    impl Tiles {
        /// # Safety
        /// [`usable`] must have returned `true`.
        pub unsafe fn configure() -> Self {
            // SAFETY: the caller checked the leave to use the tiles; FULL is a valid palette-1
            // configuration.
            unsafe { asm!("ldtilecfg [{}]", in(reg) &FULL, options(nostack, readonly)) };
            Tiles(())
        }

        /// `bias + x · Wᵀ` for `rows` (16 or 32) input rows and `features` (16 or 32)
        /// features over `chunks` chunks of 32 inputs, stored at `out` (rows `out_stride`
        /// bytes apart).
        ///
        /// `x`: bfloat16 input rows, `x_stride` bytes apart, `chunks * 32` values each; `w`:
        /// the first feature panel's weights (`chunks` weight tiles in a row), the second
        /// panel (when `features` is 32) `panel_bytes` further; `bias`: the features' biases
        /// (16 or 32 floats), which every row's sums start from, or none (zeros).
        ///
        /// # Safety
        /// Those reads must be inside the caller's buffers, and `out` valid for writes of
        /// `rows` rows of `features` floats.
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn product(
            &self,
            (x, x_stride): (*const u16, usize),
            rows: usize,
            (w, panel_bytes): (*const u16, usize),
            features: usize,
            chunks: usize,
            bias: Option<*const f32>,
            (out, out_stride): (*mut f32, usize),
        ) {
            // SAFETY (every block below): the tiles are configured (`self`); the loads read
            // 16 rows of 64 bytes inside the caller's buffers (its promise; a bias row is
            // read 16 times, stride 0), the stores write 16 rows of 64 bytes inside `out`.
            unsafe {
                match bias {
                    Some(b) => {
                        asm!("tileloadd tmm0, [{}+{}*1]", in(reg) b, in(reg) 0usize, options(nostack, readonly));
                        asm!("tileloadd tmm2, [{}+{}*1]", in(reg) b, in(reg) 0usize, options(nostack, readonly));
                        if features == 32 {
                            asm!("tileloadd tmm1, [{}+{}*1]", in(reg) b.add(16), in(reg) 0usize, options(nostack, readonly));
                            asm!("tileloadd tmm3, [{}+{}*1]", in(reg) b.add(16), in(reg) 0usize, options(nostack, readonly));
                        }
                    }
                    None => asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    ),
                }
                let (x, w) = (x.cast::<u8>(), w.cast::<u8>());
                for chunk in 0..chunks {
                    let x0 = x.add(chunk * 64);
                    let w0 = w.add(chunk * WEIGHT_TILE);
                    asm!("tileloadd tmm4, [{}+{}*1]", in(reg) x0, in(reg) x_stride, options(nostack, readonly));
                    asm!("tileloadd tmm6, [{}+{}*1]", in(reg) w0, in(reg) 64usize, options(nostack, readonly));
                    asm!("tdpbf16ps tmm0, tmm4, tmm6", options(nostack, nomem));
                    if features == 32 {
                        let w1 = w0.add(panel_bytes);
                        asm!("tileloadd tmm7, [{}+{}*1]", in(reg) w1, in(reg) 64usize, options(nostack, readonly));
                        asm!("tdpbf16ps tmm1, tmm4, tmm7", options(nostack, nomem));
                    }
                    if rows == 32 {
                        let x1 = x0.add(16 * x_stride);
                        asm!("tileloadd tmm5, [{}+{}*1]", in(reg) x1, in(reg) x_stride, options(nostack, readonly));
                        asm!("tdpbf16ps tmm2, tmm5, tmm6", options(nostack, nomem));
                        if features == 32 {
                            asm!("tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
                        }
                    }
                }
                let lower = out.byte_add(16 * out_stride);
                asm!("tilestored [{}+{}*1], tmm0", in(reg) out, in(reg) out_stride, options(nostack));
                if features == 32 {
                    asm!("tilestored [{}+{}*1], tmm1", in(reg) out.add(16), in(reg) out_stride, options(nostack));
                }
                if rows == 32 {
                    asm!("tilestored [{}+{}*1], tmm2", in(reg) lower, in(reg) out_stride, options(nostack));
                    if features == 32 {
                        asm!("tilestored [{}+{}*1], tmm3", in(reg) lower.add(16), in(reg) out_stride, options(nostack));
                    }
                }
            }
        }
    }

    impl Drop for Tiles {
        fn drop(&mut self) {
            // SAFETY: the tiles were configured by `configure`.
            unsafe { asm!("tilerelease", options(nostack, nomem)) };
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(super) use tiles::{Tiles, usable};

/// No AMX off x86-64 Linux.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(super) fn usable() -> bool {
    false
}
