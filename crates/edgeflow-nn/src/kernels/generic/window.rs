//! Window geometry of the windowed ops (conv, depthwise, pooling): one validated
//! [`Axis`] per spatial dimension, with TFLite's SAME/VALID/explicit padding rules.

/// Largest extent the window arithmetic handles; keeps every intermediate in `isize`
/// range on 32-bit targets.
const MAX_EXTENT: u64 = 1 << 30;

/// One spatial axis of a windowed op (conv, depthwise, pool), validated by [`Axis::new`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axis {
    /// Input extent.
    pub(crate) size: usize,
    /// Filter extent (taps).
    pub(crate) filter: usize,
    pub(crate) stride: usize,
    pub(crate) dilation: usize,
    /// Padding before the first element.
    pub(crate) pad: usize,
    /// Output extent.
    pub(crate) out: usize,
}

impl Axis {
    /// Validates the geometry of one axis.
    ///
    /// Besides positivity and range, requires the output extent to be one TFLite's
    /// SAME/VALID rules (or any explicit padding below a full dilated filter on each side)
    /// can produce: with `eff = (filter - 1) * dilation + 1` and the implied trailing
    /// padding `after = (out - 1) * stride + eff - size - pad`, it needs `pad < eff` and
    /// `-stride < after < eff`. Windows are clipped to the image in any case.
    pub(crate) fn new(
        size: usize,
        filter: usize,
        stride: u16,
        dilation: u16,
        pad: u16,
        out: usize,
    ) -> Result<Self, &'static str> {
        if stride == 0 || dilation == 0 {
            return Err(why!(
                "generic/window.rs",
                "stride and dilation must be at least 1"
            ));
        }
        if size == 0 || filter == 0 || out == 0 {
            return Err(why!("generic/window.rs", "zero-sized spatial dimension"));
        }
        let (s, d, p) = (stride as u64, dilation as u64, pad as u64);
        let (n, f, o) = (size as u64, filter as u64, out as u64);
        if n > MAX_EXTENT || f > MAX_EXTENT || o > MAX_EXTENT {
            return Err(why!("generic/window.rs", "spatial dimension too large"));
        }
        let eff = (f - 1) * d + 1;
        let span = (o - 1) * s + eff;
        if eff > MAX_EXTENT || span > MAX_EXTENT {
            return Err(why!(
                "generic/window.rs",
                "filter or output extent too large"
            ));
        }
        if p >= eff {
            return Err(why!(
                "generic/window.rs",
                "padding covers a whole filter window"
            ));
        }
        let after = span as i64 - n as i64 - p as i64;
        if after >= eff as i64 || after <= -(s as i64) {
            return Err(why!(
                "generic/window.rs",
                "output size does not match input, filter, stride, dilation and padding"
            ));
        }
        Ok(Axis {
            size,
            filter,
            stride: stride as usize,
            dilation: dilation as usize,
            pad: pad as usize,
            out,
        })
    }

    /// For output position `o`: the input coordinate of the window's first tap (may be
    /// negative) and the half-open range `[start, end)` of taps inside the input
    /// (possibly empty, then `start == end`).
    #[inline(always)]
    pub(crate) fn window(&self, o: usize) -> (isize, usize, usize) {
        let origin = (o * self.stride) as isize - self.pad as isize;
        let size = self.size as isize;
        if self.dilation == 1 {
            let start = if origin < 0 { (-origin) as usize } else { 0 };
            let room = size - origin;
            let end = if room <= 0 {
                0
            } else {
                (room as usize).min(self.filter)
            };
            (origin, start.min(end), end)
        } else {
            let d = self.dilation as isize;
            let start = if origin < 0 {
                ((-origin + d - 1) / d) as usize
            } else {
                0
            };
            let end = if origin >= size {
                0
            } else {
                (((size - 1 - origin) / d + 1) as usize).min(self.filter)
            };
            (origin, start.min(end), end)
        }
    }

    /// Whether the window of output `o` is entirely inside the input.
    #[inline(always)]
    pub(crate) fn full(&self, start: usize, end: usize) -> bool {
        start == 0 && end == self.filter
    }

    /// Input coordinate of tap `k` of a window starting at `origin` (`k` inside the window).
    #[inline(always)]
    pub(crate) fn at(&self, origin: isize, k: usize) -> usize {
        (origin + (k * self.dilation) as isize) as usize
    }

    /// The extent of this axis in a copy of the input framed so that every window is
    /// inside it ([`copy_framed`]): the padding before, the input, and room for the last
    /// window, `max(pad + size, (out - 1) * stride + (filter - 1) * dilation + 1)`. No
    /// overflow for an axis from [`Axis::new`] (every term at most `2^30`, `out >= 1`).
    #[cfg(any(test, feature = "std"))]
    pub(crate) fn framed(&self) -> usize {
        let span = (self.out - 1) * self.stride + (self.filter - 1) * self.dilation + 1;
        (self.pad + self.size).max(span)
    }
}

/// The host paths' framed copy of an NHWC input (the packed CONV_2D's in-place windows,
/// the aarch64 depthwise frame): `x`, `batches` images of `h.size` rows of `w.size`
/// pixels of `c` bytes, into `dst`, images of `fh` rows of `fw` pixels of `fc` bytes,
/// after filling `dst` with `pad_byte` (the input zero point in the kernel's form);
/// input pixel `(y, x)` of image `b` lands on pixel `(y + h.pad, x + w.pad)` of image
/// `b`. Each input row (`w.size * c` bytes) goes through `row(dst_row, src_row)`
/// (`dst_row`: `w.size * fc` bytes), so that the caller copies, flips or widens it.
/// Returns `false` when a row would end past `dst` (the copy is then incomplete).
///
/// Always inlined: in its caller the row closure's constants are known (on aarch64 the
/// convolution's flip is 0 and its XOR copy a `memcpy`); out of line the flip was a
/// run-time value and the copy an XOR loop (IC +61 K instructions per inference on
/// cortex-a76, measured before the row loops took slices).
#[cfg(any(test, feature = "std"))]
#[inline(always)]
pub(crate) fn copy_framed(
    dst: &mut [u8],
    x: &[u8],
    (batches, h, w): (usize, &Axis, &Axis),
    (c, fc): (usize, usize),
    (fh, fw): (usize, usize),
    pad_byte: u8,
    mut row: impl FnMut(&mut [u8], &[u8]),
) -> bool {
    dst.fill(pad_byte);
    for (r, src) in x
        .chunks_exact(w.size * c)
        .take(batches * h.size)
        .enumerate()
    {
        let (b, y) = (r / h.size, r % h.size);
        let at = ((b * fh + y + h.pad) * fw + w.pad) * fc;
        let Some(d) = dst.get_mut(at..at + w.size * fc) else {
            return false;
        };
        row(d, src);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_clips_to_image() {
        let a = Axis::new(5, 3, 2, 2, 2, 3).unwrap();
        // origins -2, 0, 2; taps at origin + 2k.
        assert_eq!(a.window(0), (-2, 1, 3));
        assert_eq!(a.window(1), (0, 0, 3));
        assert_eq!(a.window(2), (2, 0, 2));
        let b = Axis::new(4, 3, 1, 1, 1, 4).unwrap();
        assert_eq!(b.window(0), (-1, 1, 3));
        assert_eq!(b.window(3), (2, 0, 2));
        // SAME with a dilated filter wider than the input: taps at -1 and 2, both outside.
        let c = Axis::new(1, 2, 1, 3, 1, 1).unwrap();
        assert_eq!(c.window(0), (-1, 1, 1));
        assert!(Axis::new(5, 3, 1, 1, 3, 5).is_err());
        assert!(Axis::new(5, 3, 1, 1, 0, 6).is_err());
        assert!(Axis::new(5, 3, 1, 1, 0, 4).is_ok());
        assert!(Axis::new(5, 3, 1, 1, 0, 3).is_ok());
        assert!(Axis::new(5, 3, 1, 1, 0, 2).is_err());
    }

    /// `copy_framed` against the placement rule written out per byte: two images with
    /// SAME padding on both axes, pixels of 2 bytes widened to 3 by the row closure, the
    /// frame's border and its trailing room at the pad byte; and `false`, not a panic,
    /// when the destination is one byte short.
    #[test]
    fn copy_framed_places_every_byte() {
        // Different padding per axis (rows none, columns 2), so that a swapped axis fails.
        let h = Axis::new(2, 3, 1, 1, 0, 1).unwrap();
        let w = Axis::new(3, 3, 1, 1, 2, 3).unwrap();
        let (batches, c, fc) = (2, 2, 3);
        let (fh, fw) = (h.framed(), w.framed());
        assert_eq!((fh, fw), (3, 5));
        let x: Vec<u8> = (1..=(batches * h.size * w.size * c) as u8).collect();
        let widen = |d: &mut [u8], s: &[u8]| {
            for (dp, sp) in d.chunks_exact_mut(fc).zip(s.chunks_exact(c)) {
                dp[..c].copy_from_slice(sp);
                dp[c] = 0xEE;
            }
        };
        // A destination of `len` bytes, framed; `None` when the copy refused it.
        let framed = |len: usize| {
            let mut dst = vec![0u8; len];
            let (axes, bytes) = ((batches, &h, &w), (c, fc));
            copy_framed(&mut dst, &x, axes, bytes, (fh, fw), 0x80, widen).then_some(dst)
        };
        let mut want = vec![0x80u8; batches * fh * fw * fc];
        for b in 0..batches {
            for y in 0..h.size {
                for xx in 0..w.size {
                    let at = ((b * fh + y + h.pad) * fw + xx + w.pad) * fc;
                    let from = ((b * h.size + y) * w.size + xx) * c;
                    want[at..at + c].copy_from_slice(&x[from..from + c]);
                    want[at + c] = 0xEE;
                }
            }
        }
        assert_eq!(framed(want.len()), Some(want.clone()));
        // The last input row ends here: a destination exactly that long is enough, one
        // byte shorter is refused.
        let end = (((batches - 1) * fh + h.pad + h.size - 1) * fw + w.pad) * fc + w.size * fc;
        assert_eq!(framed(end).as_deref(), Some(&want[..end]));
        assert_eq!(framed(end - 1), None);
    }
}
