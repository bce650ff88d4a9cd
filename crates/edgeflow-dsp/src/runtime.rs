//! Running a validated [`Pipeline`] in a caller-provided workspace.

use crate::desc::{Block, Input, Interpolation};
use crate::error::Error;
use crate::frame::Cursor;
use crate::kernels;
use crate::plan::{BlockPlan, ImagePlan, Kind, Layout, Pipeline};

/// Executes a [`Pipeline`]: holds the stream state, the framing ring buffer, the
/// coefficient tables (computed once in [`Runtime::new`]) and the stacked frames, all in
/// the caller's workspace.
///
/// Signals: [`Runtime::push`] samples, [`Runtime::process`] each complete window (or
/// [`Runtime::feed`], which does both). Other inputs: [`Runtime::run_vector`],
/// [`Runtime::run_tokens`], [`Runtime::run_image`]. Outputs are the model input tensor's
/// bytes: little-endian `f32`, or `i8` when the pipeline quantizes.
pub struct Runtime<'p, 'a, 'w> {
    p: &'p Pipeline<'a>,
    ws: &'w mut [f32],
    cursor: Cursor,
    filled: u32,
    next_slot: u32,
    since_output: u32,
    /// Stacked frames of the last output that were not in the output before it.
    new_frames: u32,
}

/// The workspace cut into its regions.
struct Parts<'s> {
    tables: &'s [f32],
    x: &'s mut [f32],
    y: &'s mut [f32],
    save: &'s mut [f32],
    cat: &'s mut [f32],
    stack: &'s mut [f32],
    scratch: &'s mut [f32],
}

fn take<'s>(rest: &mut &'s mut [f32], n: u32) -> &'s mut [f32] {
    let all = core::mem::take(rest);
    let n = (n as usize).min(all.len());
    let (head, tail) = all.split_at_mut(n);
    *rest = tail;
    head
}

/// Splits the workspace; returns (tables, stream state, ring, rest).
fn split_front<'s>(
    ws: &'s mut [f32],
    l: &Layout,
) -> (&'s mut [f32], &'s mut [f32], &'s mut [f32], &'s mut [f32]) {
    let mut rest = ws;
    let tables = take(&mut rest, l.state);
    let state = take(&mut rest, l.ring.saturating_sub(l.state));
    let ring = take(&mut rest, l.x.saturating_sub(l.ring));
    (tables, state, ring, rest)
}

fn parts<'s>(ws: &'s mut [f32], l: &Layout) -> Parts<'s> {
    let (tables, _, _, mut rest) = split_front(ws, l);
    Parts {
        tables,
        x: take(&mut rest, l.buf_len),
        y: take(&mut rest, l.buf_len),
        save: take(&mut rest, l.save_len),
        cat: take(&mut rest, l.cat_len),
        stack: take(&mut rest, l.stack_len),
        scratch: take(&mut rest, l.scratch_len),
    }
}

impl<'p, 'a, 'w> Runtime<'p, 'a, 'w> {
    /// Binds a pipeline to a workspace of at least [`Pipeline::workspace_len`] words and
    /// computes its coefficient tables (windows, mel filters, DCT matrices).
    ///
    /// Errors: [`Error::WorkspaceTooSmall`] naming the words needed.
    pub fn new(p: &'p Pipeline<'a>, ws: &'w mut [f32]) -> Result<Self, Error> {
        let needed = p.workspace_len();
        if ws.len() < needed {
            return Err(Error::WorkspaceTooSmall {
                needed,
                got: ws.len(),
            });
        }
        let cursor = match p.desc.input {
            Input::Signal {
                axes,
                window,
                stride,
                ..
            } => Cursor::new(axes as usize, window as usize, stride as usize),
            _ => Cursor::new(1, 1, 1),
        };
        let mut rt = Runtime {
            p,
            ws,
            cursor,
            filled: 0,
            next_slot: 0,
            since_output: 0,
            new_frames: 0,
        };
        rt.init_tables();
        rt.reset();
        Ok(rt)
    }

    /// As [`Runtime::new`], but copies the coefficient tables instead of designing them:
    /// `tables` holds [`Pipeline::tables_len`] little-endian `f32` words, as
    /// `edgeflow_dsp::host::tables` computes them on the host and the artifact's
    /// `PipelineTables` section stores them. The tables `Runtime::new` would compute are
    /// the same bits (the design uses `libm` in `f64`, identical on every target), so the
    /// outputs are too; start-up costs a copy instead of the soft-double design.
    ///
    /// Errors: [`Error::WorkspaceTooSmall`]; [`Error::Length`] when `tables` is not
    /// `4 × tables_len()` bytes; [`Error::BadTable`] for a NaN or infinite word. Tables
    /// that are finite but wrong give wrong features, never a panic.
    pub fn with_tables(
        p: &'p Pipeline<'a>,
        ws: &'w mut [f32],
        tables: &[u8],
    ) -> Result<Self, Error> {
        let needed = p.workspace_len();
        if ws.len() < needed {
            return Err(Error::WorkspaceTooSmall {
                needed,
                got: ws.len(),
            });
        }
        let n = p.tables_len();
        if tables.len() != n.saturating_mul(4) {
            return Err(Error::Length {
                what: "precomputed tables (bytes)",
                expected: n.saturating_mul(4),
                got: tables.len(),
            });
        }
        let (dst, _, _, _) = split_front(ws, &p.layout);
        for (index, (d, w)) in dst.iter_mut().zip(tables.chunks_exact(4)).enumerate() {
            let v = f32::from_le_bytes(w.try_into().unwrap_or([0; 4]));
            if !v.is_finite() {
                return Err(Error::BadTable { index });
            }
            *d = v;
        }
        let cursor = match p.desc.input {
            Input::Signal {
                axes,
                window,
                stride,
                ..
            } => Cursor::new(axes as usize, window as usize, stride as usize),
            _ => Cursor::new(1, 1, 1),
        };
        let mut rt = Runtime {
            p,
            ws,
            cursor,
            filled: 0,
            next_slot: 0,
            since_output: 0,
            new_frames: 0,
        };
        rt.reset();
        Ok(rt)
    }

    /// The coefficient tables in use ([`Pipeline::tables_len`] words).
    pub fn tables(&self) -> &[f32] {
        let n = self.p.tables_len().min(self.ws.len());
        self.ws.get(..n).unwrap_or(&[])
    }

    /// The pipeline this runtime executes.
    pub fn pipeline(&self) -> &'p Pipeline<'a> {
        self.p
    }

    /// Forgets every sample, filter state and stacked frame (the tables stay).
    pub fn reset(&mut self) {
        let l = self.p.layout;
        let (_, state, ring, rest) = split_front(self.ws, &l);
        state.iter_mut().for_each(|v| *v = 0.0);
        ring.iter_mut().for_each(|v| *v = 0.0);
        rest.iter_mut().for_each(|v| *v = 0.0);
        self.cursor.reset();
        self.filled = 0;
        self.next_slot = 0;
        self.since_output = 0;
        self.new_frames = 0;
    }

    /// For a pipeline that stacks frames: how many of the frames in the last output tensor
    /// [`Runtime::process`] wrote were not in the output before it — all `frames` for the
    /// first output after [`Runtime::new`] or [`Runtime::reset`], `hop` in a steady stream
    /// (at most `frames`). Every signal pipeline stacks frames, the audio front end's
    /// included (a single-frame output reports 1). 0 before the first output and for
    /// inputs that are not signals (vectors, text, images).
    pub fn new_frames(&self) -> u32 {
        self.new_frames
    }

    fn init_tables(&mut self) {
        let p = self.p;
        let rate = match p.desc.input {
            Input::Signal { rate_hz, .. } => rate_hz,
            _ => 0.0,
        };
        let (tables, _, _, _) = split_front(self.ws, &p.layout);
        // Some designs fill only part of their table (the mel filterbank writes the
        // weights it uses, not its worst-case reserve): start from zeros so that the
        // tables never depend on what the workspace held before (a previous model's
        // data on a device that switched models), and equal the host's bit for bit.
        tables.iter_mut().for_each(|v| *v = 0.0);
        for (b, plan) in blocks_in_order(p).zip(p.plans.iter()) {
            let start = plan.table as usize;
            let Some(t) = tables.get_mut(start..start + plan.table_len as usize) else {
                continue;
            };
            match b {
                Block::Window { kind, periodic } => kernels::init_window(t, *kind, *periodic),
                Block::Mel {
                    bands,
                    fmin,
                    fmax,
                    scale,
                    norm,
                } => {
                    let n_fft = match plan.input.kind {
                        Kind::Spectrum { n_fft, .. } => n_fft as usize,
                        _ => 0,
                    };
                    kernels::init_mel(t, *bands as usize, n_fft, rate, *fmin, *fmax, *scale, *norm);
                }
                Block::Dct {
                    coefficients,
                    lifter,
                } => {
                    kernels::init_dct(t, *coefficients as usize, plan.input.cols as usize, *lifter)
                }
                Block::Iir { sos, .. } => {
                    for (d, v) in t.iter_mut().zip(sos.iter()) {
                        *d = v;
                    }
                }
                Block::AudioFrontend(_) => {
                    if let (Some(fe), Some(g)) = (&p.frontend, frontend_geometry(p)) {
                        crate::frontend::init_tables(t, fe, rate, &g);
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether the ring holds raw 16-bit samples for [`Block::AudioFrontend`].
    fn pcm(&self) -> bool {
        self.p.frontend.is_some()
    }

    fn signal_only(&self) -> Result<(), Error> {
        match self.p.desc.input {
            Input::Signal { .. } => Ok(()),
            _ => Err(Error::WrongInputKind {
                expected: input_kind(self.p),
            }),
        }
    }

    /// Pushes interleaved samples (a chunk of any size; it may end mid time step) through
    /// the stream blocks into the ring buffer, until a window is complete.
    ///
    /// Returns the values consumed and whether a window is waiting; while one is, nothing
    /// is consumed: call [`Runtime::process`]. Errors: [`Error::WrongInputKind`].
    pub fn push(&mut self, samples: &[f32]) -> Result<crate::Push, Error> {
        let pcm = self.pcm();
        self.push_values(samples, pcm)
    }

    /// [`Runtime::push`]; `to_pcm` converts each value to the ring's 16-bit sample word
    /// (pipelines starting with [`Block::AudioFrontend`]).
    fn push_values(&mut self, samples: &[f32], to_pcm: bool) -> Result<crate::Push, Error> {
        self.signal_only()?;
        let p = self.p;
        let stream = &p.desc.stream;
        let (tables, state, ring, _) = split_front(self.ws, &p.layout);
        let axes = match p.desc.input {
            Input::Signal { axes, .. } => axes as usize,
            _ => 1,
        };
        let consumed = self.cursor.push(ring, samples, |axis, values| {
            if to_pcm {
                values
                    .iter_mut()
                    .for_each(|v| *v = crate::frontend::pcm_from_f32(*v));
            }
            stream_apply(stream, &p.plans, tables, state, axes, axis, values)
        });
        Ok(crate::Push {
            consumed,
            ready: self.cursor.ready(),
        })
    }

    /// As [`Runtime::push`] for 16-bit samples (each converted exactly with `as f32`;
    /// scale them with a `scale` stream block). Converts at most 64 values per call.
    pub fn push_i16(&mut self, samples: &[i16]) -> Result<crate::Push, Error> {
        let mut buf = [0.0f32; 64];
        let n = samples.len().min(buf.len());
        if self.pcm() {
            // The front end's ring holds the samples' bits: no conversion to float.
            for (d, &s) in buf.iter_mut().zip(samples) {
                *d = crate::frontend::pcm_word(s);
            }
            return self.push_values(&buf[..n], false);
        }
        for (d, &s) in buf.iter_mut().zip(samples) {
            *d = s as f32;
        }
        self.push(&buf[..n])
    }

    /// Whether a complete window is waiting for [`Runtime::process`].
    pub fn window_ready(&self) -> bool {
        self.cursor.ready()
    }

    /// Runs the blocks on the waiting window and stacks its features. When `frames`
    /// windows are stacked (and `hop` new ones since the last output), writes the output
    /// tensor into `out` ([`Pipeline::output_bytes`] long) and returns `true`.
    ///
    /// Errors: [`Error::NoWindow`], [`Error::Length`] for a wrong `out` length,
    /// [`Error::WrongInputKind`].
    pub fn process(&mut self, out: &mut [u8]) -> Result<bool, Error> {
        self.signal_only()?;
        self.check_out(out)?;
        if !self.cursor.ready() {
            return Err(Error::NoWindow);
        }
        let p = self.p;
        let l = p.layout;
        if self.frontend() {
            self.cursor.clear();
            return Ok(self.run_matrix(1, out));
        }
        if self.window_spectrum() {
            self.cursor.clear();
            return Ok(self.run_matrix(2, out));
        }
        {
            let (_, _, ring, rest) = split_front(self.ws, &l);
            let x = rest.get_mut(..l.buf_len as usize).unwrap_or(&mut []);
            self.cursor.copy_window(ring, x);
        }
        self.cursor.clear();
        Ok(self.run_matrix(0, out))
    }

    /// The fused start of an MFCC-style pipeline: when the first two blocks are `window`
    /// and `spectrum` on one axis, multiplies the ring's samples by the window straight
    /// into the FFT buffer (instead of copy, window, copy) and leaves the spectrum in `x`.
    /// The same products and the same FFT input, so the same bits as the block-by-block
    /// path. Returns `false`, doing nothing, when the pipeline does not start that way.
    fn window_spectrum(&mut self) -> bool {
        let p = self.p;
        let (Some(Block::Window { .. }), Some(Block::Spectrum { n_fft, power })) =
            (p.desc.blocks.first(), p.desc.blocks.get(1))
        else {
            return false;
        };
        let Input::Signal { axes: 1, .. } = p.desc.input else {
            return false;
        };
        let first = p.desc.stream.len();
        let (Some(wp), Some(sp)) = (p.plans.get(first), p.plans.get(first + 1)) else {
            return false;
        };
        let (n_fft, win) = (*n_fft as usize, wp.table_len as usize);
        if wp.input.len() != win || sp.input.len() != win || win > n_fft {
            return false;
        }
        let l = p.layout;
        let (tables, _, ring, rest) = split_front(self.ws, &l);
        let mut rest = rest;
        let x = take(&mut rest, l.buf_len);
        // y, save, cat and stack lie between x and the scratch region.
        let skip = l.scratch.saturating_sub(l.y);
        let _ = take(&mut rest, skip);
        let scratch = take(&mut rest, l.scratch_len);
        let t0 = wp.table as usize;
        let (Some(table), Some(buf), Some(dst)) = (
            tables.get(t0..t0 + win),
            scratch.get_mut(..n_fft),
            x.get_mut(..sp.output.len()),
        ) else {
            return false;
        };
        let (head, tail) = buf.split_at_mut(win);
        if !self.cursor.window_into(ring, table, head) {
            return false;
        }
        tail.iter_mut().for_each(|v| *v = 0.0);
        kernels::spectrum_row(buf, dst, *power);
        true
    }

    /// [`Block::AudioFrontend`] as the first block: runs it on the ring's samples and
    /// leaves its features in `x`. Returns `false`, doing nothing, for other pipelines.
    fn frontend(&mut self) -> bool {
        let p = self.p;
        let Some(fe) = &p.frontend else {
            return false;
        };
        let (Some(g), Some(plan)) = (frontend_geometry(p), p.plans.first()) else {
            return false;
        };
        let l = p.layout;
        let (tables, state, ring, rest) = split_front(self.ws, &l);
        let mut rest = rest;
        let x = take(&mut rest, l.buf_len);
        let skip = l.scratch.saturating_sub(l.y);
        let _ = take(&mut rest, skip);
        let scratch = take(&mut rest, l.scratch_len);
        let (t0, s0) = (plan.table as usize, plan.state as usize);
        let (Some(t), Some(st)) = (
            tables.get(t0..t0 + plan.table_len as usize),
            state.get_mut(s0..s0 + plan.state_len as usize),
        ) else {
            return false;
        };
        let (oldest, newest) = self.cursor.window_parts(ring);
        crate::frontend::process(fe, &g, t, st, scratch, oldest, newest, x);
        true
    }

    /// Pushes all of `samples` and processes every window that completes, calling
    /// `on_output` with the output tensor bytes (in `out`) each time one is ready.
    pub fn feed(
        &mut self,
        mut samples: &[f32],
        out: &mut [u8],
        mut on_output: impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        self.check_out(out)?;
        while !samples.is_empty() {
            let r = self.push(samples)?;
            samples = samples.get(r.consumed..).unwrap_or(&[]);
            if r.ready && self.process(out)? {
                on_output(out);
            }
        }
        Ok(())
    }

    /// As [`Runtime::feed`] for 16-bit samples.
    pub fn feed_i16(
        &mut self,
        mut samples: &[i16],
        out: &mut [u8],
        mut on_output: impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        self.check_out(out)?;
        while !samples.is_empty() {
            let r = self.push_i16(samples)?;
            samples = samples.get(r.consumed..).unwrap_or(&[]);
            if r.ready && self.process(out)? {
                on_output(out);
            }
        }
        Ok(())
    }

    /// Runs a vector pipeline on `values` ([`Pipeline::input_len`] of them) into `out`.
    pub fn run_vector(&mut self, values: &[f32], out: &mut [u8]) -> Result<(), Error> {
        let Input::Vector { len } = self.p.desc.input else {
            return Err(Error::WrongInputKind {
                expected: input_kind(self.p),
            });
        };
        self.check_out(out)?;
        if values.len() != len as usize {
            return Err(Error::Length {
                what: "input vector",
                expected: len as usize,
                got: values.len(),
            });
        }
        let l = self.p.layout;
        let x = parts(self.ws, &l).x;
        for (d, &v) in x.iter_mut().zip(values) {
            *d = v;
        }
        self.run_matrix(0, out);
        Ok(())
    }

    /// Runs a text pipeline on up to `max_tokens` tokens into `out`. Missing tokens pad
    /// with id -1 (zeros after one-hot).
    pub fn run_tokens(&mut self, tokens: &[&str], out: &mut [u8]) -> Result<(), Error> {
        let Input::Text { max_tokens } = self.p.desc.input else {
            return Err(Error::WrongInputKind {
                expected: input_kind(self.p),
            });
        };
        self.check_out(out)?;
        if tokens.len() > max_tokens as usize {
            return Err(Error::Length {
                what: "tokens (at most max_tokens)",
                expected: max_tokens as usize,
                got: tokens.len(),
            });
        }
        let p = self.p;
        let x = parts(self.ws, &p.layout).x;
        x.iter_mut().for_each(|v| *v = -1.0);
        let first = p.desc.blocks.first();
        for (d, t) in x.iter_mut().zip(tokens) {
            *d = match first {
                Some(Block::Vocabulary {
                    tokens: vocab,
                    oov_buckets,
                }) => match vocab.position(t) {
                    Some(id) => id as f32,
                    None if *oov_buckets > 0 => {
                        let v = vocab.len() as u64;
                        (v + kernels::fnv1a64(0, t) % *oov_buckets as u64) as f32
                    }
                    None => -1.0,
                },
                Some(Block::Hash { buckets, seed }) => {
                    (kernels::fnv1a64(*seed, t) % (*buckets).max(1) as u64) as f32
                }
                _ => -1.0,
            };
        }
        self.run_matrix(1, out);
        Ok(())
    }

    /// Runs an image pipeline on 8-bit pixels (row-major, channels interleaved,
    /// `width * height * channels` bytes) into `out` (`[h, w, c]`, channels interleaved).
    pub fn run_image(&mut self, pixels: &[u8], out: &mut [u8]) -> Result<(), Error> {
        let Some(ip) = self.p.image else {
            return Err(Error::WrongInputKind {
                expected: input_kind(self.p),
            });
        };
        self.check_out(out)?;
        let expected = self.p.input_len();
        if pixels.len() != expected {
            return Err(Error::Length {
                what: "image bytes",
                expected,
                got: pixels.len(),
            });
        }
        run_image(
            self.p,
            &ip,
            |i| pixels.get(i).copied().unwrap_or(0) as f32,
            out,
        );
        Ok(())
    }

    /// As [`Runtime::run_image`] with the pixels given as `f32` values (a device that
    /// receives samples as `f32` buffers them in its workspace). Each value is first
    /// rounded to the nearest integer (half away from zero) and clamped to `0..=255`, NaN
    /// reads as 0, so the output equals `run_image` on the corresponding 8-bit image, bit
    /// for bit. Errors as `run_image`; never panics.
    pub fn run_image_values(&mut self, pixels: &[f32], out: &mut [u8]) -> Result<(), Error> {
        let Some(ip) = self.p.image else {
            return Err(Error::WrongInputKind {
                expected: input_kind(self.p),
            });
        };
        self.check_out(out)?;
        let expected = self.p.input_len();
        if pixels.len() != expected {
            return Err(Error::Length {
                what: "image values",
                expected,
                got: pixels.len(),
            });
        }
        run_image(
            self.p,
            &ip,
            |i| pixels.get(i).copied().map_or(0.0, pixel_value),
            out,
        );
        Ok(())
    }

    fn check_out(&self, out: &[u8]) -> Result<(), Error> {
        let expected = self.p.output_bytes();
        if out.len() != expected {
            return Err(Error::Length {
                what: "output bytes",
                expected,
                got: out.len(),
            });
        }
        Ok(())
    }

    /// Runs `blocks` (from `first`), branches and post on `x`, stacks the features and
    /// writes the output when due. Returns whether `out` was written.
    fn run_matrix(&mut self, first: usize, out: &mut [u8]) -> bool {
        let p = self.p;
        let l = p.layout;
        let d = &p.desc;
        let rate = match d.input {
            Input::Signal { rate_hz, .. } => rate_hz,
            _ => 0.0,
        };
        let mut ps = parts(self.ws, &l);
        let stream_n = d.stream.len();
        let mut idx = stream_n + first;
        // `in_x`: the current data is in x (else in y).
        let mut in_x = true;
        for b in d.blocks.iter().skip(first) {
            run_one(b, p.plans.get(idx), rate, &mut ps, &mut in_x);
            idx += 1;
        }
        if !d.branches.is_empty() {
            let n = ps.save.len();
            let src = if in_x { &*ps.x } else { &*ps.y };
            if let Some(s) = src.get(..n) {
                ps.save.copy_from_slice(s);
            }
            let mut off = 0usize;
            for br in d.branches.iter() {
                let n = ps.save.len().min(ps.x.len());
                ps.x[..n].copy_from_slice(&ps.save[..n]);
                in_x = true;
                let mut len = 0;
                for b in br.blocks.iter() {
                    let plan = p.plans.get(idx);
                    len = plan.map_or(0, |pl| pl.output.len());
                    run_one(b, plan, rate, &mut ps, &mut in_x);
                    idx += 1;
                }
                let src = if in_x { &*ps.x } else { &*ps.y };
                if let (Some(dst), Some(s)) = (ps.cat.get_mut(off..off + len), src.get(..len)) {
                    dst.copy_from_slice(s);
                }
                off += len;
            }
            let n = ps.cat.len().min(ps.x.len());
            ps.x[..n].copy_from_slice(&ps.cat[..n]);
            in_x = true;
        }
        for b in d.post.iter() {
            run_one(b, p.plans.get(idx), rate, &mut ps, &mut in_x);
            idx += 1;
        }
        // Stack the frame.
        let f = p.features as usize;
        let frames = d.output.frames.max(1);
        let slot = self.next_slot as usize;
        let src = if in_x { &*ps.x } else { &*ps.y };
        if let (Some(dst), Some(s)) = (ps.stack.get_mut(slot * f..slot * f + f), src.get(..f)) {
            dst.copy_from_slice(s);
        }
        self.next_slot = (self.next_slot + 1) % frames;
        self.filled = (self.filled + 1).min(frames);
        self.since_output = self.since_output.saturating_add(1);
        let hop = if d.output.hop == 0 {
            frames
        } else {
            d.output.hop
        };
        if self.filled < frames || self.since_output < hop {
            return false;
        }
        self.new_frames = self.since_output.min(frames);
        self.since_output = 0;
        // Oldest first: slots next_slot.., then ..next_slot.
        let split = self.next_slot as usize * f;
        let (newer, older) = ps.stack.split_at(split.min(ps.stack.len()));
        let values = older.iter().chain(newer.iter()).copied();
        write_output(p, values, out);
        true
    }
}

/// The front end's sizes, when the pipeline starts with [`Block::AudioFrontend`] (its
/// validation passed when the pipeline was built).
fn frontend_geometry(p: &Pipeline<'_>) -> Option<crate::frontend::Geometry> {
    let (Some(fe), Input::Signal { window, .. }) = (&p.frontend, p.desc.input) else {
        return None;
    };
    Some(crate::frontend::Geometry::new(window, fe.channels))
}

/// The name of the pipeline's input kind, for errors.
fn input_kind(p: &Pipeline<'_>) -> &'static str {
    match p.desc.input {
        Input::Signal { .. } => "signal",
        Input::Vector { .. } => "vector",
        Input::Text { .. } => "text",
        Input::Image { .. } => "image",
    }
}

/// All blocks in plan order: stream, blocks, branches, post.
pub(crate) fn blocks_in_order<'s, 'a>(
    p: &'s Pipeline<'a>,
) -> impl Iterator<Item = &'s Block<'a>> + 's {
    let d = &p.desc;
    d.stream
        .iter()
        .chain(d.blocks.iter())
        .chain(d.branches.iter().flat_map(|b| b.blocks.iter()))
        .chain(d.post.iter())
}

/// Applies the stream blocks, block by block, to a run of incoming values (interleaved,
/// the first of axis `axis0`). Per axis each block sees the values in time order, exactly
/// as if they were processed one by one.
fn stream_apply(
    stream: &[Block<'_>],
    plans: &[BlockPlan],
    tables: &[f32],
    state: &mut [f32],
    axes: usize,
    axis0: usize,
    values: &mut [f32],
) {
    let axes = axes.max(1);
    for (b, pl) in stream.iter().zip(plans) {
        match b {
            Block::Scale { scale, offset } => {
                for v in values.iter_mut() {
                    *v = *v * *scale + *offset;
                }
            }
            Block::Clip { min, max } => {
                for v in values.iter_mut() {
                    *v = kernels::clip1(*v, *min, *max);
                }
            }
            Block::PreEmphasis { coef } => {
                let s0 = pl.state as usize;
                let Some(prev) = state.get_mut(s0..s0 + axes) else {
                    continue;
                };
                if let [p] = prev {
                    // One axis: the previous sample stays in a register.
                    let mut last = *p;
                    for v in values.iter_mut() {
                        let x = *v;
                        *v = x - *coef * last;
                        last = x;
                    }
                    *p = last;
                    continue;
                }
                let mut a = axis0 % axes;
                for v in values.iter_mut() {
                    if let Some(p) = prev.get_mut(a) {
                        let x = *v;
                        *v = x - *coef * *p;
                        *p = x;
                    }
                    a += 1;
                    if a == axes {
                        a = 0;
                    }
                }
            }
            Block::Iir { .. } => {
                let per_axis = pl.state_len as usize / axes;
                let (s0, t0) = (pl.state as usize, pl.table as usize);
                let (Some(sos), Some(st)) = (
                    tables.get(t0..t0 + pl.table_len as usize),
                    state.get_mut(s0..s0 + pl.state_len as usize),
                ) else {
                    continue;
                };
                let mut a = axis0 % axes;
                for v in values.iter_mut() {
                    if let Some(z) = st.get_mut(a * per_axis..(a + 1) * per_axis) {
                        *v = kernels::iir_step(*v, sos, z);
                    }
                    a += 1;
                    if a == axes {
                        a = 0;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Runs one matrix block from the current buffer into the other and flips `in_x`.
fn run_one(
    b: &Block<'_>,
    plan: Option<&BlockPlan>,
    rate: f32,
    ps: &mut Parts<'_>,
    in_x: &mut bool,
) {
    let Some(pl) = plan else {
        return;
    };
    let (src, dst) = if *in_x {
        (&*ps.x, &mut *ps.y)
    } else {
        (&*ps.y, &mut *ps.x)
    };
    let (n_in, n_out) = (pl.input.len(), pl.output.len());
    let (Some(src), Some(dst)) = (src.get(..n_in), dst.get_mut(..n_out)) else {
        return;
    };
    let t0 = pl.table as usize;
    let table = ps.tables.get(t0..t0 + pl.table_len as usize).unwrap_or(&[]);
    let cols = pl.input.cols as usize;
    match b {
        Block::Scale { scale, offset } => kernels::scale(src, dst, *scale, *offset),
        Block::ZScore { mean, std } => kernels::zscore(src, dst, cols, mean, std),
        Block::MinMax { min, max } => kernels::min_max(src, dst, cols, min, max),
        Block::Clip { min, max } => kernels::clip(src, dst, *min, *max),
        Block::PreEmphasis { coef } => kernels::pre_emphasis(src, dst, cols, *coef),
        Block::Iir { .. } => kernels::iir(src, dst, cols, table, ps.scratch),
        Block::Stats { stats } => kernels::stats(src, dst, cols, stats),
        Block::Window { .. } => kernels::window(src, dst, table),
        Block::Spectrum { n_fft, power } => {
            kernels::spectrum(src, dst, cols, *n_fft as usize, *power, ps.scratch)
        }
        Block::Log { base, floor } => kernels::log(src, dst, *base, *floor),
        Block::BandPower { edges_hz } => {
            let (n_fft, power) = match pl.input.kind {
                Kind::Spectrum { n_fft, power } => (n_fft, power),
                _ => (1, true),
            };
            let bin_hz = rate / n_fft as f32;
            kernels::band_power(src, dst, cols, bin_hz, edges_hz, !power)
        }
        Block::Mel { bands, .. } => kernels::mel(src, dst, cols, *bands as usize, table),
        Block::Dct { coefficients, .. } => {
            kernels::dct(src, dst, cols, *coefficients as usize, table)
        }
        Block::OneHot { depth, reduce } => {
            kernels::one_hot(src, dst, cols, *depth as usize, *reduce)
        }
        Block::Bucketize { boundaries } => kernels::bucketize(src, dst, boundaries),
        // Image and token blocks never reach the matrix path (validation).
        Block::Crop { .. }
        | Block::Resize { .. }
        | Block::Grayscale { .. }
        | Block::Vocabulary { .. }
        | Block::Hash { .. }
        | Block::AudioFrontend(_) => dst.copy_from_slice(src.get(..n_out).unwrap_or(&[])),
    }
    *in_x = !*in_x;
}

/// Writes the output tensor: `f32` little-endian, or quantized `i8`.
fn write_output(p: &Pipeline<'_>, values: impl Iterator<Item = f32>, out: &mut [u8]) {
    match p.desc.output.quantize {
        Some(q) => {
            for (o, v) in out.iter_mut().zip(values) {
                *o = kernels::quantize(v, q.scale, q.zero_point) as u8;
            }
        }
        None => {
            for (o, v) in out.chunks_exact_mut(4).zip(values) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Source coordinate of output index `o` along one axis.
#[derive(Clone, Copy)]
struct Tap {
    lo: usize,
    hi: usize,
    frac: f32,
}

fn tap(o: u32, in_size: u32, out_size: u32, method: Option<Interpolation>) -> Tap {
    let last = in_size.saturating_sub(1) as usize;
    match method {
        None => Tap {
            lo: (o as usize).min(last),
            hi: (o as usize).min(last),
            frac: 0.0,
        },
        Some(Interpolation::Nearest) => {
            let scale = in_size as f32 / out_size as f32;
            let i = libm::floorf((o as f32 + 0.5) * scale);
            let i = if i < 0.0 { 0 } else { (i as usize).min(last) };
            Tap {
                lo: i,
                hi: i,
                frac: 0.0,
            }
        }
        Some(Interpolation::Bilinear) => {
            let scale = in_size as f32 / out_size as f32;
            let x = (o as f32 + 0.5) * scale - 0.5;
            let f = libm::floorf(x);
            let lo = if f < 0.0 { 0 } else { (f as usize).min(last) };
            let c = libm::ceilf(x);
            let hi = if c < 0.0 { 0 } else { (c as usize).min(last) };
            Tap {
                lo,
                hi,
                frac: x - f,
            }
        }
    }
}

/// The fused image path: sample each output pixel through crop/resize, then apply the
/// per-pixel blocks and write it.
/// An `f32` sample as an 8-bit pixel value (as `f32`): rounded half away from zero,
/// clamped to `0..=255`; NaN is 0.
fn pixel_value(v: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        libm::roundf(v).clamp(0.0, 255.0)
    }
}

fn run_image(p: &Pipeline<'_>, ip: &ImagePlan, pixel: impl Fn(usize) -> f32, out: &mut [u8]) {
    let [cx, cy, cw, ch] = ip.crop;
    let c_in = ip.channels as usize;
    let row_stride = ip.width as usize * c_in;
    let c_out = ip.out_channels as usize;
    let q = p.desc.output.quantize;
    let at = |x: usize, y: usize, c: usize| -> f32 {
        let i = (cy as usize + y) * row_stride + (cx as usize + x) * c_in + c;
        pixel(i)
    };
    let mut o = 0usize;
    for oy in 0..ip.out_h {
        let ty = tap(oy, ch, ip.out_h, ip.resize);
        for ox in 0..ip.out_w {
            let tx = tap(ox, cw, ip.out_w, ip.resize);
            let mut px = [0.0f32; 4];
            for (c, v) in px.iter_mut().enumerate().take(c_in) {
                *v = match ip.resize {
                    Some(Interpolation::Bilinear) => {
                        let tl = at(tx.lo, ty.lo, c);
                        let tr = at(tx.hi, ty.lo, c);
                        let bl = at(tx.lo, ty.hi, c);
                        let br = at(tx.hi, ty.hi, c);
                        let top = tl + (tr - tl) * tx.frac;
                        let bottom = bl + (br - bl) * tx.frac;
                        top + (bottom - top) * ty.frac
                    }
                    _ => at(tx.lo, ty.lo, c),
                };
            }
            let mut channels = c_in;
            for b in p.desc.blocks.iter() {
                match b {
                    Block::Grayscale { weights } => {
                        px[0] = weights[0] * px[0] + weights[1] * px[1] + weights[2] * px[2];
                        channels = 1;
                    }
                    Block::Scale { scale, offset } => {
                        for v in px.iter_mut().take(channels) {
                            *v = *v * *scale + *offset;
                        }
                    }
                    Block::ZScore { mean, std } => {
                        for (c, v) in px.iter_mut().enumerate().take(channels) {
                            *v = (*v - mean.channel(c)) / std.channel(c);
                        }
                    }
                    Block::MinMax { min, max } => {
                        for (c, v) in px.iter_mut().enumerate().take(channels) {
                            let lo = min.channel(c);
                            *v = (*v - lo) / (max.channel(c) - lo);
                        }
                    }
                    Block::Clip { min, max } => {
                        for v in px.iter_mut().take(channels) {
                            *v = kernels::clip1(*v, *min, *max);
                        }
                    }
                    _ => {}
                }
            }
            for &v in px.iter().take(c_out) {
                match q {
                    Some(q) => {
                        if let Some(b) = out.get_mut(o) {
                            *b = kernels::quantize(v, q.scale, q.zero_point) as u8;
                        }
                        o += 1;
                    }
                    None => {
                        if let Some(b) = out.get_mut(o..o + 4) {
                            b.copy_from_slice(&v.to_le_bytes());
                        }
                        o += 4;
                    }
                }
            }
        }
    }
}
