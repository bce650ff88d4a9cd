//! Packed 16-bit inner kernels for the Arm DSP extension (Cortex-M4/M7, `thumbv7em`):
//! `SMLAD` (two 16x16 multiply-accumulates per instruction) and `SXTB16` (sign-extends
//! bytes 0 and 2, or 1 and 3 after a rotation, of a word into two 16-bit lanes).
//!
//! The int8 CONV_2D and FULLY_CONNECTED kernels use this module on targets with the DSP
//! extension (build-script cfg `edgeflow_arm_dsp`); elsewhere they keep their portable
//! inner loops, which stay the reference. The module is also compiled for host tests,
//! where the three instructions have portable twins ([`ops`]), so the blocking and data
//! layout below are tested against the portable kernels on the host and the instructions
//! themselves by the QEMU conformance run (device output must equal host output).
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
        /// for 16 multiply-accumulates. Falls back to the portable loop if the slices are
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
                return super::portable::rows_2(g, w, k, n4, acc_a, acc_b);
            }
            let mut wp = w.chunks_exact(2 * k);
            let mut ap = acc_a.chunks_exact_mut(2);
            let mut bp = acc_b.chunks_exact_mut(2);
            for ((wpair, a), b) in (&mut wp).zip(&mut ap).zip(&mut bp) {
                let (w0, w1) = wpair.split_at(k);
                let (mut a0, mut a1, mut b0, mut b1) = (0i32, 0i32, 0i32, 0i32);
                // SAFETY: the loop runs `n4 >= 1` times; iteration `i` reads bytes
                // `16i..16i + 16` of `g` (word aligned: `g` is, and 16 is a multiple of
                // 4) and `4i..4i + 4` of `w0` and `w1`, all inside the slices (`fits`:
                // `g` holds `n4` groups, `w0` and `w1` `k >= 4 * n4` bytes). Unaligned
                // single-word `LDR`s of the weights are allowed on Armv7E-M. It writes
                // no memory, uses no stack, and clobbers only the flags and the named
                // registers.
                unsafe {
                    asm!(
                        "2:",
                        "ldr    {t0}, [{w0}], #4",
                        "ldrd   {x0}, {x1}, [{c}]",
                        "sxtb16 {t1}, {t0}",
                        "sxtb16 {t0}, {t0}, ror #8",
                        "smlad  {a0}, {x0}, {t1}, {a0}",
                        "smlad  {a0}, {x1}, {t0}, {a0}",
                        "ldrd   {x0}, {x1}, [{c}, #8]",
                        "smlad  {b0}, {x0}, {t1}, {b0}",
                        "smlad  {b0}, {x1}, {t0}, {b0}",
                        "ldr    {t0}, [{w1}], #4",
                        "sxtb16 {t1}, {t0}",
                        "sxtb16 {t0}, {t0}, ror #8",
                        "smlad  {b1}, {x0}, {t1}, {b1}",
                        "smlad  {b1}, {x1}, {t0}, {b1}",
                        "ldrd   {x0}, {x1}, [{c}], #16",
                        "smlad  {a1}, {x0}, {t1}, {a1}",
                        "smlad  {a1}, {x1}, {t0}, {a1}",
                        "subs   {n}, {n}, #1",
                        "bne    2b",
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
                [*x, *y] = super::portable::groups_2x1(g, wp.remainder(), n4);
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
#[inline(never)]
pub(crate) fn widen(src: &[u8], off: i16, groups: &mut [u8], lane: Lane, tail: &mut [u8]) {
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
    let (mut a0, mut a1) = (0i32, 0i32);
    for ((c, p), q) in g
        .chunks_exact(GROUP)
        .zip(w0.chunks_exact(4))
        .zip(w1.chunks_exact(4))
    {
        let (p, q) = (word(p), word(q));
        let x = word(c);
        a0 = smlad(x, sxtb16(p), a0);
        a1 = smlad(x, sxtb16(q), a1);
        let x = word_at(c, 4);
        a0 = smlad(x, sxtb16_ror8(p), a0);
        a1 = smlad(x, sxtb16_ror8(q), a1);
    }
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
    let (ta, tb) = t.split_at(t.len().min(2 * r));
    for ((row, a), b) in w.chunks_exact(k).zip(acc_a).zip(acc_b) {
        let p = row.get(4 * n4..).unwrap_or(&[]);
        for ((xa, xb), &p) in ta.chunks_exact(2).zip(tb.chunks_exact(2)).zip(p) {
            *a = mac_tail(*a, xa, p);
            *b = mac_tail(*b, xb, p);
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
        *x = dot_1x1(col, wp.remainder(), k);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::kernels::conv::testutil::Rng;

    fn plain_dot(x: &[i16], w: &[u8]) -> i32 {
        x.iter().zip(w).fold(0i32, |a, (&x, &w)| {
            a.wrapping_add(i32::from(x) * i32::from(w as i8))
        })
    }

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

    #[test]
    fn kernels_match_plain_dot_products() {
        let mut r = Rng::new(12);
        for k in 0..40 {
            let off = r.range(-255, 255) as i16;
            let (xa, xb) = (r.bytes(k), r.bytes(k));
            let (w0, w1) = (r.bytes(k), r.bytes(k));
            let wide = |x: &[u8]| -> Vec<i16> {
                x.iter()
                    .map(|&v| i16::from(v as i8).wrapping_add(off))
                    .collect()
            };
            let (ya, yb) = (wide(&xa), wide(&xb));
            // Single columns.
            let mut col = std::vec![0u8; col_bytes(k)];
            let (g, t) = col.split_at_mut(k / 4 * GROUP);
            widen(&xa, off, g, Lane::Single, t);
            assert_eq!(dot_1x1(&col, &w0, k), plain_dot(&ya, &w0));
            assert_eq!(
                dot_1x2(&col, &w0, &w1, k),
                [plain_dot(&ya, &w0), plain_dot(&ya, &w1)]
            );
            // Interleaved pairs against 1..=5 rows (row pairs and an odd row).
            let mut cols = std::vec![0u8; 2 * col_bytes(k)];
            let (g, t) = cols.split_at_mut(k / 4 * PAIR);
            let (ta, tb) = t.split_at_mut(2 * (k % 4));
            widen(&xa, off, g, Lane::A, ta);
            widen(&xb, off, g, Lane::B, tb);
            for rows in 1..=5 {
                let w = r.bytes(rows * k);
                let (mut acc_a, mut acc_b) = (std::vec![7; rows], std::vec![7; rows]);
                block_2(&cols, &w, k, &mut acc_a, &mut acc_b);
                for j in 0..rows {
                    let row = &w[j * k..(j + 1) * k];
                    assert_eq!(acc_a[j], plain_dot(&ya, row), "k {k} rows {rows} j {j}");
                    assert_eq!(acc_b[j], plain_dot(&yb, row), "k {k} rows {rows} j {j}");
                }
            }
        }
    }
}
