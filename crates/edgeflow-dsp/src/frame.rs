//! Streaming framing: a fixed-capacity ring buffer that takes interleaved samples in
//! chunks of any size and hands out windows of `window` time steps every `stride` steps.

use crate::error::{At, Error};

/// What a [`Framer::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Push {
    /// Values taken from the chunk (the rest must be pushed again after the window is
    /// taken).
    pub consumed: usize,
    /// A complete window is waiting.
    pub ready: bool,
}

/// Ring-buffer bookkeeping without the storage (shared by [`Framer`] and the runtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    axes: usize,
    window: usize,
    stride: usize,
    /// Time step the next sample goes to.
    head: usize,
    /// Axis the next value belongs to.
    axis: usize,
    /// Time steps still missing before the next window.
    until_next: usize,
    ready: bool,
}

impl Cursor {
    /// A cursor for validated (non-zero) parameters.
    pub(crate) fn new(axes: usize, window: usize, stride: usize) -> Self {
        Cursor {
            axes: axes.max(1),
            window: window.max(1),
            stride: stride.max(1),
            head: 0,
            axis: 0,
            until_next: window.max(1),
            ready: false,
        }
    }

    pub(crate) fn ready(&self) -> bool {
        self.ready
    }

    pub(crate) fn clear(&mut self) {
        self.ready = false;
    }

    pub(crate) fn reset(&mut self) {
        *self = Cursor::new(self.axes, self.window, self.stride);
    }

    /// Stores values until a window completes; returns the number of values consumed.
    /// Consumes nothing while a window is waiting. `apply(axis, values)` is called on each
    /// contiguous run of stored values (in place in the ring, `axis` of its first value),
    /// in time order, so per-sample stream blocks can transform them.
    pub(crate) fn push(
        &mut self,
        ring: &mut [f32],
        samples: &[f32],
        mut apply: impl FnMut(usize, &mut [f32]),
    ) -> usize {
        if self.ready {
            return 0;
        }
        let ring_len = self.window * self.axes;
        // Values still missing: the rest of the current time step, then whole steps.
        let to_ready = (self.axes - self.axis) + (self.until_next - 1) * self.axes;
        let n = samples.len().min(to_ready);
        let mut pos = self.head * self.axes + self.axis;
        let mut src = samples.get(..n).unwrap_or(&[]);
        while !src.is_empty() {
            let seg = ring_len.saturating_sub(pos).min(src.len()).max(1);
            let (a, b) = src.split_at(seg.min(src.len()));
            if let Some(dst) = ring.get_mut(pos..pos + a.len()) {
                dst.copy_from_slice(a);
                apply(pos % self.axes, dst);
            }
            pos = (pos + a.len()) % ring_len.max(1);
            src = b;
        }
        let filled = self.axis + n;
        let steps = filled / self.axes;
        self.axis = filled % self.axes;
        self.head = (self.head + steps) % self.window;
        self.until_next = self.until_next.saturating_sub(steps);
        if self.until_next == 0 {
            self.until_next = self.stride;
            self.ready = true;
        }
        n
    }

    /// Copies the last `window` time steps, oldest first, one row per axis (planar).
    pub(crate) fn copy_window(&self, ring: &[f32], out: &mut [f32]) {
        let used = ring.get(..self.window * self.axes).unwrap_or(&[]);
        // `head` is the oldest time step: [head, window) then [0, head).
        let (newest, oldest) = used.split_at((self.head * self.axes).min(used.len()));
        // One row per axis: the axis' values of the oldest part, then of the newest part
        // (a strided walk; for one axis, two plain copies).
        let older_steps = oldest.len() / self.axes;
        for (a, row) in out.chunks_mut(self.window).take(self.axes).enumerate() {
            let (first, second) = row.split_at_mut(older_steps.min(row.len()));
            if self.axes == 1 {
                copy_prefix(first, oldest);
                copy_prefix(second, newest);
            } else {
                let older = oldest.iter().skip(a).step_by(self.axes);
                for (o, &v) in first.iter_mut().zip(older) {
                    *o = v;
                }
                let newer = newest.iter().skip(a).step_by(self.axes);
                for (o, &v) in second.iter_mut().zip(newer) {
                    *o = v;
                }
            }
        }
    }
}

impl Cursor {
    /// One axis only: the ring's last `window` values as (oldest part, newest part).
    pub(crate) fn window_parts<'r>(&self, ring: &'r [f32]) -> (&'r [f32], &'r [f32]) {
        let used = ring.get(..self.window).unwrap_or(&[]);
        let (newest, oldest) = used.split_at(self.head.min(used.len()));
        (oldest, newest)
    }

    /// One axis only: writes the last `window` samples, oldest first, each multiplied by
    /// its `table` weight, into `out` (the ring copy fused with the window block; the same
    /// products, so the same bits). Returns `false`, writing nothing, for several axes.
    pub(crate) fn window_into(&self, ring: &[f32], table: &[f32], out: &mut [f32]) -> bool {
        if self.axes != 1 {
            return false;
        }
        let used = ring.get(..self.window).unwrap_or(&[]);
        let (newest, oldest) = used.split_at(self.head.min(used.len()));
        let (w_old, w_new) = table.split_at(oldest.len().min(table.len()));
        let (o_old, o_new) = out.split_at_mut(oldest.len().min(out.len()));
        for ((o, &x), &w) in o_old.iter_mut().zip(oldest).zip(w_old) {
            *o = x * w;
        }
        for ((o, &x), &w) in o_new.iter_mut().zip(newest).zip(w_new) {
            *o = x * w;
        }
        true
    }
}

/// Copies `min(dst.len(), src.len())` values from the start of `src`.
#[inline]
fn copy_prefix(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}

/// A standalone framing buffer over caller memory.
///
/// ```
/// # use edgeflow_dsp::Framer;
/// let mut ring = [0.0f32; 8];
/// // 2 axes, windows of 4 time steps every 2 steps.
/// let mut f = Framer::new(&mut ring, 2, 4, 2).unwrap();
/// let mut chunk: &[f32] = &[0., 10., 1., 11., 2., 12., 3., 13., 4., 14.];
/// let mut win = [0.0f32; 8];
/// let p = f.push(chunk);
/// assert!(p.ready);
/// f.take_window(&mut win).unwrap();
/// assert_eq!(win, [0., 1., 2., 3., 10., 11., 12., 13.]);
/// chunk = &chunk[p.consumed..];
/// assert!(!f.push(chunk).ready); // one more time step: not yet
/// ```
#[derive(Debug)]
pub struct Framer<'b> {
    ring: &'b mut [f32],
    cursor: Cursor,
}

impl<'b> Framer<'b> {
    /// Frames `axes` interleaved values per time step into windows of `window` steps,
    /// one every `stride` steps, stored in `ring`.
    ///
    /// Errors: a zero parameter ([`Error::Param`]), or `ring` shorter than
    /// `window * axes` ([`Error::BufferTooSmall`]).
    pub fn new(
        ring: &'b mut [f32],
        axes: usize,
        window: usize,
        stride: usize,
    ) -> Result<Self, Error> {
        let zero = |p| Error::Param {
            at: At::Input,
            param: p,
            reason: "must be at least 1",
        };
        if axes == 0 {
            return Err(zero("axes"));
        }
        if window == 0 {
            return Err(zero("window"));
        }
        if stride == 0 {
            return Err(zero("stride"));
        }
        let needed = window.saturating_mul(axes);
        if ring.len() < needed {
            return Err(Error::BufferTooSmall {
                needed,
                got: ring.len(),
            });
        }
        Ok(Framer {
            ring,
            cursor: Cursor::new(axes, window, stride),
        })
    }

    /// Takes values from `samples` (interleaved; a chunk may end mid time step) until a
    /// window is complete. While a window is waiting nothing is consumed: call
    /// [`Framer::take_window`] first.
    pub fn push(&mut self, samples: &[f32]) -> Push {
        let consumed = self.cursor.push(self.ring, samples, |_, _| {});
        Push {
            consumed,
            ready: self.cursor.ready(),
        }
    }

    /// Copies the waiting window into `out` (`axes` rows of `window` values, oldest first)
    /// and lets pushing continue.
    ///
    /// Errors: [`Error::NoWindow`], or [`Error::Length`] if `out` is not `window * axes`.
    pub fn take_window(&mut self, out: &mut [f32]) -> Result<(), Error> {
        if !self.cursor.ready() {
            return Err(Error::NoWindow);
        }
        let expected = self.cursor.window * self.cursor.axes;
        if out.len() != expected {
            return Err(Error::Length {
                what: "window buffer",
                expected,
                got: out.len(),
            });
        }
        self.cursor.copy_window(self.ring, out);
        self.cursor.clear();
        Ok(())
    }

    /// Forgets all samples (as after construction).
    pub fn reset(&mut self) {
        self.cursor.reset();
    }
}
