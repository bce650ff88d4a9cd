//! Host-only packed weights (`std`): the weights of CONV_2D and FULLY_CONNECTED laid out
//! once per model so that one vector holds eight output channels, as XNNPACK does when a
//! delegate is created.
//!
//! The device path never sees this module: the microcontroller run-time reads weights in
//! place from flash and its arena plan is unchanged. On a host, [`crate::PackedModel`]
//! owns one [`Gemm`] per weighted op (outside the arena) and
//! [`crate::Runtime::invoke_packed`] runs those ops here.
//!
//! Arithmetic (why the result is bit-exact with the portable kernels): each output is
//! `bias + sum((x + off) * w)` in wrapping int32, and addition modulo 2^32 is associative
//! and commutative. With [`Packing::Vnni`] the rows are stored as `x + 128` (unsigned,
//! `x XOR 0x80`) and the kernel computes `S = sum((x + 128) * w)`; then
//! `sum((x + off) * w) = S + (off - 128) * sum(w)`, so the per-channel constant
//! `fold = bias + (off - 128) * sum(w)` is computed once at packing time. With
//! [`Packing::Avx2`] the kernel computes `sum(x * w)` and `fold = bias + off * sum(w)`.
//! Taps past `k` (rounding `k` up to a multiple of 4) have zero weights and contribute 0.
//! The requantization is the same [`OutQ`] epilogue the unpacked kernels use.

// Without `std` the module is compiled for its tests only.
#![cfg_attr(not(feature = "std"), allow(dead_code))]

extern crate std;
use std::vec::Vec;

use edgeflow_format::graph::{Clamp, Requant};

use super::arch::Isa;
use super::epilogue::OutQ;
use super::generic::dot;
use super::generic::elem::le_i32;
use super::generic::requant::{requant_soa_portable, Soa};

#[cfg(target_arch = "x86_64")]
pub(crate) use super::arch::x86_64::Packing;

#[cfg(target_arch = "aarch64")]
pub(crate) use super::arch::aarch64::Packing;

/// No packed layout off x86_64 and aarch64.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packing {}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
impl Packing {
    pub(crate) fn detect() -> Option<Packing> {
        None
    }
    pub(crate) fn unsigned_rows(self) -> bool {
        match self {}
    }
    pub(crate) fn piece(self, _b: usize, _g: usize, _k4: usize) -> usize {
        match self {}
    }
    pub(crate) fn pieces(self, _blocks: usize, _k4: usize) -> Option<usize> {
        match self {}
    }
}

/// Output channels per packed block (one 256-bit vector of `i32` lanes).
const BLOCK: usize = 8;
/// Blocks computed per kernel call (32 channels of stack accumulators).
const CHUNK: usize = 4;
/// Rows (output pixels, or FULLY_CONNECTED batch rows) handed to [`Gemm::rows`] at a
/// time: [`WIDE`] per kernel call on AVX-512 VNNI, else two calls of [`NARROW`].
pub(crate) const TILE: usize = 8;
/// Rows per kernel call on AVX-512 VNNI: eight rows keep eight (16 channels) or sixteen
/// (32 channels) independent `VPDPBUSD` accumulation chains in flight, enough to hide
/// the instruction's latency (four rows of 16 channels are only four chains).
const WIDE: usize = 8;
/// Rows per kernel call on the 256-bit and NEON kernels (their 16 vector registers hold
/// the accumulators of four rows).
const NARROW: usize = 4;

/// Whether `p`'s kernel takes [`WIDE`] rows per call (x86_64 AVX-512 VNNI, 32 vector
/// registers).
fn wide(p: Packing) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        matches!(p, Packing::Avx512Vnni)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
        false
    }
}

/// Where the windows of a convolution's output pixels are in its input, for
/// [`Gemm::grid`]: output pixel `p` is image `p / (rows * cols)`, row `p / cols % rows`,
/// column `p % cols`; its window is `taps` pieces of `s4` groups of 4 bytes, piece `t`
/// starting at byte `img * img_step + row * row_step + col * col_step + t * tap_step`
/// (all steps in bytes; the pieces, in order, are the window's `k` taps rounded up to
/// a multiple of 4, bytes past `k` meeting zero weights).
#[derive(Clone, Copy, Debug)]
#[cfg(target_arch = "aarch64")] // aarch64's grid kernel only
pub(crate) struct PixelGrid {
    /// Output rows per image.
    pub(crate) rows: usize,
    /// Output columns per row.
    pub(crate) cols: usize,
    pub(crate) img_step: usize,
    pub(crate) row_step: usize,
    pub(crate) col_step: usize,
    /// Pieces per window (filter rows read in place).
    pub(crate) taps: usize,
    pub(crate) tap_step: usize,
    /// Groups of 4 bytes per piece.
    pub(crate) s4: usize,
}

/// Zeroed 32-byte pieces whose first byte lies on a 64-byte boundary (a cache line), so
/// that the 512-bit loads of a pair of pieces never span two lines: a `Vec<[u8; 32]>` is
/// only as aligned as the allocator makes it (16 bytes here: 7 of AD's 10 weight buffers
/// started 16, 32 or 48 bytes past a line, and every AVX-512 weight load of those ops
/// crossed a line; BENCHMARKS.md (d), seventh pass: AD and KWS).
#[derive(Debug)]
pub(crate) struct LinePieces {
    /// `32 * n + 63` bytes; the pieces start at `start`.
    buf: Vec<u8>,
    start: usize,
    n: usize,
}

impl LinePieces {
    /// `n` zeroed pieces.
    pub(crate) fn zeroed(n: usize) -> LinePieces {
        let buf = std::vec![0u8; 32 * n + 63];
        // The heap address does not change while `buf` is neither grown nor shrunk.
        let start = (64 - buf.as_ptr() as usize % 64) % 64;
        LinePieces { buf, start, n }
    }

    /// The pieces.
    pub(crate) fn get(&self) -> &[[u8; 32]] {
        let bytes = self.buf.get(self.start..self.start + 32 * self.n);
        bytes.map_or(&[][..], |b| b.as_chunks::<32>().0)
    }

    /// The pieces, to fill.
    pub(crate) fn get_mut(&mut self) -> &mut [[u8; 32]] {
        let bytes = self.buf.get_mut(self.start..self.start + 32 * self.n);
        bytes.map_or(&mut [][..], |b| b.as_chunks_mut::<32>().0)
    }
}

/// One weighted op's packed weights and per-channel constants: `oc` output channels of
/// `k` int8 taps each (the weight matrix `[oc, k]`: OHWI filters flattened, or
/// FULLY_CONNECTED's `[out, in]`).
#[derive(Debug)]
pub(crate) struct Gemm {
    packing: Packing,
    /// The epilogue's instruction family (host SIMD).
    isa: Isa,
    k: usize,
    /// Groups of 4 taps (`k` rounded up).
    k4: usize,
    oc: usize,
    /// `ceil(oc / 8)` blocks of `k4` groups in the layout of [`Packing::piece`], as 32-byte
    /// pieces, the first on a 64-byte boundary ([`LinePieces`]).
    w: LinePieces,
    /// Per channel: the bias plus the input-offset (and, for VNNI, the unsigned-row)
    /// correction.
    fold: Vec<i32>,
    /// The struct-of-arrays epilogue parameters ([`Soa`]: fold, multiplier, shift) when
    /// the single-shift requantization applies ([`OutQ::fast`]).
    soa: Option<Vec<u8>>,
    /// x86_64 with the single-shift requantization: the epilogue constants of each group
    /// of eight channels precomputed (`arch::x86_64::pre8`, rounding constants included).
    pre: Vec<[u8; 32]>,
    /// AVX-512 VNNI with the single-shift requantization and `oc` a multiple of 8: the
    /// epilogue constants per 16 channels for the fused kernel
    /// (`arch::x86_64::gemm_taps_fused`); empty otherwise.
    pre16: Vec<Pre16>,
    /// AVX-512 VNNI with the single-shift requantization and `oc` not a multiple of 8:
    /// [`Gemm::pre16`]'s constants for [`Gemm::gemv_i8`] only, the lanes past `oc` zero
    /// (their results are computed and not stored); empty otherwise. (The small
    /// FULLY_CONNECTED heads: KWS's 12 outputs, IC's 10, VWW's 2.)
    gemv16: Vec<Pre16>,
    /// Output offset and clamp.
    clamp: (i32, i32, i32),
}

impl Gemm {
    /// Packs the `[oc, k]` int8 weights `w` with the optional int32 `bias` and the op's
    /// requantization. `None` when this CPU has no packed kernel or a slice is shorter
    /// than the shapes say (the caller keeps the unpacked kernels then). Whether to pack
    /// at all (`EDGEFLOW_NN_PORTABLE`) is [`crate::PackedModel::new`]'s decision.
    pub(crate) fn new(
        w: &[u8],
        k: usize,
        oc: usize,
        bias: Option<&[u8]>,
        rq: &Requant<'_>,
        clamp: &Clamp,
    ) -> Option<Gemm> {
        if k == 0 || oc == 0 {
            return None;
        }
        let packing = Packing::detect()?;
        // Every packing runs on a host SIMD family; its epilogue is that family's.
        let isa = host_isa(packing);
        if w.len() < oc.checked_mul(k)? || bias.is_some_and(|b| b.len() < 4 * oc) {
            return None;
        }
        let k4 = k.div_ceil(4);
        let blocks = oc.div_ceil(BLOCK);
        let pieces = packing.pieces(blocks, k4)?;
        let mut packed = LinePieces::zeroed(pieces);
        let flat = packed.get_mut().as_flattened_mut();
        for (c, row) in w.chunks_exact(k).take(oc).enumerate() {
            let (b, lane) = (c / BLOCK, c % BLOCK);
            for (t, &v) in row.iter().enumerate() {
                let (g, j) = (t / 4, t % 4);
                let base = 32 * packing.piece(b, g, k4);
                let (at, wide) = w_at(wformat(packing), lane, j);
                let at = base + at;
                if wide {
                    flat[at..at + 2].copy_from_slice(&i16::from(v as i8).to_le_bytes());
                } else {
                    flat[at] = v;
                }
            }
        }
        let off = rq.input_offset;
        let corr = if is_vnni(packing) { 128 } else { 0 };
        let fold: Vec<i32> = w
            .chunks_exact(k)
            .take(oc)
            .enumerate()
            .map(|(c, row)| {
                let b = bias.map_or(0, |b| le_i32(b, c));
                b.wrapping_add(off.wrapping_sub(corr).wrapping_mul(dot::sum(row)))
            })
            .collect();
        let q = OutQ::new(rq, clamp);
        let soa = q.fast.then(|| {
            let mut area = std::vec![0u8; 12 * oc];
            q.write_soa(&mut area, oc, 0, |j| fold.get(j).copied().unwrap_or(0));
            area
        });
        let pre = soa
            .as_deref()
            .map_or_else(Vec::new, |area| pre_consts(area, oc, false));
        let gemv16: Vec<Pre16> = match soa.as_deref() {
            Some(area) if wide(packing) && !oc.is_multiple_of(BLOCK) => {
                let padded = pre_consts(area, oc, true);
                (0..oc.div_ceil(16)).map(|q| pre16(&padded, q)).collect()
            }
            _ => Vec::new(),
        };
        let pre16 = if wide(packing) && !pre.is_empty() && oc.is_multiple_of(BLOCK) {
            (0..oc.div_ceil(16)).map(|q| pre16(&pre, q)).collect()
        } else {
            Vec::new()
        };
        Some(Gemm {
            packing,
            isa,
            k,
            k4,
            oc,
            w: packed,
            fold,
            soa,
            pre,
            pre16,
            gemv16,
            clamp: (rq.output_offset, clamp.min_q, clamp.max_q),
        })
    }

    /// Taps per output channel.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Output channels.
    pub(crate) fn oc(&self) -> usize {
        self.oc
    }

    /// Bytes of one prepared row ([`Gemm::prep`]): `k` rounded up to 4.
    pub(crate) fn row_bytes(&self) -> usize {
        4 * self.k4
    }

    /// Bytes of packed weights and constants (for reports).
    pub(crate) fn bytes(&self) -> usize {
        32 * (self.w.get().len() + self.pre.len())
            + 64 * PRE8 * (self.pre16.len() + self.gemv16.len())
            + 4 * self.fold.len()
            + self.soa.as_ref().map_or(0, Vec::len)
    }

    /// The byte every input value is XORed with to be in the kernel's form: `0x80` for
    /// VNNI (`x + 128`, unsigned), else 0.
    pub(crate) fn flip(&self) -> u8 {
        if is_vnni(self.packing) {
            0x80
        } else {
            0
        }
    }

    /// Zeroes the bytes of a row from `k` to [`Gemm::row_bytes`] (a row whose first `k`
    /// bytes are already in the kernel's form, [`Gemm::flip`]).
    pub(crate) fn prep_tail(&self, row: &mut [u8]) {
        if let Some(rest) = row.get_mut(self.k..4 * self.k4) {
            rest.fill(0);
        }
    }

    /// Turns a row whose first `k` bytes hold the int8 taps into the kernel's form, in
    /// place: XOR `0x80` for VNNI; the bytes from `k` to [`Gemm::row_bytes`] zeroed.
    pub(crate) fn prep(&self, row: &mut [u8]) {
        let (taps, rest) = row.split_at_mut(self.k.min(row.len()));
        if is_vnni(self.packing) {
            for v in taps {
                *v ^= 0x80;
            }
        }
        rest.fill(0);
    }

    /// `out[p][c] = requant(fold[c] + kernel(rows[p])[c])` for every channel of up to
    /// [`TILE`] prepared rows (each [`Gemm::row_bytes`] long) into output rows of `oc`
    /// bytes. Rows or outputs beyond the shorter of the two lists are not touched.
    pub(crate) fn rows(&self, rows: &[&[u8]], outs: &mut [&mut [u8]], q: &OutQ<'_>) {
        let n = rows.len().min(outs.len()).min(TILE);
        // (aarch64's fused kernel takes the eight rows four at a time itself.)
        if n > NARROW && !wide(self.packing) && !cfg!(target_arch = "aarch64") {
            if let (Some((r0, r1)), Some((o0, o1))) = (
                rows.split_at_checked(NARROW),
                outs.split_at_mut_checked(NARROW),
            ) {
                self.rows(r0, o0, q);
                if let (Some(r1), Some(o1)) = (r1.get(..n - NARROW), o1.get_mut(..n - NARROW)) {
                    self.rows(r1, o1, q);
                }
            }
            return;
        }
        match n {
            1 => self.tile::<1>(rows, outs, q),
            2 => self.tile::<2>(rows, outs, q),
            3 => self.tile::<3>(rows, outs, q),
            4 => self.tile::<4>(rows, outs, q),
            5 => self.tile::<5>(rows, outs, q),
            6 => self.tile::<6>(rows, outs, q),
            7 => self.tile::<7>(rows, outs, q),
            8 => self.tile::<WIDE>(rows, outs, q),
            _ => {}
        }
    }

    fn tile<const NP: usize>(&self, rows: &[&[u8]], outs: &mut [&mut [u8]], q: &OutQ<'_>) {
        let r: [&[[u8; 4]]; NP] =
            core::array::from_fn(|p| rows.get(p).map_or(&[][..], |r| r.as_chunks::<4>().0));
        if NP == 1 && self.gemv(r[0], outs) {
            return;
        }
        // (A single row takes the fused kernel on aarch64; on x86_64 `gemv` above.)
        if (NP > 1 || cfg!(target_arch = "aarch64")) && self.fused::<NP>(&r, 1, self.k4, outs) {
            return;
        }
        self.chunks::<NP>(outs, q, |w, nb, acc| {
            if !kernel::<NP>(self.packing, &r, w, self.k4, nb, acc) {
                tile_portable(self.packing, &r, w, self.k4, nb, acc);
            }
        });
    }

    /// Whether [`Gemm::taps`] runs on a kernel that reads the pieces in place (x86_64
    /// AVX-512 VNNI, aarch64); otherwise the caller should build contiguous rows for
    /// [`Gemm::rows`] (`taps` would copy them).
    pub(crate) fn reads_taps(&self) -> bool {
        wide(self.packing) || cfg!(target_arch = "aarch64")
    }

    /// [`Gemm::rows`] for `n` (at most [`TILE`]) rows each given as `taps` pieces of
    /// `k / taps` bytes (in the kernel's form, [`Gemm::flip`]; `k / taps` a multiple of
    /// 4): `segs[p * taps + t]` is piece `t` of row `p`, as groups of 4 bytes. Used for
    /// convolutions whose taps are read in place from the input (an indirect GEMM).
    /// Writes nothing when the pieces do not match `k` or a slice is too short.
    pub(crate) fn taps(
        &self,
        segs: &[&[[u8; 4]]],
        taps: usize,
        n: usize,
        outs: &mut [&mut [u8]],
        q: &OutQ<'_>,
    ) {
        if taps == 0 || !self.k.is_multiple_of(taps) || !(self.k / taps).is_multiple_of(4) {
            return;
        }
        let s4 = self.k / taps / 4;
        match n.min(outs.len()) {
            1 => self.tile_taps::<1>(segs, taps, s4, outs, q),
            2 => self.tile_taps::<2>(segs, taps, s4, outs, q),
            3 => self.tile_taps::<3>(segs, taps, s4, outs, q),
            4 => self.tile_taps::<4>(segs, taps, s4, outs, q),
            5 => self.tile_taps::<5>(segs, taps, s4, outs, q),
            6 => self.tile_taps::<6>(segs, taps, s4, outs, q),
            7 => self.tile_taps::<7>(segs, taps, s4, outs, q),
            8 => self.tile_taps::<WIDE>(segs, taps, s4, outs, q),
            _ => {}
        }
    }

    fn tile_taps<const NP: usize>(
        &self,
        segs: &[&[[u8; 4]]],
        taps: usize,
        s4: usize,
        outs: &mut [&mut [u8]],
        q: &OutQ<'_>,
    ) {
        if self.fused::<NP>(segs, taps, s4, outs) {
            return;
        }
        // Where the kernel declines: the pieces joined into contiguous rows.
        let mut joined: Option<std::vec::Vec<std::vec::Vec<[u8; 4]>>> = None;
        self.chunks::<NP>(outs, q, |w, nb, acc| {
            if kernel_taps::<NP>(self.packing, segs, taps, s4, w, self.k4, nb, acc) {
                return;
            }
            let rows = joined.get_or_insert_with(|| {
                (0..NP)
                    .map(|p| {
                        let mut r: std::vec::Vec<[u8; 4]> = (0..taps)
                            .flat_map(|t| {
                                let s = segs.get(p * taps + t).copied().unwrap_or(&[]);
                                (0..s4).map(move |g| s.get(g).copied().unwrap_or([0; 4]))
                            })
                            .collect();
                        r.resize(self.k4, [0; 4]);
                        r
                    })
                    .collect()
            });
            let r: [&[[u8; 4]]; NP] =
                core::array::from_fn(|p| rows.get(p).map_or(&[][..], |r| &r[..]));
            tile_portable(self.packing, &r, w, self.k4, nb, acc);
        });
    }

    /// The output pixels `p0..p0 + out.len() / oc` of a convolution whose windows are
    /// all inside the input `x` (in the kernel's form, [`Gemm::flip`]), laid out as
    /// `grid` says, into consecutive `oc`-byte rows of `out`, in one call with the
    /// epilogue fused (`arch::aarch64::gemm_fused_grid`; aarch64 only). `false`, having
    /// written nothing, without the precomputed constants, or when the kernel declines
    /// (the caller then takes the per-tile path).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn grid(&self, x: &[u8], grid: &PixelGrid, p0: usize, out: &mut [u8]) -> bool {
        if self.pre.is_empty() {
            return false;
        }
        let n = out.len() / self.oc;
        super::arch::aarch64::gemm_fused_grid(
            self.packing,
            x,
            grid,
            (p0, n),
            self.w.get(),
            (self.k4, self.oc),
            &self.pre,
            self.clamp,
            out,
        )
    }

    /// `npix` output pixels whose rows are read in place from `x` (in the kernel's form,
    /// [`Gemm::flip`]): pixel `p`'s row is `taps` pieces of `k / taps` bytes, piece `t`
    /// at `base + p * step + t * row_step` (`geo`); pixel `p`'s `oc` outputs go to
    /// `out[p * oc..]`. One call for a whole run of pixels (the strided-run kernel,
    /// `arch::x86_64::gemm_run_fused`, x86_64 AVX-512 VNNI with the single-shift
    /// requantization and `oc` a multiple of 8). Returns `false`, having written
    /// nothing, where that kernel does not apply (the caller then uses [`Gemm::taps`] or
    /// [`Gemm::rows`]) or a read would fall outside `x`.
    pub(crate) fn run(
        &self,
        x: &[u8],
        geo: (usize, usize, usize),
        taps: usize,
        npix: usize,
        out: &mut [u8],
    ) -> bool {
        if self.pre16.is_empty()
            || taps == 0
            || !self.k.is_multiple_of(taps)
            || !(self.k / taps).is_multiple_of(4)
        {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let ts = (taps, self.k / taps / 4);
            super::arch::x86_64::gemm_run_fused(
                self.packing,
                x,
                geo,
                ts,
                npix,
                self.w.get(),
                (self.k4, self.oc),
                &self.pre16,
                self.clamp,
                out,
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, geo, npix, out);
            false
        }
    }

    /// One row against all channels with the epilogue fused
    /// (`arch::x86_64::gemv_fused`); `false` when it does not apply (as [`Gemm::fused`]).
    fn gemv(&self, row: &[[u8; 4]], outs: &mut [&mut [u8]]) -> bool {
        if self.pre16.is_empty() {
            return false;
        }
        let Some(out) = outs.first_mut() else {
            return false;
        };
        #[cfg(target_arch = "x86_64")]
        {
            let row = super::arch::x86_64::GemvRow {
                groups: row,
                tail: None,
                flip: 0,
            };
            super::arch::x86_64::gemv_fused(
                self.packing,
                row,
                self.w.get(),
                (self.k4, self.oc),
                &self.pre16,
                self.clamp,
                out,
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (row, out);
            false
        }
    }

    /// `out[c] = requant(fold[c] + sum_t x[t] * w[c][t])` for one raw int8 row `x` (`k`
    /// bytes, not [`Gemm::prep`]ared: the kernel flips each group as it broadcasts it, and
    /// builds the last, partial group itself) into `out[..oc]`, on the fused matrix-vector
    /// kernel (`arch::x86_64::gemv_fused`); `false` (nothing written) where that kernel
    /// does not apply: not AVX-512 VNNI, neither [`Gemm::pre16`] nor `gemv16` constants
    /// (the latter: an output count not a multiple of 8), `x` not `k` bytes.
    /// FULLY_CONNECTED at batch 1 takes this path without copying its row.
    pub(crate) fn gemv_i8(&self, x: &[u8], out: &mut [u8]) -> bool {
        let pre = if self.pre16.is_empty() {
            &self.gemv16
        } else {
            &self.pre16
        };
        if pre.is_empty() || x.len() != self.k {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let (groups, rest) = x.as_chunks::<4>();
            // Bytes past `k` are 0x80: 0 once flipped, so they add nothing.
            let tail = (!rest.is_empty()).then(|| {
                let mut t = [0x80u8; 4];
                t[..rest.len()].copy_from_slice(rest);
                t
            });
            let row = super::arch::x86_64::GemvRow {
                groups,
                tail,
                flip: u32::from_le_bytes([self.flip(); 4]),
            };
            super::arch::x86_64::gemv_fused(
                self.packing,
                row,
                self.w.get(),
                (self.k4, self.oc),
                pre,
                self.clamp,
                out,
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = out;
            false
        }
    }

    /// `NP` rows given as pieces (as [`Gemm::taps`]) on the kernel with the epilogue
    /// fused, chunk by chunk; `false` when it does not apply (not AVX-512 VNNI, no
    /// [`Gemm::pre16`] constants) or declines, the caller then runs the unfused kernels
    /// (which rewrite every output).
    fn fused<const NP: usize>(
        &self,
        segs: &[&[[u8; 4]]],
        taps: usize,
        s4: usize,
        outs: &mut [&mut [u8]],
    ) -> bool {
        if let Some(done) = arch_fused::<NP>(self, segs, (taps, s4), outs) {
            return done;
        }
        if self.pre16.is_empty() {
            return false;
        }
        let blocks = self.oc.div_ceil(BLOCK);
        for chunk in 0..blocks.div_ceil(CHUNK) {
            let b0 = chunk * CHUNK;
            let nb = CHUNK.min(blocks - b0);
            let w = self
                .w
                .get()
                .get(self.packing.piece(b0, 0, self.k4)..)
                .unwrap_or(&[]);
            let c0 = b0 * BLOCK;
            let n = (self.oc - c0).min(CHUNK * BLOCK);
            let pre = self.pre16.get(c0 / 16..).unwrap_or(&[]);
            let args = (segs, (taps, s4), w, (self.k4, nb), pre, self.clamp);
            if !kernel_fused::<NP>(self.packing, args, outs, (c0, n)) {
                return false;
            }
        }
        true
    }

    /// Runs `kern(w, nb, acc)` for each chunk of up to [`CHUNK`] blocks (`w` from the
    /// chunk's first piece) and requantizes the chunk's channels of each of the `NP`
    /// accumulator rows into `outs`.
    fn chunks<const NP: usize>(
        &self,
        outs: &mut [&mut [u8]],
        q: &OutQ<'_>,
        mut kern: impl FnMut(&[[u8; 32]], usize, &mut [[i32; 32]; NP]),
    ) {
        let blocks = self.oc.div_ceil(BLOCK);
        let mut acc = [[0i32; 32]; NP];
        for chunk in 0..blocks.div_ceil(CHUNK) {
            let b0 = chunk * CHUNK;
            let nb = CHUNK.min(blocks - b0);
            // The chunk's first piece (`b0` is even: an AVX-512 pair starts there).
            let w = self
                .w
                .get()
                .get(self.packing.piece(b0, 0, self.k4)..)
                .unwrap_or(&[]);
            kern(w, nb, &mut acc);
            let c0 = b0 * BLOCK;
            let n = (self.oc - c0).min(CHUNK * BLOCK);
            for (a, o) in acc.iter().zip(outs.iter_mut()) {
                if let (Some(a), Some(o)) = (a.get(..n), o.get_mut(c0..c0 + n)) {
                    self.finish(a, c0, o, q);
                }
            }
        }
    }

    /// The epilogue of channels `c0..c0 + acc.len()`.
    fn finish(&self, acc: &[i32], c0: usize, out: &mut [u8], q: &OutQ<'_>) {
        // Whole groups of eight on the precomputed constants (`c0` is a multiple of 8).
        let done = match self.pre.get(c0 / BLOCK * PRE8..) {
            Some(pre) if c0.is_multiple_of(BLOCK) => requant_pre(acc, pre, self.clamp, out),
            _ => 0,
        };
        let (Some(acc), Some(out)) = (acc.get(done..), out.get_mut(done..)) else {
            return;
        };
        if acc.is_empty() {
            return;
        }
        let c0 = c0 + done;
        match &self.soa {
            Some(area) => q.finish_soa(self.isa, acc, &Soa::new(area, self.oc).from(c0), out),
            None => {
                let fold = self.fold.get(c0..).unwrap_or(&[]);
                for (((o, &a), &f), qc) in out.iter_mut().zip(acc).zip(fold).zip(q.channels(c0)) {
                    *o = q.apply(a.wrapping_add(f), qc);
                }
            }
        }
    }
}

/// Pieces of precomputed epilogue constants per eight channels (x86_64, aarch64).
#[cfg(target_arch = "aarch64")]
use super::arch::aarch64::PRE8;
#[cfg(target_arch = "x86_64")]
use super::arch::x86_64::PRE8;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const PRE8: usize = 1;

/// The whole-op fused kernel of aarch64 (`arch::aarch64::gemm_fused`: all channels of
/// `NP` rows given as pieces, on [`Gemm::pre`]'s constants); `None` elsewhere or without
/// the constants (not the single-shift requantization), `Some(false)` when it declines.
#[inline]
fn arch_fused<const NP: usize>(
    gm: &Gemm,
    segs: &[&[[u8; 4]]],
    ts: (usize, usize),
    outs: &mut [&mut [u8]],
) -> Option<bool> {
    #[cfg(target_arch = "aarch64")]
    {
        if gm.pre.is_empty() {
            return None;
        }
        let kn = (gm.k4, gm.oc);
        Some(super::arch::aarch64::gemm_fused(
            gm.packing,
            segs,
            NP,
            ts,
            gm.w.get(),
            kn,
            &gm.pre,
            gm.clamp,
            outs,
        ))
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = (gm, segs, ts, outs);
        None
    }
}

/// The precomputed epilogue constants of the [`Soa`] area `area` of `oc` channels, one
/// `pre8` block per group of eight channels: on x86_64 (`arch::x86_64::pre8`) every whole
/// group, and with `partial_last` also a last partial one (the batch-1 GEMV kernel's,
/// whose padded lanes are never stored); on aarch64 (`arch::aarch64::pre8`, the fused
/// kernel) every group, a last partial one included. The lanes past `oc` are zero
/// ([`Soa::new`] cuts each array to `oc` channels). Empty elsewhere.
fn pre_consts(area: &[u8], oc: usize, partial_last: bool) -> Vec<[u8; 32]> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        #[cfg(target_arch = "aarch64")]
        use super::arch::aarch64::pre8;
        #[cfg(target_arch = "x86_64")]
        use super::arch::x86_64::pre8;
        let groups = if cfg!(target_arch = "aarch64") || partial_last {
            oc.div_ceil(BLOCK)
        } else {
            oc / BLOCK
        };
        let soa = Soa::new(area, oc);
        let at = |a: &[u8], j: usize| a.get(4 * j..4 * j + 4).map_or(0, |b| le_i32(b, 0));
        (0..groups)
            .flat_map(|g| {
                let c = BLOCK * g;
                pre8(
                    core::array::from_fn(|j| at(soa.fold, c + j)),
                    core::array::from_fn(|j| at(soa.mult, c + j)),
                    core::array::from_fn(|j| at(soa.r1, c + j) as u32),
                )
            })
            .collect()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (area, oc, partial_last);
        Vec::new()
    }
}

/// The precomputed epilogue constants of eight lanes (`arch::x86_64::pre8`; zeros off
/// x86_64, where nothing reads them).
fn pre_block(fold: [i32; 8], mult: [i32; 8], r1: [u32; 8]) -> [[u8; 32]; PRE8] {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::pre8(fold, mult, r1)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (fold, mult, r1);
        [[0; 32]; PRE8]
    }
}

/// The epilogue on precomputed constants: channels done (x86_64 with AVX2; 0 elsewhere).
fn requant_pre(acc: &[i32], pre: &[[u8; 32]], clamp: (i32, i32, i32), out: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::requant_pre(acc, pre, clamp, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (acc, pre, clamp, out);
        0
    }
}

/// The host SIMD family a packing's CPU runs (for the vector epilogue).
fn host_isa(p: Packing) -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let _ = p;
        Isa::Avx2
    }
    #[cfg(target_arch = "aarch64")]
    {
        match p {
            Packing::Sdot => Isa::NeonDot,
            Packing::Smlal => Isa::Neon,
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        match p {}
    }
}

/// Whether the rows are stored as `x XOR 0x80` (`x + 128`, unsigned: x86 VNNI).
fn is_vnni(p: Packing) -> bool {
    p.unsigned_rows()
}

/// How a packing stores the weights of one block of 8 channels and group of 4 taps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WFormat {
    /// 32 bytes: channel `c`'s four int8 weights at `4c..4c + 4` (VPDPBUSD, SDOT).
    I8Groups,
    /// 64 bytes: `i16` pairs of taps `(0, 1)` at `4c..4c + 4`, then of taps `(2, 3)` in
    /// the second 32 bytes (x86 VPMADDWD).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    I16Pairs,
    /// 64 bytes: tap `j`'s eight `i16` weights at `16j..16j + 16` (NEON SMLAL by element).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    I16Taps,
}

fn wformat(p: Packing) -> WFormat {
    #[cfg(target_arch = "x86_64")]
    {
        if p.unsigned_rows() {
            WFormat::I8Groups
        } else {
            WFormat::I16Pairs
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        match p {
            Packing::Sdot => WFormat::I8Groups,
            Packing::Smlal => WFormat::I16Taps,
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        match p {}
    }
}

/// Where weight `j` (tap `4g + j`) of `lane` sits in its block-and-group bytes, and
/// whether it is an `i16` (else int8).
fn w_at(f: WFormat, lane: usize, j: usize) -> (usize, bool) {
    match f {
        WFormat::I8Groups => (4 * lane + j, false),
        WFormat::I16Pairs => ((j / 2) * 32 + 4 * lane + 2 * (j % 2), true),
        WFormat::I16Taps => (16 * j + 2 * lane, true),
    }
}

/// The architecture's packed kernel; `false` where there is none.
#[inline]
fn kernel<const NP: usize>(
    packing: Packing,
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::gemm_tile::<NP>(packing, rows, w, k4, nb, acc)
    }
    #[cfg(target_arch = "aarch64")]
    {
        super::arch::aarch64::gemm_tile::<NP>(packing, rows, w, k4, nb, acc)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (rows, w, k4, nb, acc);
        match packing {}
    }
}

/// The epilogue constants per 16 channels of the fused AVX-512 kernel.
#[cfg(target_arch = "x86_64")]
type Pre16 = super::arch::x86_64::Pre16;
#[cfg(not(target_arch = "x86_64"))]
type Pre16 = [[u8; 64]; PRE8];

/// The fused kernel's constants of channels `16q..16q + 16` (never built off x86_64).
fn pre16(pre: &[[u8; 32]], q: usize) -> Pre16 {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::pre16(pre, q)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pre, q);
        [[0; 64]; PRE8]
    }
}

/// The arguments of the fused kernel besides the outputs: pieces, `(taps, s4)`, the
/// chunk's weights, `(k4, nb)`, the chunk's [`Pre16`] constants, the clamp.
type FusedArgs<'a> = (
    &'a [&'a [[u8; 4]]],
    (usize, usize),
    &'a [[u8; 32]],
    (usize, usize),
    &'a [Pre16],
    (i32, i32, i32),
);

/// The architecture's kernel with the epilogue fused (`arch::x86_64::gemm_taps_fused`):
/// channels `c0..c0 + n` of each of `NP` output rows; `false` where there is none.
#[inline]
fn kernel_fused<const NP: usize>(
    packing: Packing,
    (segs, ts, w, kn, pre, clamp): FusedArgs<'_>,
    outs: &mut [&mut [u8]],
    cn: (usize, usize),
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::gemm_taps_fused::<NP>(packing, segs, ts, w, kn, pre, clamp, outs, cn)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (packing, segs, ts, w, kn, pre, clamp, outs, cn);
        false
    }
}

/// The architecture's kernel on rows given as pieces (`arch::x86_64::gemm_tile_taps`);
/// `false` where there is none.
#[allow(clippy::too_many_arguments)]
#[inline]
fn kernel_taps<const NP: usize>(
    packing: Packing,
    segs: &[&[[u8; 4]]],
    taps: usize,
    s4: usize,
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::gemm_tile_taps::<NP>(packing, segs, taps, s4, w, k4, nb, acc)
    }
    #[cfg(target_arch = "aarch64")]
    {
        super::arch::aarch64::gemm_tile_taps::<NP>(packing, segs, taps, s4, w, k4, nb, acc)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (packing, segs, taps, s4, w, k4, nb, acc);
        false
    }
}

/// The portable twin of the packed kernels (`arch::x86_64::gemm_tile`), on the same
/// layouts: `acc[p][8b + c] = sum over groups and taps of row_p * w` (wrapping). Used
/// where the kernel declines (never after [`Packing::detect`] chose the packing), and by
/// the tests as the kernel's reference.
pub(crate) fn tile_portable<const NP: usize>(
    packing: Packing,
    rows: &[&[[u8; 4]]; NP],
    w: &[[u8; 32]],
    k4: usize,
    nb: usize,
    acc: &mut [[i32; 32]; NP],
) {
    let flat = w.as_flattened();
    for (p, a) in acc.iter_mut().enumerate() {
        for (b, block) in a.chunks_exact_mut(BLOCK).take(nb).enumerate() {
            for (lane, s) in block.iter_mut().enumerate() {
                let mut sum = 0i32;
                for g in 0..k4 {
                    let x = rows[p].get(g).copied().unwrap_or([0; 4]);
                    let base = 32 * packing.piece(b, g, k4);
                    for (j, &xv) in x.iter().enumerate() {
                        let (at, wide) = w_at(wformat(packing), lane, j);
                        let at = base + at;
                        let wv = if wide {
                            flat.get(at..at + 2)
                                .map_or(0, |v| i32::from(i16::from_le_bytes([v[0], v[1]])))
                        } else {
                            flat.get(at).map_or(0, |&v| i32::from(v as i8))
                        };
                        let xv = if is_vnni(packing) {
                            i32::from(xv)
                        } else {
                            i32::from(xv as i8)
                        };
                        sum = sum.wrapping_add(xv.wrapping_mul(wv));
                    }
                }
                *s = sum;
            }
        }
    }
}

/// Channels per packed depthwise block (one 256-bit vector of bytes).
pub(crate) const DW_BLOCK: usize = 32;

/// Constant vectors per depthwise block: the precomputed epilogue constants
/// (`arch::x86_64::pre8`: fold, multiplier, `r1`, odd-lane multiplier, rounding
/// constants) of each of the four vectors, in lane order.
const DW_CONSTS: usize = 4 * PRE8;

/// A 3x3 DEPTHWISE_CONV_2D's (depth multiplier 1, int8) packed weights and per-channel
/// constants, laid out once per model for the block kernel (`arch::x86_64::dw_block`):
/// per block of [`DW_BLOCK`] channels, the nine taps' weights interleaved so that each
/// `i32` lane holds one channel's taps `4g..4g + 4` (the permuted lane order of
/// [`dw_lane`]), and the fold (`bias + input offset correction`), multiplier and shift of
/// the single-shift requantization in the same order. Only ops whose requantization is
/// the single-shift kind ([`OutQ::fast`]) are packed.
#[derive(Debug)]
pub(crate) struct Dw {
    packing: Packing,
    c: usize,
    /// `ceil(c / 32)` blocks of `dw_pieces(packing)` pieces.
    w: Vec<[u8; 32]>,
    /// `ceil(c / 32)` blocks of [`DW_CONSTS`] pieces.
    k: Vec<[u8; 32]>,
    /// The input zero point, `c` rounded up to a block: the taps outside the image,
    /// whose `x + off` is 0.
    zp: Vec<u8>,
    /// Output offset and clamp.
    clamp: (i32, i32, i32),
    /// For 8 or 16 channels: one block whose lanes repeat the channels `32 / c` times
    /// (weights and constants), so that one block computes `32 / c` neighbouring output
    /// pixels of a row at once ([`Dw::pixels`]).
    rep: Option<(Pieces, Pieces)>,
    /// VNNI, more than 16 channels: the weights again with the taps grouped by filter
    /// column (group `kx` holds taps `(0, kx)`, `(1, kx)`, `(2, kx)` and a zero), for
    /// [`Dw::row`]; empty otherwise.
    cols: Pieces,
}

/// Packed weights or constants, 32 bytes a piece.
type Pieces = Vec<[u8; 32]>;

impl Dw {
    /// Packs the `[1, 3, 3, c]` int8 filter `w` with the optional int32 `bias` (`c`
    /// values) and the op's requantization. `None` when this CPU has no packed kernel,
    /// the requantization is not the single-shift kind, or a slice is shorter than the
    /// shapes say (the caller keeps the unpacked kernels then).
    pub(crate) fn new(
        w: &[u8],
        c: usize,
        bias: Option<&[u8]>,
        rq: &Requant<'_>,
        clamp: &Clamp,
    ) -> Option<Dw> {
        Dw::with_packing(dw_packing(Packing::detect()?), w, c, bias, rq, clamp)
    }

    /// [`Dw::new`] in the layout of `packing` (tests pack for every layout the CPU runs).
    pub(crate) fn with_packing(
        packing: Packing,
        w: &[u8],
        c: usize,
        bias: Option<&[u8]>,
        rq: &Requant<'_>,
        clamp: &Clamp,
    ) -> Option<Dw> {
        // The block kernels are x86_64's (aarch64 keeps the unpacked NEON kernel).
        if !cfg!(target_arch = "x86_64")
            || c == 0
            || w.len() < c.checked_mul(9)?
            || bias.is_some_and(|b| b.len() < 4 * c)
        {
            return None;
        }
        let q = OutQ::new(rq, clamp);
        if !q.fast {
            return None;
        }
        let vnni = is_vnni(packing);
        let off = rq.input_offset;
        let corr = if vnni { 128 } else { 0 };
        let wt = |t: usize, ch: usize| w.get(t * c + ch).map_or(0, |&v| v as i8);
        let mut soa = std::vec![0u8; 12 * c];
        q.write_soa(&mut soa, c, 0, |ch| {
            let s = (0..9).fold(0i32, |a, t| a.wrapping_add(i32::from(wt(t, ch))));
            let b = bias.map_or(0, |b| le_i32(b, ch));
            b.wrapping_add(off.wrapping_sub(corr).wrapping_mul(s))
        });
        let soa = Soa::new(&soa, c);
        let blocks = c.div_ceil(DW_BLOCK);
        let pieces = dw_pieces(packing);
        let at = |a: &[u8], ch: usize| a.get(4 * ch..4 * ch + 4).map_or(0, |v| le_i32(v, 0));
        // `n` blocks whose lane channel `vc` (0..32) of block `b` is channel `chan(b, vc)`
        // (`None`: zero weights and constants).
        let build = |n: usize, chan: &dyn Fn(usize, usize) -> Option<usize>| {
            let mut pw = std::vec![[0u8; 32]; n.checked_mul(pieces)?];
            let mut pk = std::vec![[0u8; 32]; n.checked_mul(DW_CONSTS)?];
            for b in 0..n {
                for v in 0..4 {
                    let lane_ch = |l: usize| chan(b, dw_lane(v, l));
                    let f = core::array::from_fn(|l| lane_ch(l).map_or(0, |ch| at(soa.fold, ch)));
                    let m = core::array::from_fn(|l| lane_ch(l).map_or(0, |ch| at(soa.mult, ch)));
                    let r =
                        core::array::from_fn(|l| lane_ch(l).map_or(0, |ch| at(soa.r1, ch) as u32));
                    let at0 = b * DW_CONSTS + PRE8 * v;
                    if let Some(d) = pk.get_mut(at0..at0 + PRE8) {
                        d.copy_from_slice(&pre_block(f, m, r));
                    }
                    for l in 0..8 {
                        let Some(ch) = lane_ch(l) else {
                            continue;
                        };
                        for g in 0..3 {
                            for j in 0..4 {
                                let t = 4 * g + j;
                                let wv = if t < 9 { wt(t, ch) } else { 0 };
                                if vnni {
                                    pw[b * pieces + 4 * g + v][4 * l + j] = wv as u8;
                                } else {
                                    // Taps (0, 2) of the group in the even piece, (1, 3) in
                                    // the odd one, as i16.
                                    let piece = &mut pw[b * pieces + 2 * (4 * g + v) + j % 2];
                                    let at = 4 * l + 2 * (j / 2);
                                    piece[at..at + 2].copy_from_slice(&i16::from(wv).to_le_bytes());
                                }
                            }
                        }
                    }
                }
            }
            Some((pw, pk))
        };
        let (pw, pk) = build(blocks, &|b, vc| {
            Some(b * DW_BLOCK + vc).filter(|&ch| ch < c)
        })?;
        // 8 or 16 channels: one block also holds 4 or 2 neighbouring pixels.
        let rep = if c == 8 || c == 16 {
            build(1, &|_, vc| Some(vc % c))
        } else {
            None
        };
        // The column layout (VNNI; not for 8 or 16 channels, which share blocks
        // between pixels instead): piece `4 * kx + v` of each block, lane `l`'s byte `j`
        // is the weight of tap `3j + kx` of channel `dw_lane(v, l)`.
        let cols = if vnni && rep.is_none() {
            let mut pc = std::vec![[0u8; 32]; blocks.checked_mul(12)?];
            for (b, block) in pc.chunks_exact_mut(12).enumerate() {
                for v in 0..4 {
                    for l in 0..8 {
                        let ch = b * DW_BLOCK + dw_lane(v, l);
                        if ch >= c {
                            continue;
                        }
                        for kx in 0..3 {
                            for j in 0..3 {
                                block[4 * kx + v][4 * l + j] = wt(3 * j + kx, ch) as u8;
                            }
                        }
                    }
                }
            }
            pc
        } else {
            Vec::new()
        };
        Some(Dw {
            packing,
            c,
            w: pw,
            k: pk,
            rep,
            cols,
            zp: std::vec![(-off) as i8 as u8; blocks * DW_BLOCK],
            clamp: (rq.output_offset, clamp.min_q, clamp.max_q),
        })
    }

    /// How many neighbouring output pixels [`Dw::pixels`] computes at once (1: it does
    /// not apply, the channel count is not 8 or 16).
    pub(crate) fn pixels_per_block(&self) -> usize {
        if self.rep.is_some() {
            DW_BLOCK / self.c
        } else {
            1
        }
    }

    /// [`Dw::pixels_per_block`] (`r`) neighbouring output pixels of a row at once, when
    /// their taps are adjacent in the input (stride and dilation 1 along the row, every
    /// tap of the `r` pixels inside the row or the whole filter row outside the image):
    /// `taps[t]` holds the `32 = r * c` bytes of tap `t` of the `r` pixels (the first
    /// pixel's tap and the `r - 1` pixels after it, or a zero-point row), `out` the `r`
    /// pixels' outputs. `false` (nothing written) when this does not apply or a slice is
    /// short.
    pub(crate) fn pixels(&self, taps: &[&[u8]; 9], out: &mut [u8]) -> bool {
        let Some((w, k)) = &self.rep else {
            return false;
        };
        let t = taps.map(|t| t.first_chunk::<32>());
        match (t, out.first_chunk_mut::<32>()) {
            (
                [Some(t0), Some(t1), Some(t2), Some(t3), Some(t4), Some(t5), Some(t6), Some(t7), Some(t8)],
                Some(o),
            ) => {
                self.block(&[t0, t1, t2, t3, t4, t5, t6, t7, t8], w, k, o);
                true
            }
            _ => false,
        }
    }

    /// A run of output pixels of one row, [`Dw::pixels_per_block`] at a time in one call
    /// (8 or 16 channels, VNNI; `arch::x86_64::dw_rep_run`): `rows[ky]` is the input row
    /// of filter row `ky` (`in_w` pixels of `c` bytes) or `None` outside the image;
    /// output pixel `j` of the run reads input columns `col0 + j * sx + kx` (all inside
    /// the row). Writes the first pixels (a multiple of the block's pixels, at most
    /// `npix`) of `out` and returns how many; 0 (nothing written) where it does not
    /// apply.
    pub(crate) fn rep_run(
        &self,
        rows: &[Option<&[u8]>; 3],
        in_w: usize,
        (sx, col0): (usize, usize),
        npix: usize,
        out: &mut [u8],
    ) -> usize {
        let Some((w, k)) = &self.rep else {
            return 0;
        };
        #[cfg(target_arch = "x86_64")]
        {
            if self.packing != Packing::Vnni {
                return 0;
            }
            let zp = self.zp.first().copied().unwrap_or(0);
            super::arch::x86_64::dw_rep_run(
                rows,
                (self.c, in_w),
                (sx, col0),
                npix,
                w,
                k,
                zp,
                self.clamp,
                out,
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rows, in_w, sx, col0, npix, out, w, k);
            0
        }
    }

    /// Channels.
    pub(crate) fn channels(&self) -> usize {
        self.c
    }

    /// One output row of a 3x3 depthwise convolution with stride and dilation 1 along
    /// the row, every channel: `rows[ky]` is the input row of filter row `ky` (`in_w`
    /// pixels of `c` bytes) or `None` outside the image; output pixel `ox` (of
    /// `out.len() / c`) reads input columns `ox + kx - pad` (outside the row: the zero
    /// point). Each input column's taps are interleaved once and used by the three
    /// output pixels that read it (`arch::x86_64::dw_row`). `false` (nothing written)
    /// when this does not apply (no column layout: not VNNI, or 8 or 16 channels) or a
    /// slice is short.
    pub(crate) fn row(
        &self,
        rows: &[Option<&[u8]>; 3],
        in_w: usize,
        pad: usize,
        out: &mut [u8],
    ) -> bool {
        if self.cols.is_empty() || self.c == 0 || !out.len().is_multiple_of(self.c) {
            return false;
        }
        let zp = self.zp.first().copied().unwrap_or(0);
        for (b, (w, k)) in self
            .cols
            .chunks_exact(12)
            .zip(self.k.chunks_exact(DW_CONSTS))
            .enumerate()
        {
            if !dw_row_kernel(
                rows,
                (self.c, b * DW_BLOCK),
                (in_w, pad),
                w,
                k,
                zp,
                self.clamp,
                out,
            ) {
                return false;
            }
        }
        true
    }

    /// A row of at least `c` input zero points (the taps outside the image).
    pub(crate) fn zp(&self) -> &[u8] {
        &self.zp
    }

    /// Bytes of packed weights and constants (for reports).
    pub(crate) fn bytes(&self) -> usize {
        let rep = self.rep.as_ref().map_or(0, |(w, k)| w.len() + k.len());
        32 * (self.w.len() + self.k.len() + rep + self.cols.len()) + self.zp.len()
    }

    /// One output pixel: `out[ch]` for channels `0..c` from the nine tap slices (each at
    /// least `c` bytes: the input from the tap's pixel on, or [`Dw::zp`]). Channels are
    /// computed 32 at a time straight from the slices where they hold 32 more bytes (the
    /// lanes past `c` compute values nobody reads), else through stack copies; for the
    /// same reason up to 31 bytes of `out` past `c` may be overwritten (the caller writes
    /// pixels in order, so the next pixel overwrites them). Writes nothing if a tap or
    /// `out` is shorter than `c`.
    pub(crate) fn pixel(&self, taps: &[&[u8]; 9], out: &mut [u8]) {
        let c = self.c;
        if out.len() < c || taps.iter().any(|t| t.len() < c) {
            return;
        }
        let pieces = dw_pieces(self.packing);
        for (b, (w, k)) in self
            .w
            .chunks_exact(pieces)
            .zip(self.k.chunks_exact(DW_CONSTS))
            .enumerate()
        {
            let c0 = b * DW_BLOCK;
            let t = taps.map(|t| t.get(c0..).and_then(|t| t.first_chunk::<32>()));
            match (t, out.get_mut(c0..).and_then(|o| o.first_chunk_mut::<32>())) {
                (
                    [Some(t0), Some(t1), Some(t2), Some(t3), Some(t4), Some(t5), Some(t6), Some(t7), Some(t8)],
                    Some(o),
                ) => {
                    self.block(&[t0, t1, t2, t3, t4, t5, t6, t7, t8], w, k, o);
                }
                _ => {
                    // Near the end of the input or output: through stack copies.
                    let n = (c - c0).min(DW_BLOCK);
                    let mut buf = [[0u8; 32]; 9];
                    for (d, s) in buf.iter_mut().zip(taps) {
                        if let Some(s) = s.get(c0..c0 + n) {
                            d[..n].copy_from_slice(s);
                        }
                    }
                    let t: [&[u8; 32]; 9] = core::array::from_fn(|i| &buf[i]);
                    let mut o = [0u8; 32];
                    self.block(&t, w, k, &mut o);
                    if let Some(d) = out.get_mut(c0..c0 + n) {
                        d.copy_from_slice(&o[..n]);
                    }
                }
            }
        }
    }

    #[inline]
    fn block(&self, taps: &[&[u8; 32]; 9], w: &[[u8; 32]], k: &[[u8; 32]], out: &mut [u8; 32]) {
        if !dw_kernel(self.packing, taps, w, k, self.clamp, out) {
            dw_block_portable(self.packing, taps, w, k, self.clamp, out);
        }
    }
}

/// The architecture's depthwise row kernel (`arch::x86_64::dw_row`); `false` where
/// there is none.
#[allow(clippy::too_many_arguments)]
#[inline]
fn dw_row_kernel(
    rows: &[Option<&[u8]>; 3],
    cc0: (usize, usize),
    wp: (usize, usize),
    w: &[[u8; 32]],
    k: &[[u8; 32]],
    zp: u8,
    clamp: (i32, i32, i32),
    out: &mut [u8],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::dw_row(rows, cc0, wp, w, k, zp, clamp, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, cc0, wp, w, k, zp, clamp, out);
        false
    }
}

/// The depthwise block kernels are 256-bit: AVX-VNNI where the CPU has it, else AVX2.
fn dw_packing(p: Packing) -> Packing {
    #[cfg(target_arch = "x86_64")]
    {
        match p {
            Packing::Avx512Vnni | Packing::Vnni if super::arch::x86_64::vnni_available() => {
                Packing::Vnni
            }
            _ => Packing::Avx2,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        p
    }
}

/// The packed depthwise layout's weight pieces per block (never built off x86_64).
fn dw_pieces(p: Packing) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::dw_pieces(p)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
        12
    }
}

/// The channel (within its block of 32) that `i32` lane `l` of vector `v` (0..4) holds
/// in the packed depthwise layout: interleaving the bytes of four taps with
/// `VPUNPCK{L,H}BW` then `VPUNPCK{L,H}WD` works within 128-bit halves, so vector `v`
/// holds channels `4v..4v + 4` of each half. The saturating packs of the epilogue
/// (`VPACKSSDW` of vectors 0, 1 and of 2, 3, then `VPACKSSWB`) put them back in order.
#[inline(always)]
const fn dw_lane(v: usize, l: usize) -> usize {
    (l / 4) * 16 + 4 * v + l % 4
}

/// The architecture's packed depthwise block kernel; `false` where there is none.
#[inline]
fn dw_kernel(
    packing: Packing,
    taps: &[&[u8; 32]; 9],
    w: &[[u8; 32]],
    k: &[[u8; 32]],
    clamp: (i32, i32, i32),
    out: &mut [u8; 32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::arch::x86_64::dw_block(packing, taps, w, k, clamp, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (packing, taps, w, k, clamp, out);
        false
    }
}

/// The portable twin of the packed depthwise block kernel (`arch::x86_64::dw_block`), on
/// the same layouts: per channel, the fold plus the nine products (`x + 128` against the
/// int8 weights for VNNI, `x` against the `i16` weights for AVX2), wrapping, then
/// [`requant_soa_portable`]. Used where the kernel declines, and by the tests as its
/// reference.
pub(crate) fn dw_block_portable(
    packing: Packing,
    taps: &[&[u8; 32]; 9],
    w: &[[u8; 32]],
    k: &[[u8; 32]],
    clamp: (i32, i32, i32),
    out: &mut [u8; 32],
) {
    let vnni = is_vnni(packing);
    let i32_at = |p: Option<&[u8; 32]>, l: usize| {
        p.map_or(0, |p| {
            i32::from_le_bytes([p[4 * l], p[4 * l + 1], p[4 * l + 2], p[4 * l + 3]])
        })
    };
    for v in 0..4 {
        for l in 0..8 {
            let ch = dw_lane(v, l);
            let mut acc = i32_at(k.get(PRE8 * v), l);
            for g in 0..3 {
                for j in 0..4 {
                    let xv = taps[(4 * g + j).min(8)][ch];
                    let (xv, wv) = if vnni {
                        let wv = w.get(4 * g + v).map_or(0, |p| p[4 * l + j] as i8);
                        (i32::from(xv ^ 0x80), i32::from(wv))
                    } else {
                        let at = 4 * l + 2 * (j / 2);
                        let wv = w
                            .get(2 * (4 * g + v) + j % 2)
                            .map_or(0, |p| i16::from_le_bytes([p[at], p[at + 1]]));
                        (i32::from(xv as i8), i32::from(wv))
                    };
                    acc = acc.wrapping_add(xv.wrapping_mul(wv));
                }
            }
            let mut area = [0u8; 12];
            area[4..8].copy_from_slice(&i32_at(k.get(PRE8 * v + 1), l).to_le_bytes());
            area[8..12].copy_from_slice(&i32_at(k.get(PRE8 * v + 2), l).to_le_bytes());
            let mut o = [0u8; 1];
            requant_soa_portable(&[acc], &Soa::new(&area, 1), clamp, &mut o);
            out[ch] = o[0];
        }
    }
}
