//! Packed 16-bit inner kernels for the Arm DSP extension (Cortex-M4/M7, `thumbv7em`):
//! `SMLAD` (two 16x16 multiply-accumulates per instruction) and `SXTB16` (sign-extends
//! bytes 0 and 2, or 1 and 3 after a rotation, of a word into two 16-bit lanes).
//!
//! The int8 CONV_2D, FULLY_CONNECTED and 3x3 DEPTHWISE_CONV_2D kernels use this module on
//! targets with the DSP extension (build-script cfg `edgeflow_arm_dsp`); elsewhere they
//! keep their portable inner loops, which stay the reference. The module is also
//! compiled for host tests, where the instructions have portable twins ([`ops`]), so the
//! blocking and data layout below are tested against the portable kernels on the host
//! and the instructions themselves by the QEMU conformance run (device output must equal
//! host output; `tests/tests/qemu.rs` adds graphs with odd and non-multiple-of-4 sizes
//! for the loop tails). [`ops`] also holds the single-shift requantization
//! (`requant_single`: two `SMLAL`s and a shift) and `SSAT`, used by every int8 epilogue.
//!
//! Depthwise 3x3 (depth multiplier 1): the filter is widened once per call into
//! [`DW_GROUP`]-byte groups of four channels (per tap the words `(w0, w2)`, `(w1, w3)`),
//! and [`ops::dw3x3`] sums nine input words per group with `SXTB16` and
//! `SMLABB`/`SMLATT`.
//!
//! Layout. Input values are widened once per output pixel into a *column* of 16-bit
//! values (an im2col in q15), shared by every output channel. Per group of four values
//! `x0..x3` a column holds the words `(x0, x2)` and `(x1, x3)` (low lane first): exactly
//! the lanes `SXTB16` and `SXTB16 ROR #8` produce from a word of four int8 weights, so the
//! weights are used straight from flash without repacking. The `k % 4` trailing values
//! follow as plain little-endian `i16`s and are accumulated one by one. Two columns can
//! be *interleaved* (group `g` of column A, then group `g` of column B; [`PAIR`] bytes per
//! group) so one pointer walks both in the 2x2 kernel.
//!
//! Every sum is a wrapping int32 sum of exact 16x16 products; `SMLAD` wraps the same way
//! (it only sets the sticky Q flag), so results equal the portable kernels' exactly.

/// The DSP instructions, as inline assembly on Arm targets with the DSP extension and as
/// portable Rust (same results bit for bit) elsewhere.
pub(crate) mod ops {
    #[cfg(edgeflow_arm_dsp)]
    mod imp {
        #![allow(unsafe_code)]
        use core::arch::asm;

        /// One accumulating tap of [`dw3x3`]: the tap pointer at byte offset `$o` of the
        /// pointer array.
        macro_rules! TAP {
            ($o:literal) => {
                concat!(
                    "ldr    {x}, [{tp}, #",
                    $o,
                    "]\n",
                    "ldr    {x}, [{x}, {c}]\n",
                    "ldrd   {w0}, {w1}, [{wr}], #8\n",
                    "sxtb16 {t}, {x}\n",
                    "smlabb {a0}, {t}, {w0}, {a0}\n",
                    "smlatt {a2}, {t}, {w0}, {a2}\n",
                    "sxtb16 {t}, {x}, ror #8\n",
                    "smlabb {a1}, {t}, {w1}, {a1}\n",
                    "smlatt {a3}, {t}, {w1}, {a3}"
                )
            };
        }

        /// One group of [`rows_2`]: four values of two interleaved columns against four
        /// weights of each of two rows (17 instructions, 16 multiply-accumulates).
        macro_rules! GROUP_2X2 {
            () => {
                concat!(
                    "ldr    {t0}, [{w0}], #4\n",
                    "ldrd   {x0}, {x1}, [{c}]\n",
                    "sxtb16 {t1}, {t0}\n",
                    "sxtb16 {t0}, {t0}, ror #8\n",
                    "smlad  {a0}, {x0}, {t1}, {a0}\n",
                    "smlad  {a0}, {x1}, {t0}, {a0}\n",
                    "ldrd   {x0}, {x1}, [{c}, #8]\n",
                    "smlad  {b0}, {x0}, {t1}, {b0}\n",
                    "smlad  {b0}, {x1}, {t0}, {b0}\n",
                    "ldr    {t0}, [{w1}], #4\n",
                    "sxtb16 {t1}, {t0}\n",
                    "sxtb16 {t0}, {t0}, ror #8\n",
                    "smlad  {b1}, {x0}, {t1}, {b1}\n",
                    "smlad  {b1}, {x1}, {t0}, {b1}\n",
                    "ldrd   {x0}, {x1}, [{c}], #16\n",
                    "smlad  {a1}, {x0}, {t1}, {a1}\n",
                    "smlad  {a1}, {x1}, {t0}, {a1}"
                )
            };
        }

        /// One group of [`dot_1x2_groups`]: four values of the column against four
        /// weights of each row.
        macro_rules! GROUP_1X2 {
            () => {
                concat!(
                    "ldrd   {x0}, {x1}, [{c}], #8\n",
                    "ldr    {t0}, [{w0}], #4\n",
                    "sxtb16 {t1}, {t0}\n",
                    "sxtb16 {t0}, {t0}, ror #8\n",
                    "smlad  {a0}, {x0}, {t1}, {a0}\n",
                    "smlad  {a0}, {x1}, {t0}, {a0}\n",
                    "ldr    {t0}, [{w1}], #4\n",
                    "sxtb16 {t1}, {t0}\n",
                    "sxtb16 {t0}, {t0}, ror #8\n",
                    "smlad  {a1}, {x0}, {t1}, {a1}\n",
                    "smlad  {a1}, {x1}, {t0}, {a1}"
                )
            };
        }

        /// [`super::portable::dot_1x2_groups`] with two groups per iteration of one
        /// block of assembly (12 instructions per 8 multiply-accumulates); an odd last
        /// group, short slices or a column that is not word aligned (`LDRD`) take the
        /// portable loop.
        #[inline(always)]
        pub(crate) fn dot_1x2_groups(col: &[u8], w0: &[u8], w1: &[u8], n4: usize) -> [i32; 2] {
            use super::super::GROUP;
            let n2 = n4 / 2;
            let fits = col.len() / GROUP >= n4 && w0.len() / 4 >= n4 && w1.len() / 4 >= n4;
            if !fits || n2 == 0 || col.as_ptr().align_offset(4) != 0 {
                return dot_1x2_groups_portable(col, w0, w1, n4);
            }
            let (mut a0, mut a1) = (0i32, 0i32);
            // SAFETY: the loop runs `n2 >= 1` times; iteration `i` reads bytes
            // `16i..16i + 16` of `col` (word aligned: `col` is) and `8i..8i + 8` of `w0`
            // and `w1`, inside the slices (`fits`: `col` holds `n4 >= 2 * n2` groups, the
            // rows `4 * n4` bytes; unaligned single-word `LDR`s are allowed on
            // Armv7E-M). It writes no memory, uses no stack, and clobbers only the flags
            // and the named registers.
            unsafe {
                asm!(
                    "2:",
                    GROUP_1X2!(),
                    GROUP_1X2!(),
                    "subs   {n}, {n}, #1",
                    "bne    2b",
                    a0 = inout(reg) a0,
                    a1 = inout(reg) a1,
                    c = inout(reg) col.as_ptr() => _,
                    w0 = inout(reg) w0.as_ptr() => _,
                    w1 = inout(reg) w1.as_ptr() => _,
                    n = inout(reg) n2 => _,
                    t0 = out(reg) _,
                    t1 = out(reg) _,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    options(readonly, nostack),
                );
            }
            if n4 % 2 == 1 {
                let done = 2 * n2;
                let [d0, d1] = dot_1x2_groups_portable(
                    col.get(done * GROUP..).unwrap_or(&[]),
                    w0.get(4 * done..).unwrap_or(&[]),
                    w1.get(4 * done..).unwrap_or(&[]),
                    1,
                );
                a0 = a0.wrapping_add(d0);
                a1 = a1.wrapping_add(d1);
            }
            [a0, a1]
        }

        /// [`super::portable::dot_1x2_groups`], the fallback and odd last group of
        /// [`dot_1x2_groups`]: inlined into it on the speed build; on the size-class
        /// build (`cfg(edgeflow_size)`, build.rs) a function of its own, so its loop
        /// state is not in the frame of `block_1` (BENCHMARKS.md, footprint (j2)).
        #[cfg_attr(edgeflow_size, inline(never))]
        #[cfg_attr(not(edgeflow_size), inline(always))]
        fn dot_1x2_groups_portable(col: &[u8], w0: &[u8], w1: &[u8], n4: usize) -> [i32; 2] {
            super::portable::dot_1x2_groups(col, w0, w1, n4)
        }

        /// `SSAT d, #8, v`: `v` clamped to `[-128, 127]`.
        #[inline(always)]
        pub(crate) fn ssat8(v: i32) -> i32 {
            let d: i32;
            // SAFETY: a register-only instruction; it touches no memory or stack and
            // only the Q flag, which the asm block does not claim to preserve.
            unsafe {
                asm!("ssat {d}, #8, {v}", d = lateout(reg) d, v = in(reg) v,
                     options(pure, nomem, nostack));
            }
            d
        }

        /// [`super::portable::fc_pairs`]: per pair of rows one block of assembly (two
        /// groups per iteration, 12 instructions per 8 multiply-accumulates) with the
        /// row pointers computed from the row stride, so the per-pair overhead is a few
        /// instructions; an odd last group takes the portable loop. Falls back to the
        /// portable loop if the slices are short, `n4 < 2`, or the column is not word
        /// aligned (`LDRD`).
        #[inline(always)]
        pub(crate) fn fc_pairs(col: &[u8], w: &[u8], stride: usize, n4: usize, acc: &mut [i32]) {
            use super::super::GROUP;
            let pairs = acc.len() / 2;
            let n2 = n4 / 2;
            let need = if pairs == 0 {
                0
            } else {
                (2 * pairs - 1)
                    .saturating_mul(stride)
                    .saturating_add(4 * n4)
            };
            let fits = n2 > 0 && col.len() / GROUP >= n4 && 4 * n4 <= stride && w.len() >= need;
            if !fits || col.as_ptr().align_offset(4) != 0 {
                return fc_pairs_portable(col, w, stride, n4, acc);
            }
            let mut row = w.as_ptr();
            for a in acc.chunks_exact_mut(2) {
                let (mut a0, mut a1) = (0i32, 0i32);
                // SAFETY: the loop runs `n2 >= 1` times; iteration `i` reads bytes
                // `16i..16i + 16` of `col` (word aligned: `col` is) and `8i..8i + 8`
                // from `row` and `row + stride`, where `row` is `w` plus `2 * stride`
                // per pair done: the bytes read lie below
                // `(2 * pairs - 1) * stride + 4 * n4 <= w.len()` (`fits`; `2 * n2 <= n4`).
                // Unaligned single-word `LDR`s are allowed on Armv7E-M. It writes no
                // memory, uses no stack, and clobbers only the flags and the named
                // registers.
                unsafe {
                    asm!(
                        "add    {w1}, {w0}, {k}",
                        "2:",
                        GROUP_1X2!(),
                        GROUP_1X2!(),
                        "subs   {n}, {n}, #1",
                        "bne    2b",
                        a0 = inout(reg) a0,
                        a1 = inout(reg) a1,
                        c = inout(reg) col.as_ptr() => _,
                        w0 = inout(reg) row => _,
                        w1 = out(reg) _,
                        k = in(reg) stride,
                        n = inout(reg) n2 => _,
                        t0 = out(reg) _,
                        t1 = out(reg) _,
                        x0 = out(reg) _,
                        x1 = out(reg) _,
                        options(readonly, nostack),
                    );
                }
                if let [x0, x1] = a {
                    *x0 = x0.wrapping_add(a0);
                    *x1 = x1.wrapping_add(a1);
                }
                row = row.wrapping_add(2 * stride);
            }
            if n4 % 2 == 1 {
                let last = 4 * (n4 - 1);
                let g = col.get(GROUP * (n4 - 1)..).unwrap_or(&[]);
                let w = w.get(last..).unwrap_or(&[]);
                fc_pairs_portable(g, w, stride, 1, acc);
            }
        }

        /// [`super::portable::fc_pairs`], the fallback and odd last group of
        /// [`fc_pairs`]: inlined into it on the speed build; on the size-class build
        /// (`cfg(edgeflow_size)`, build.rs) a function of its own, so its loop state is
        /// not in the frame of `fc_block` while the assembly runs.
        #[cfg_attr(edgeflow_size, inline(never))]
        #[cfg_attr(not(edgeflow_size), inline(always))]
        fn fc_pairs_portable(col: &[u8], w: &[u8], stride: usize, n4: usize, acc: &mut [i32]) {
            super::portable::fc_pairs(col, w, stride, n4, acc);
        }

        /// [`super::portable::requant_single`] as two `SMLAL`s and a shift.
        #[inline(always)]
        pub(crate) fn requant_single(x: i32, m: i32, klo: u32, khi: i32, r1: u32) -> i32 {
            let h: i32;
            // SAFETY: register-only instructions (multiply-accumulates and shifts that do
            // not set flags); no memory or stack access.
            unsafe {
                asm!(
                    "smlal {lo}, {hi}, {x}, {m}",
                    "lsr   {x}, {x}, #31",
                    "smlal {lo}, {hi}, {x}, {min}",
                    "asr   {hi}, {hi}, {r}",
                    lo = inout(reg) klo => _,
                    hi = inout(reg) khi => h,
                    x = inout(reg) x => _,
                    m = in(reg) m,
                    min = in(reg) 0x8000_0000u32,
                    r = in(reg) r1,
                    options(pure, nomem, nostack, preserves_flags),
                );
            }
            h
        }

        /// `SXTAB16 d, a, x`: lanes `a.lo + sext(x.b0)`, `a.hi + sext(x.b2)` (16-bit wrapping).
        #[inline(always)]
        pub(crate) fn sxtab16(a: u32, x: u32) -> u32 {
            let d: u32;
            // SAFETY: a register-only DSP instruction (the target has the DSP extension,
            // checked by the build script); no memory, stack or flag access.
            unsafe {
                asm!("sxtab16 {d}, {a}, {x}", d = lateout(reg) d, a = in(reg) a, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            d
        }

        /// `SXTAB16 d, a, x, ROR #8`: lanes `a.lo + sext(x.b1)`, `a.hi + sext(x.b3)`.
        #[inline(always)]
        pub(crate) fn sxtab16_ror8(a: u32, x: u32) -> u32 {
            let d: u32;
            // SAFETY: as in `sxtab16`.
            unsafe {
                asm!("sxtab16 {d}, {a}, {x}, ror #8", d = lateout(reg) d, a = in(reg) a,
                     x = in(reg) x, options(pure, nomem, nostack, preserves_flags));
            }
            d
        }

        /// `SXTB16 d, x`: lanes `sext(x.b0)`, `sext(x.b2)`.
        #[inline(always)]
        pub(crate) fn sxtb16(x: u32) -> u32 {
            let d: u32;
            // SAFETY: as in `sxtab16`.
            unsafe {
                asm!("sxtb16 {d}, {x}", d = lateout(reg) d, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            d
        }

        /// `SXTB16 d, x, ROR #8`: lanes `sext(x.b1)`, `sext(x.b3)`.
        #[inline(always)]
        pub(crate) fn sxtb16_ror8(x: u32) -> u32 {
            let d: u32;
            // SAFETY: as in `sxtab16`.
            unsafe {
                asm!("sxtb16 {d}, {x}, ror #8", d = lateout(reg) d, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            d
        }

        /// `SMLAD d, a, b, acc`: `acc + a.lo * b.lo + a.hi * b.hi`, signed 16-bit lanes,
        /// wrapping (it may set the sticky Q flag, so flags are not declared preserved).
        #[inline(always)]
        pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
            let d: i32;
            // SAFETY: a register-only DSP instruction; it touches no memory or stack and
            // only the Q flag, which the asm block does not claim to preserve.
            unsafe {
                asm!("smlad {d}, {a}, {b}, {c}", d = lateout(reg) d, a = in(reg) a,
                     b = in(reg) b, c = in(reg) acc, options(pure, nomem, nostack));
            }
            d
        }

        /// [`super::portable::rows_2`] with the group loop of each row pair in one block of
        /// assembly (LLVM's allocation of the intrinsics spills; this keeps 4
        /// accumulators, 4 operands and 4 pointers or counters in the 12 allocatable
        /// registers): per group of four values, the two weight words are loaded and
        /// unpacked once and the columns' words are loaded with `LDRD`, 17 instructions
        /// for 16 multiply-accumulates, two groups per iteration. Falls back to the portable loop if the slices are
        /// short or the columns are not word aligned (`LDRD` needs it).
        #[inline(always)]
        pub(crate) fn rows_2(
            g: &[u8],
            w: &[u8],
            k: usize,
            n4: usize,
            acc_a: &mut [i32],
            acc_b: &mut [i32],
        ) {
            use super::super::PAIR;
            let fits = n4 > 0 && g.len() / PAIR >= n4 && k / 4 >= n4;
            if !fits || g.as_ptr().align_offset(4) != 0 {
                return rows_2_portable(g, w, k, n4, acc_a, acc_b);
            }
            let mut wp = w.chunks_exact(2 * k);
            let mut ap = acc_a.chunks_exact_mut(2);
            let mut bp = acc_b.chunks_exact_mut(2);
            for ((wpair, a), b) in (&mut wp).zip(&mut ap).zip(&mut bp) {
                let (w0, w1) = wpair.split_at(k);
                let (mut a0, mut a1, mut b0, mut b1) = (0i32, 0i32, 0i32, 0i32);
                // SAFETY: `n4 >= 1` groups are done (an odd one, then pairs); group `i`
                // reads bytes `16i..16i + 16` of `g` (word aligned: `g` is, and 16 is a
                // multiple of 4) and `4i..4i + 4` of `w0` and `w1`, all inside the slices (`fits`:
                // `g` holds `n4` groups, `w0` and `w1` `k >= 4 * n4` bytes). Unaligned
                // single-word `LDR`s of the weights are allowed on Armv7E-M. It writes
                // no memory, uses no stack, and clobbers only the flags and the named
                // registers.
                unsafe {
                    asm!(
                        // An odd group first, then two groups per iteration.
                        "tst    {n}, #1",
                        "beq    3f",
                        GROUP_2X2!(),
                        "3:",
                        "lsrs   {n}, {n}, #1",
                        "beq    4f",
                        "2:",
                        GROUP_2X2!(),
                        GROUP_2X2!(),
                        "subs   {n}, {n}, #1",
                        "bne    2b",
                        "4:",
                        a0 = inout(reg) a0,
                        a1 = inout(reg) a1,
                        b0 = inout(reg) b0,
                        b1 = inout(reg) b1,
                        c = inout(reg) g.as_ptr() => _,
                        w0 = inout(reg) w0.as_ptr() => _,
                        w1 = inout(reg) w1.as_ptr() => _,
                        n = inout(reg) n4 => _,
                        t0 = out(reg) _,
                        t1 = out(reg) _,
                        x0 = out(reg) _,
                        x1 = out(reg) _,
                        options(readonly, nostack),
                    );
                }
                if let ([x0, x1], [y0, y1]) = (a, b) {
                    (*x0, *x1, *y0, *y1) = (a0, a1, b0, b1);
                }
            }
            if let ([x], [y]) = (ap.into_remainder(), bp.into_remainder()) {
                [*x, *y] = groups_2x1_portable(g, wp.remainder(), n4);
            }
        }

        /// [`super::portable::rows_2`], the fallback of [`rows_2`], and
        /// [`super::portable::groups_2x1`], its odd last row: inlined into it on the
        /// speed build; on the size-class build (`cfg(edgeflow_size)`, build.rs)
        /// functions of their own, so their loop state is not in the frame of `block_2`
        /// (BENCHMARKS.md, footprint (j2)).
        #[cfg_attr(edgeflow_size, inline(never))]
        #[cfg_attr(not(edgeflow_size), inline(always))]
        fn rows_2_portable(
            g: &[u8],
            w: &[u8],
            k: usize,
            n4: usize,
            acc_a: &mut [i32],
            acc_b: &mut [i32],
        ) {
            super::portable::rows_2(g, w, k, n4, acc_a, acc_b);
        }

        /// See [`rows_2_portable`].
        #[cfg_attr(edgeflow_size, inline(never))]
        #[cfg_attr(not(edgeflow_size), inline(always))]
        fn groups_2x1_portable(g: &[u8], w: &[u8], n4: usize) -> [i32; 2] {
            super::portable::groups_2x1(g, w, n4)
        }

        /// [`dw3x3`]'s fallback (never taken with the checked scratch layout): out of
        /// line, so its locals do not enlarge the frame of the pixel loop that calls
        /// `dw3x3`.
        #[cold]
        #[inline(never)]
        fn dw3x3_fallback(taps: &[&[u8]; 9], c0: usize, wide: &[u8], acc: &mut [i32]) {
            super::portable::dw3x3(taps, c0, wide, acc)
        }

        /// [`super::portable::dw3x3`] in one block of assembly: per group of four
        /// channels and per tap, one pointer load, one input word, one `LDRD` of the
        /// widened weights, two `SXTB16` and four `SMLAxy` (81 instructions for 36
        /// multiply-accumulates), then two `STRD`s of the sums. Falls back to the
        /// portable loop if a slice is short or `wide`/`acc` are not word aligned
        /// (`LDRD`/`STRD` need it).
        #[inline(always)]
        pub(crate) fn dw3x3(taps: &[&[u8]; 9], c0: usize, wide: &[u8], acc: &mut [i32]) {
            use super::super::DW_GROUP;
            let n = acc.len() / 4;
            let fits =
                n > 0 && wide.len() / DW_GROUP >= n && taps.iter().all(|t| t.len() >= c0 + 4 * n);
            if !fits || wide.as_ptr().align_offset(4) != 0 || acc.as_ptr().align_offset(4) != 0 {
                return dw3x3_fallback(taps, c0, wide, acc);
            }
            // One past the channels of this call in every tap: the loop indexes them
            // with a negative offset running up to 0.
            let end = c0 + 4 * n;
            let tp: [*const u8; 9] = taps.map(|t| t.as_ptr().wrapping_add(end));
            let neg = (4 * n).wrapping_neg();
            // SAFETY: the loop runs `n >= 1` times with `c` = `-4n, -4n + 4, ..., -4`;
            // iteration `i` reads the word at byte `end + c = c0 + 4i` of every tap
            // (inside it: `fits`, each tap holds `c0 + 4n` bytes; unaligned `LDR` is
            // allowed on Armv7E-M), the nine tap pointers from `tp` (a live local
            // array), `DW_GROUP = 72` bytes at offset `72i` of `wide` (inside by
            // `fits`, word aligned as checked), and writes 16 bytes at offset `16i` of
            // `acc` (its first `4n` values, word aligned). It uses no stack and
            // clobbers only the flags (the Q flag) and the named registers.
            unsafe {
                asm!(
                    "2:",
                    "ldr    {x}, [{tp}]",
                    "ldr    {x}, [{x}, {c}]",
                    "ldrd   {w0}, {w1}, [{wr}], #8",
                    "sxtb16 {t}, {x}",
                    "smulbb {a0}, {t}, {w0}",
                    "smultt {a2}, {t}, {w0}",
                    "sxtb16 {t}, {x}, ror #8",
                    "smulbb {a1}, {t}, {w1}",
                    "smultt {a3}, {t}, {w1}",
                    TAP!(4),
                    TAP!(8),
                    TAP!(12),
                    TAP!(16),
                    TAP!(20),
                    TAP!(24),
                    TAP!(28),
                    TAP!(32),
                    "strd   {a0}, {a1}, [{acc}], #8",
                    "strd   {a2}, {a3}, [{acc}], #8",
                    "adds   {c}, {c}, #4",
                    "bne    2b",
                    tp = in(reg) tp.as_ptr(),
                    c = inout(reg) neg => _,
                    wr = inout(reg) wide.as_ptr() => _,
                    acc = inout(reg) acc.as_mut_ptr() => _,
                    a0 = out(reg) _,
                    a1 = out(reg) _,
                    a2 = out(reg) _,
                    a3 = out(reg) _,
                    x = out(reg) _,
                    t = out(reg) _,
                    w0 = out(reg) _,
                    w1 = out(reg) _,
                    options(nostack),
                );
            }
        }
    }

    #[cfg(not(edgeflow_arm_dsp))]
    mod imp {
        pub(crate) use super::portable::*;
    }

    pub(crate) use imp::*;

    /// Portable twins of the instructions (the semantics of the Armv7-M manual).
    #[cfg_attr(edgeflow_arm_dsp, allow(dead_code))]
    pub(crate) mod portable {
        #[inline(always)]
        fn lanes(v: u32) -> (i16, i16) {
            (v as u16 as i16, (v >> 16) as u16 as i16)
        }

        #[inline(always)]
        fn pack(lo: i16, hi: i16) -> u32 {
            u32::from(lo as u16) | (u32::from(hi as u16) << 16)
        }

        /// `SXTAB16`.
        #[inline(always)]
        pub(crate) fn sxtab16(a: u32, x: u32) -> u32 {
            let (lo, hi) = lanes(a);
            pack(
                lo.wrapping_add(i16::from(x as u8 as i8)),
                hi.wrapping_add(i16::from((x >> 16) as u8 as i8)),
            )
        }

        /// `SXTAB16 ..., ROR #8`.
        #[inline(always)]
        pub(crate) fn sxtab16_ror8(a: u32, x: u32) -> u32 {
            sxtab16(a, x.rotate_right(8))
        }

        /// `SXTB16`.
        #[inline(always)]
        pub(crate) fn sxtb16(x: u32) -> u32 {
            sxtab16(0, x)
        }

        /// `SXTB16 ..., ROR #8`.
        #[inline(always)]
        pub(crate) fn sxtb16_ror8(x: u32) -> u32 {
            sxtab16(0, x.rotate_right(8))
        }

        /// `n4` [`PAIR`](super::super::PAIR)-byte groups of `g` (two interleaved columns)
        /// times the first `4 * n4` bytes of `w0` and `w1`, as `[a.w0, a.w1, b.w0, b.w1]`.
        #[inline(always)]
        pub(crate) fn groups_2x2(g: &[u8], w0: &[u8], w1: &[u8], n4: usize) -> [i32; 4] {
            use super::super::{word, word_at, PAIR};
            let (mut a0, mut a1, mut b0, mut b1) = (0i32, 0i32, 0i32, 0i32);
            for (((c, p), q), _) in g
                .chunks_exact(PAIR)
                .zip(w0.chunks_exact(4))
                .zip(w1.chunks_exact(4))
                .zip(0..n4)
            {
                let (p, q) = (word(p), word(q));
                let (pe, qe) = (sxtb16(p), sxtb16(q));
                let (po, qo) = (sxtb16_ror8(p), sxtb16_ror8(q));
                let (xa, xb) = (word(c), word_at(c, 8));
                a0 = smlad(xa, pe, a0);
                a1 = smlad(xa, qe, a1);
                b0 = smlad(xb, pe, b0);
                b1 = smlad(xb, qe, b1);
                let (xa, xb) = (word_at(c, 4), word_at(c, 12));
                a0 = smlad(xa, po, a0);
                a1 = smlad(xa, qo, a1);
                b0 = smlad(xb, po, b0);
                b1 = smlad(xb, qo, b1);
            }
            [a0, a1, b0, b1]
        }

        /// Like [`groups_2x2`] for one weight row: `[a.w, b.w]`.
        #[inline(always)]
        pub(crate) fn groups_2x1(g: &[u8], w: &[u8], n4: usize) -> [i32; 2] {
            use super::super::{word, word_at, PAIR};
            let (mut a, mut b) = (0i32, 0i32);
            for ((c, p), _) in g.chunks_exact(PAIR).zip(w.chunks_exact(4)).zip(0..n4) {
                let p = word(p);
                let (pe, po) = (sxtb16(p), sxtb16_ror8(p));
                a = smlad(word(c), pe, a);
                a = smlad(word_at(c, 4), po, a);
                b = smlad(word_at(c, 8), pe, b);
                b = smlad(word_at(c, 12), po, b);
            }
            [a, b]
        }

        /// The group sums of two interleaved columns (`n4` groups of `g`) against every
        /// `k`-byte row of `w`, into `acc_a[j]` and `acc_b[j]` for row `j` (as many rows
        /// as all three hold), two rows per pass.
        #[inline(always)]
        pub(crate) fn rows_2(
            g: &[u8],
            w: &[u8],
            k: usize,
            n4: usize,
            acc_a: &mut [i32],
            acc_b: &mut [i32],
        ) {
            if k == 0 {
                return;
            }
            let mut wp = w.chunks_exact(2 * k);
            let mut ap = acc_a.chunks_exact_mut(2);
            let mut bp = acc_b.chunks_exact_mut(2);
            for ((wpair, a), b) in (&mut wp).zip(&mut ap).zip(&mut bp) {
                let (w0, w1) = wpair.split_at(k);
                if let ([x0, x1], [y0, y1]) = (a, b) {
                    [*x0, *x1, *y0, *y1] = groups_2x2(g, w0, w1, n4);
                }
            }
            if let ([x], [y]) = (ap.into_remainder(), bp.into_remainder()) {
                [*x, *y] = groups_2x1(g, wp.remainder(), n4);
            }
        }

        /// `n4` [`GROUP`](super::super::GROUP)-byte groups of a single column times the
        /// first `4 * n4` bytes of `w0` and `w1`: `[x.w0, x.w1]`.
        #[inline(always)]
        pub(crate) fn dot_1x2_groups(col: &[u8], w0: &[u8], w1: &[u8], n4: usize) -> [i32; 2] {
            use super::super::{word, word_at, GROUP};
            let (mut a0, mut a1) = (0i32, 0i32);
            for (((c, p), q), _) in col
                .chunks_exact(GROUP)
                .zip(w0.chunks_exact(4))
                .zip(w1.chunks_exact(4))
                .zip(0..n4)
            {
                let (p, q) = (word(p), word(q));
                let x = word(c);
                a0 = smlad(x, sxtb16(p), a0);
                a1 = smlad(x, sxtb16(q), a1);
                let x = word_at(c, 4);
                a0 = smlad(x, sxtb16_ror8(p), a0);
                a1 = smlad(x, sxtb16_ror8(q), a1);
            }
            [a0, a1]
        }

        /// `SSAT #8`: `v` clamped to `[-128, 127]`.
        #[inline(always)]
        pub(crate) fn ssat8(v: i32) -> i32 {
            v.clamp(-128, 127)
        }

        /// Adds to `acc[j]`, for each pair of rows of `acc` (an odd last entry is left
        /// alone), the first `n4` groups of the single column `col` times the `4 * n4`
        /// bytes at the start of row `j` of `w` (rows `stride` bytes apart).
        #[inline(always)]
        pub(crate) fn fc_pairs(col: &[u8], w: &[u8], stride: usize, n4: usize, acc: &mut [i32]) {
            for (j, a) in acc.chunks_exact_mut(2).enumerate() {
                let r0 = w.get(2 * j * stride..).unwrap_or(&[]);
                let r1 = r0.get(stride..).unwrap_or(&[]);
                let [d0, d1] = dot_1x2_groups(col, r0, r1, n4);
                if let [x0, x1] = a {
                    *x0 = x0.wrapping_add(d0);
                    *x1 = x1.wrapping_add(d1);
                }
            }
        }

        /// [`crate::kernels::generic::requant::requant_single`]`(x, m, k, r1)` with the 64-bit rounding
        /// constant `k` as its low and high words: `hi(x * m + k - [x < 0] * 2^31) >> r1`
        /// (`r1` in `0..=30`).
        #[inline(always)]
        pub(crate) fn requant_single(x: i32, m: i32, klo: u32, khi: i32, r1: u32) -> i32 {
            let k = (i64::from(khi) << 32) | i64::from(klo);
            crate::kernels::generic::requant::requant_single(x, m, k, r1)
        }

        /// Depthwise 3x3 sums of `acc.len() / 4` groups of four channels from channel
        /// `c0` on: `acc[4i + j] = sum_t x_t[c0 + 4i + j] * w_t[c0 + 4i + j]` with the
        /// int8 inputs of the nine `taps` and the weights widened into `wide`
        /// ([`DW_GROUP`](super::super::DW_GROUP) bytes per group, see
        /// [`widen_dw3x3`](super::super::widen_dw3x3)).
        #[inline(always)]
        pub(crate) fn dw3x3(taps: &[&[u8]; 9], c0: usize, wide: &[u8], acc: &mut [i32]) {
            use super::super::{word, word_at, DW_GROUP};
            let lo = |v: u32| i32::from(v as u16 as i16);
            let hi = |v: u32| i32::from((v >> 16) as u16 as i16);
            for (i, (a, wg)) in acc
                .chunks_exact_mut(4)
                .zip(wide.chunks_exact(DW_GROUP))
                .enumerate()
            {
                let mut s = [0i32; 4];
                for (t, tap) in taps.iter().enumerate() {
                    let x = word(tap.get(c0 + 4 * i..).unwrap_or(&[]));
                    let (xe, xo) = (sxtb16(x), sxtb16_ror8(x));
                    let (w0, w1) = (word_at(wg, 8 * t), word_at(wg, 8 * t + 4));
                    s[0] = s[0].wrapping_add(lo(xe) * lo(w0));
                    s[2] = s[2].wrapping_add(hi(xe) * hi(w0));
                    s[1] = s[1].wrapping_add(lo(xo) * lo(w1));
                    s[3] = s[3].wrapping_add(hi(xo) * hi(w1));
                }
                a.copy_from_slice(&s);
            }
        }

        /// `SMLAD`.
        #[inline(always)]
        pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
            let ((a0, a1), (b0, b1)) = (lanes(a), lanes(b));
            acc.wrapping_add(i32::from(a0) * i32::from(b0))
                .wrapping_add(i32::from(a1) * i32::from(b1))
        }
    }
}

use ops::{smlad, sxtab16, sxtab16_ror8, sxtb16, sxtb16_ror8};

/// Bytes of one group of four values in a single column (two words).
pub(crate) const GROUP: usize = 8;

/// Bytes of one group of four values in a pair of interleaved columns.
pub(crate) const PAIR: usize = 2 * GROUP;

/// Bytes of a single column of `k` values (also its tail: `2 * (k % 4)` bytes after the
/// `k / 4` groups).
pub(crate) const fn col_bytes(k: usize) -> usize {
    k.saturating_mul(2)
}

/// The little-endian word at byte `i` of `b` (0 past the end).
#[inline(always)]
fn word_at(b: &[u8], i: usize) -> u32 {
    b.get(i..)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |a| u32::from_le_bytes(*a))
}

/// The first little-endian word of `b` (0 if shorter).
#[inline(always)]
fn word(b: &[u8]) -> u32 {
    b.first_chunk::<4>().map_or(0, |a| u32::from_le_bytes(*a))
}

/// Bytes of one group of four channels of widened depthwise 3x3 weights: per tap, the
/// words `(w[c], w[c + 2])` and `(w[c + 1], w[c + 3])` as 16-bit lanes.
pub(crate) const DW_GROUP: usize = 72;

/// Widens the 3x3 depthwise filter `w` (`[1, 3, 3, c]`, int8) into [`DW_GROUP`]-byte
/// groups for channels `4i..4i + 4`, as many groups as `wide` holds (`4i + 4 <= c`).
pub(crate) fn widen_dw3x3(w: &[u8], c: usize, wide: &mut [u8]) {
    for (i, g) in wide.chunks_exact_mut(DW_GROUP).enumerate() {
        for (t, d) in g.chunks_exact_mut(8).enumerate() {
            let v = word(w.get(t * c + 4 * i..).unwrap_or(&[]));
            let (e, o) = d.split_at_mut(4);
            e.copy_from_slice(&sxtb16(v).to_le_bytes());
            o.copy_from_slice(&sxtb16_ror8(v).to_le_bytes());
        }
    }
}

/// Which column of the scratch layout a widening writes: a single column ([`GROUP`]
/// bytes per group) or lane A or B of an interleaved pair ([`PAIR`] bytes per group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Single,
    A,
    B,
}

impl Lane {
    /// Bytes per group in this lane's layout.
    pub(crate) const fn pitch(self) -> usize {
        match self {
            Lane::Single => GROUP,
            Lane::A | Lane::B => PAIR,
        }
    }
}

/// Widens the int8 values `src` (plus `off`, wrapping in 16 bits) into `lane` of the
/// groups region `groups` (which starts at a group boundary) and, for the
/// `src.len() % 4` trailing values, into `tail` as `i16`s.
///
/// The size-class build (`cfg(edgeflow_size)`) runs one loop for the three lanes, on
/// indices ([`widen_indexed`]): at opt-level "s" the three monomorphized iterator loops
/// kept their `Zip` state in memory and called `Zip::new` (128 + 40 B of stack under the
/// convolution's pixel loop; BENCHMARKS.md, footprint (j2)).
#[inline(never)]
pub(crate) fn widen(src: &[u8], off: i16, groups: &mut [u8], lane: Lane, tail: &mut [u8]) {
    if cfg!(edgeflow_size) {
        let o = if lane == Lane::B { GROUP } else { 0 };
        return widen_indexed(src, off, groups, lane.pitch(), o, tail);
    }
    match lane {
        Lane::Single => widen_in::<GROUP, 0>(src, off, groups, tail),
        Lane::A => widen_in::<PAIR, 0>(src, off, groups, tail),
        Lane::B => widen_in::<PAIR, GROUP>(src, off, groups, tail),
    }
}

/// [`widen`] for groups of `P` bytes, the lane at byte `O` of each.
#[inline(always)]
fn widen_in<const P: usize, const O: usize>(
    src: &[u8],
    off: i16,
    groups: &mut [u8],
    tail: &mut [u8],
) {
    let offs = u32::from(off as u16) * 0x1_0001;
    let n4 = src.len() / 4;
    let (head, rest) = src.split_at(4 * n4);
    for (s, d) in head.chunks_exact(4).zip(groups.chunks_exact_mut(P)) {
        let v = word(s);
        if let Some(d) = d.get_mut(O..O + GROUP) {
            let (e, o) = d.split_at_mut(4);
            e.copy_from_slice(&sxtab16(offs, v).to_le_bytes());
            o.copy_from_slice(&sxtab16_ror8(offs, v).to_le_bytes());
        }
    }
    for (&s, d) in rest.iter().zip(tail.chunks_exact_mut(2)) {
        d.copy_from_slice(&i16::from(s as i8).wrapping_add(off).to_le_bytes());
    }
}

/// [`widen_in`] with the group pitch `p` and lane offset `o` as values, on indices (the
/// size-class build's [`widen`]; the same bytes written).
#[inline(always)]
fn widen_indexed(src: &[u8], off: i16, groups: &mut [u8], p: usize, o: usize, tail: &mut [u8]) {
    let offs = u32::from(off as u16) * 0x1_0001;
    let n4 = src.len() / 4;
    // As many groups as `widen_in`'s zip of whole `p`-byte chunks covers.
    let n = n4.min(groups.len() / p.max(1));
    let head = src.get(..4 * n).unwrap_or_default();
    for (i, s) in head.chunks_exact(4).enumerate() {
        let d = i * p + o;
        if let Some(d) = groups.get_mut(d..d + GROUP) {
            let v = word(s);
            let (e, od) = d.split_at_mut(4);
            e.copy_from_slice(&sxtab16(offs, v).to_le_bytes());
            od.copy_from_slice(&sxtab16_ror8(offs, v).to_le_bytes());
        }
    }
    let mut j = 4 * n4;
    let mut t = 0;
    while let (Some(&s), Some(d)) = (src.get(j), tail.get_mut(t..t + 2)) {
        d.copy_from_slice(&i16::from(s as i8).wrapping_add(off).to_le_bytes());
        j += 1;
        t += 2;
    }
}

/// Sets every value of `lane` in the groups region `groups` to `v`.
#[inline(never)]
pub(crate) fn fill(groups: &mut [u8], lane: Lane, v: i16) {
    let word = (u32::from(v as u16) * 0x1_0001).to_le_bytes();
    let o = if lane == Lane::B { GROUP } else { 0 };
    for d in groups.chunks_exact_mut(lane.pitch()) {
        if let Some(d) = d.get_mut(o..o + GROUP) {
            let (e, od) = d.split_at_mut(4);
            e.copy_from_slice(&word);
            od.copy_from_slice(&word);
        }
    }
}

/// `acc + x * w` for an `i16` column tail value and an int8 weight.
#[inline(always)]
fn mac_tail(acc: i32, x: &[u8], w: u8) -> i32 {
    match *x {
        [a, b] => acc.wrapping_add(i32::from(i16::from_le_bytes([a, b])) * i32::from(w as i8)),
        _ => acc,
    }
}

/// One column (`k / 4` [`GROUP`]-byte groups, then its tail) times two weight rows:
/// `[x.w0, x.w1]`.
#[inline(always)]
pub(crate) fn dot_1x2(col: &[u8], w0: &[u8], w1: &[u8], k: usize) -> [i32; 2] {
    let n4 = k / 4;
    let (g, t) = col.split_at(col.len().min(n4 * GROUP));
    let acc = ops::dot_1x2_groups(g, w0, w1, n4);
    // The size-class build calls the tail only when there is one (a call, not a loop).
    if cfg!(edgeflow_size) && t.is_empty() {
        return acc;
    }
    tail_1x2(acc, t, w0, w1, n4)
}

/// [`dot_1x2`]'s tail: `acc` plus the tail values `t` times bytes `4 * n4..` of `w0` and
/// `w1`. Inlined on the speed build; on the size-class build (`cfg(edgeflow_size)`) a
/// function of its own, so its loop state is not in the frame of `block_1`
/// (BENCHMARKS.md, footprint (j2)).
#[cfg_attr(edgeflow_size, inline(never))]
#[cfg_attr(not(edgeflow_size), inline(always))]
fn tail_1x2([mut a0, mut a1]: [i32; 2], t: &[u8], w0: &[u8], w1: &[u8], n4: usize) -> [i32; 2] {
    let (p, q) = (
        w0.get(4 * n4..).unwrap_or(&[]),
        w1.get(4 * n4..).unwrap_or(&[]),
    );
    for ((x, &p), &q) in t.chunks_exact(2).zip(p).zip(q) {
        a0 = mac_tail(a0, x, p);
        a1 = mac_tail(a1, x, q);
    }
    [a0, a1]
}

/// [`dot_1x1`] for the odd last row of [`block_1`] and [`fc_block`]: inlined on the speed
/// build, a function of its own on the size-class build (see [`tail_1x2`]).
#[cfg_attr(edgeflow_size, inline(never))]
#[cfg_attr(not(edgeflow_size), inline(always))]
fn dot_1x1_last(col: &[u8], w: &[u8], k: usize) -> i32 {
    dot_1x1(col, w, k)
}

/// One column times one weight row.
#[inline(always)]
pub(crate) fn dot_1x1(col: &[u8], w: &[u8], k: usize) -> i32 {
    let n4 = k / 4;
    let (g, t) = col.split_at(col.len().min(n4 * GROUP));
    let mut a = 0i32;
    for (c, p) in g.chunks_exact(GROUP).zip(w.chunks_exact(4)) {
        let p = word(p);
        a = smlad(word(c), sxtb16(p), a);
        a = smlad(word_at(c, 4), sxtb16_ror8(p), a);
    }
    for (x, &p) in t.chunks_exact(2).zip(w.get(4 * n4..).unwrap_or(&[])) {
        a = mac_tail(a, x, p);
    }
    a
}

/// Two interleaved columns (`k` values each) against every `k`-byte int8 row of `w`:
/// `acc_a[j]` and `acc_b[j]` for row `j` (as many rows as all three hold). `cols` holds
/// `k / 4` [`PAIR`]-byte groups, then column A's tail, then column B's tail
/// (`2 * (k % 4)` bytes each). 2x2 blocking: two rows per pass over the columns.
#[inline(never)]
pub(crate) fn block_2(cols: &[u8], w: &[u8], k: usize, acc_a: &mut [i32], acc_b: &mut [i32]) {
    if k == 0 {
        acc_a.fill(0);
        acc_b.fill(0);
        return;
    }
    let (n4, r) = (k / 4, k % 4);
    let (g, t) = cols.split_at(cols.len().min(n4 * PAIR));
    ops::rows_2(g, w, k, n4, acc_a, acc_b);
    if r == 0 {
        return;
    }
    #[cfg(edgeflow_size)]
    tails_2(t, w, k, acc_a, acc_b);
    #[cfg(not(edgeflow_size))]
    {
        let (ta, tb) = t.split_at(t.len().min(2 * r));
        for ((row, a), b) in w.chunks_exact(k).zip(acc_a).zip(acc_b) {
            let p = row.get(4 * n4..).unwrap_or(&[]);
            for ((xa, xb), &p) in ta.chunks_exact(2).zip(tb.chunks_exact(2)).zip(p) {
                *a = mac_tail(*a, xa, p);
                *b = mac_tail(*b, xb, p);
            }
        }
    }
}

/// [`block_2`]'s column tails on the size-class build (`cfg(edgeflow_size)`; the speed
/// build keeps them inline in `block_2`, as zipped iterators): `k % 4` values per column,
/// `t` holding column A's then column B's, times the last `k % 4` bytes of each row, added
/// to `acc_a` and `acc_b`. A function of its own on indices, so its loop state is not in
/// `block_2`'s frame (at opt-level "s" the zipped iterators kept it in memory, a 168 B
/// frame; BENCHMARKS.md, footprint (j2)).
#[cfg(edgeflow_size)]
#[inline(never)]
fn tails_2(t: &[u8], w: &[u8], k: usize, acc_a: &mut [i32], acc_b: &mut [i32]) {
    let (n4, r) = (k / 4, k % 4);
    let (ta, tb) = t.split_at(t.len().min(2 * r));
    let rows = (w.len() / k.max(1)).min(acc_a.len()).min(acc_b.len());
    for j in 0..rows {
        let (Some(a), Some(b)) = (acc_a.get_mut(j), acc_b.get_mut(j)) else {
            return;
        };
        let p = w.get(j * k + 4 * n4..(j + 1) * k).unwrap_or_default();
        let mut m = 0;
        while let (Some(xa), Some(xb), Some(&p)) =
            (ta.get(2 * m..2 * m + 2), tb.get(2 * m..2 * m + 2), p.get(m))
        {
            *a = mac_tail(*a, xa, p);
            *b = mac_tail(*b, xb, p);
            m += 1;
        }
    }
}

/// FULLY_CONNECTED segment: adds to `acc[j]` the dot product of the single column `col`
/// (`n` values: `n / 4` [`GROUP`]s, then the tail) with bytes `s0..s0 + n` of row `j`
/// of `w` (rows `stride` bytes apart; as many rows as `acc` holds). Row pairs on
/// [`ops::fc_pairs`] over the groups, then the tail values and an odd last row.
#[inline(never)]
pub(crate) fn fc_block(col: &[u8], w: &[u8], stride: usize, s0: usize, n: usize, acc: &mut [i32]) {
    let n4 = n / 4;
    let (g, t) = col.split_at(col.len().min(n4 * GROUP));
    let w = w.get(s0..).unwrap_or(&[]);
    let rows = acc.len();
    let even = rows & !1;
    let (ae, ao) = acc.split_at_mut(even);
    ops::fc_pairs(g, w, stride, n4, ae);
    if !n.is_multiple_of(4) {
        #[cfg(edgeflow_size)]
        fc_tails(t, w, stride, n4, ae);
        #[cfg(not(edgeflow_size))]
        for (j, a) in ae.iter_mut().enumerate() {
            let p = w.get(j * stride + 4 * n4..).unwrap_or(&[]);
            for (x, &p) in t.chunks_exact(2).zip(p) {
                *a = mac_tail(*a, x, p);
            }
        }
    }
    if let [a] = ao {
        let p = w.get(even * stride..).unwrap_or(&[]);
        *a = a.wrapping_add(dot_1x1_last(col, p.get(..n).unwrap_or(p), n));
    }
}

/// [`fc_block`]'s tail on the size-class build (`cfg(edgeflow_size)`; the speed build
/// keeps it inline): adds the tail values `t` times bytes `4 * n4..` of row `j` (rows
/// `stride` bytes apart) to `acc[j]`. A function of its own, so its loop state is not in
/// `fc_block`'s frame (BENCHMARKS.md, footprint (j2)).
#[cfg(edgeflow_size)]
#[inline(never)]
fn fc_tails(t: &[u8], w: &[u8], stride: usize, n4: usize, acc: &mut [i32]) {
    for (j, a) in acc.iter_mut().enumerate() {
        let p = w.get(j * stride + 4 * n4..).unwrap_or(&[]);
        for (x, &p) in t.chunks_exact(2).zip(p) {
            *a = mac_tail(*a, x, p);
        }
    }
}

/// One column against every `k`-byte row of `w`: `acc[j]` for row `j`, two rows per pass
/// ([`dot_1x2`]).
#[inline(never)]
pub(crate) fn block_1(col: &[u8], w: &[u8], k: usize, acc: &mut [i32]) {
    if k == 0 {
        acc.fill(0);
        return;
    }
    let mut wp = w.chunks_exact(2 * k);
    let mut ap = acc.chunks_exact_mut(2);
    for (wpair, a) in (&mut wp).zip(&mut ap) {
        let (w0, w1) = wpair.split_at(k);
        if let [x0, x1] = a {
            [*x0, *x1] = dot_1x2(col, w0, w1, k);
        }
    }
    if let [x] = ap.into_remainder() {
        *x = dot_1x1_last(col, wp.remainder(), k);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::kernels::generic::dot::{dot1_i16, dot2_i16};
    use crate::kernels::testutil::{specialised_matches_portable, Rng};

    #[test]
    fn portable_ops_match_their_definitions() {
        let mut r = Rng::new(11);
        for _ in 0..20_000 {
            let (a, x) = (r.u32(), r.u32());
            let b = x.to_le_bytes().map(|v| i16::from(v as i8));
            let d = sxtb16(x);
            assert_eq!((d as u16 as i16, (d >> 16) as u16 as i16), (b[0], b[2]));
            let d = sxtb16_ror8(x);
            assert_eq!((d as u16 as i16, (d >> 16) as u16 as i16), (b[1], b[3]));
            let d = sxtab16(a, x);
            assert_eq!(
                (d as u16 as i16, (d >> 16) as u16 as i16),
                (
                    (a as u16 as i16).wrapping_add(b[0]),
                    ((a >> 16) as u16 as i16).wrapping_add(b[2])
                )
            );
            let acc = r.u32() as i32;
            let want = (i64::from(acc)
                + i64::from(a as u16 as i16) * i64::from(x as u16 as i16)
                + i64::from((a >> 16) as u16 as i16) * i64::from((x >> 16) as u16 as i16))
                as i32;
            assert_eq!(smlad(a, x, acc), want);
        }
    }

    /// Generated operands: `k` int8 inputs of two columns with an input offset, widened
    /// into the packed layouts (single columns and an interleaved pair), their plain
    /// `i16` values for the portable kernels, and `rows` weight rows.
    #[derive(Debug)]
    struct Operands {
        k: usize,
        rows: usize,
        /// Plain little-endian `i16` values (input + offset) of columns A and B.
        ya: Vec<u8>,
        yb: Vec<u8>,
        /// Column A alone, and columns A and B interleaved, in the packed layout.
        col: Vec<u8>,
        cols: Vec<u8>,
        /// `rows` rows of `k` int8 weights.
        w: Vec<u8>,
    }

    fn operands(r: &mut Rng) -> Option<Operands> {
        let k = if r.bool() {
            r.usize(0, 40)
        } else {
            r.usize(0, 600)
        };
        let rows = r.usize(1, 7);
        let off = r.range(-255, 255) as i16;
        let (xa, xb) = (r.bytes(k), r.bytes(k));
        let plain = |x: &[u8]| -> Vec<u8> {
            x.iter()
                .flat_map(|&v| i16::from(v as i8).wrapping_add(off).to_le_bytes())
                .collect()
        };
        let mut col = std::vec![0u8; col_bytes(k)];
        let (g, t) = col.split_at_mut(k / 4 * GROUP);
        widen(&xa, off, g, Lane::Single, t);
        let mut cols = std::vec![0u8; 2 * col_bytes(k)];
        let (g, t) = cols.split_at_mut(k / 4 * PAIR);
        let (ta, tb) = t.split_at_mut(2 * (k % 4));
        widen(&xa, off, g, Lane::A, ta);
        widen(&xb, off, g, Lane::B, tb);
        Some(Operands {
            k,
            rows,
            ya: plain(&xa),
            yb: plain(&xb),
            col,
            cols,
            w: r.bytes(rows * k),
        })
    }

    /// The portable dot product of `y` with each row.
    fn rows_portable(y: &[u8], o: &Operands) -> Vec<i32> {
        (0..o.rows)
            .map(|j| dot1_i16(y, &o.w[j * o.k..(j + 1) * o.k]))
            .collect()
    }

    specialised_matches_portable!(
        /// `dot_1x1` and `dot_1x2` (one packed column, one or two rows).
        dot_1x1_and_1x2_match_portable {
            seed: 12,
            cases: 3000,
            generate: operands,
            portable: |o: &Operands| {
                let (w0, w1) = (&o.w[..o.k], o.w.get(o.k..2 * o.k).unwrap_or(&[]));
                let single = dot1_i16(&o.ya, w0);
                let pair = if o.rows > 1 {
                    let (d0, d1) = dot2_i16(&o.ya, w0, w1);
                    [d0, d1]
                } else {
                    [single; 2]
                };
                (single, pair)
            },
            specialised: |o: &Operands| {
                let (w0, w1) = (&o.w[..o.k], o.w.get(o.k..2 * o.k).unwrap_or(&[]));
                let single = dot_1x1(&o.col, w0, o.k);
                let pair = if o.rows > 1 { dot_1x2(&o.col, w0, w1, o.k) } else { [single; 2] };
                (single, pair)
            },
        }
    );

    specialised_matches_portable!(
        /// `block_1` (CONV_2D, one column against every row, two rows per pass).
        block_1_matches_portable {
            seed: 13,
            cases: 2000,
            generate: operands,
            portable: |o: &Operands| rows_portable(&o.ya, o),
            specialised: |o: &Operands| {
                let mut acc = std::vec![7; o.rows];
                block_1(&o.col, &o.w, o.k, &mut acc);
                acc
            },
        }
    );

    specialised_matches_portable!(
        /// `block_2` (CONV_2D, 2x2: two interleaved columns, two rows per pass).
        block_2_matches_portable {
            seed: 14,
            cases: 2000,
            generate: operands,
            portable: |o: &Operands| (rows_portable(&o.ya, o), rows_portable(&o.yb, o)),
            specialised: |o: &Operands| {
                let (mut a, mut b) = (std::vec![7; o.rows], std::vec![7; o.rows]);
                block_2(&o.cols, &o.w, o.k, &mut a, &mut b);
                (a, b)
            },
        }
    );

    specialised_matches_portable!(
        /// `fc_block` (FULLY_CONNECTED, a segment of a column against row pairs),
        /// accumulating onto non-zero sums.
        fc_block_matches_portable {
            seed: 15,
            cases: 2000,
            generate: operands,
            portable: |o: &Operands| {
                rows_portable(&o.ya, o)
                    .into_iter()
                    .map(|d| d.wrapping_add(7))
                    .collect::<Vec<i32>>()
            },
            specialised: |o: &Operands| {
                let mut acc = std::vec![7; o.rows];
                fc_block(&o.col, &o.w, o.k, 0, o.k, &mut acc);
                acc
            },
        }
    );
}
