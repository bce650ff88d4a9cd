use core::ops::Range;

use edgeflow_format::graph::{Op, OpDef, TensorDef};

use crate::kernels::{self, TensorIn, TensorOut};
use crate::model::arena_range;
use crate::{Error, Model};

/// Runs a validated [`Model`] in a caller-provided arena.
///
/// The arena holds every activation tensor and scratch buffer at the offsets of the
/// model's memory plan; weights are read from the artifact in place.
///
/// The value also holds the decoded record of the op being executed (an [`OpDef`], up
/// to [`MAX_OP_INPUTS`](edgeflow_format::graph::MAX_OP_INPUTS) tensor descriptions:
/// about 0.7 KB on 32-bit targets), so that it is not on the stack under every kernel during [`Runtime::invoke`], as TFLM
/// keeps its node structures in the arena rather than on the stack. Place the `Runtime`
/// where that memory should come from (a `static` cell, or the caller's stack).
///
/// With the `std` feature, `Runtime::invoke_packed` decodes every op record once, on
/// its first call, into a heap list kept in the value (the device path, `invoke`, still
/// decodes each record per op and allocates nothing).
pub struct Runtime<'m, 'a, 'r> {
    model: &'m Model<'a>,
    arena: &'r mut [u8],
    /// The op record being executed, decoded into in place for each op.
    op: OpDef<'a>,
    /// Host only: every op record in execution order, decoded by the first
    /// `invoke_packed` (empty before), so later inferences do not decode again: on the
    /// small MLPerf Tiny AD model the decoding was about a quarter of an inference
    /// (BENCHMARKS.md (d), addendum "op records decoded once on the host").
    #[cfg(feature = "std")]
    decoded: std::vec::Vec<OpDef<'a>>,
}

impl<'m, 'a, 'r> Runtime<'m, 'a, 'r> {
    /// Binds a model to an arena.
    ///
    /// Errors: [`Error::ArenaTooSmall`] (naming the bytes needed) or
    /// [`Error::ArenaMisaligned`]. A larger arena is fine; only the planned prefix is used.
    pub fn new(model: &'m Model<'a>, arena: &'r mut [u8]) -> Result<Self, Error> {
        let needed = model.arena_bytes();
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall {
                needed,
                got: arena.len(),
            });
        }
        let align = model.header().arena_align as usize;
        if (arena.as_ptr() as usize).checked_rem(align) != Some(0) {
            return Err(Error::ArenaMisaligned { align });
        }
        Ok(Self {
            model,
            arena,
            op: OpDef::empty(),
            #[cfg(feature = "std")]
            decoded: std::vec::Vec::new(),
        })
    }

    /// The model this runtime executes.
    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    fn io(&self, list: &[TensorDef<'a>], index: usize) -> Result<Range<usize>, Error> {
        list.get(index)
            .and_then(arena_range)
            .ok_or(Error::NoSuchTensor {
                index,
                count: list.len(),
            })
    }

    /// The bytes of graph input `index` in the arena (little-endian elements), to fill
    /// before [`Runtime::invoke`].
    pub fn input_mut(&mut self, index: usize) -> Result<&mut [u8], Error> {
        let r = self.io(&self.model.header().inputs, index)?;
        // In bounds: `new` checked the arena against the plan, which `parse` checked.
        let (needed, got) = (self.model.arena_bytes(), self.arena.len());
        self.arena
            .get_mut(r)
            .ok_or(Error::ArenaTooSmall { needed, got })
    }

    /// The bytes of graph output `index`, valid after [`Runtime::invoke`].
    pub fn output(&self, index: usize) -> Result<&[u8], Error> {
        let r = self.io(&self.model.header().outputs, index)?;
        let (needed, got) = (self.model.arena_bytes(), self.arena.len());
        self.arena
            .get(r)
            .ok_or(Error::ArenaTooSmall { needed, got })
    }

    /// Runs every op once, in order. Never panics on a model that passed
    /// [`Model::parse`]; returns the first error a kernel reports.
    ///
    /// Never inlined: its frame (the op loop's state; on the speed class also the
    /// current op's input list) then sits below the caller's, where a stack measurement
    /// started before the call sees it (inlined, LLVM hoisted those locals into the
    /// caller's frame, and the firmware's stack painting did not count them).
    #[inline(never)]
    pub fn invoke(&mut self) -> Result<(), Error> {
        self.invoke_with(|_, _| {})
    }

    /// Like [`Runtime::invoke`], calling `after_op(position, source_op_index)` after each
    /// op (for per-op profiling on a device).
    pub fn invoke_with(&mut self, after_op: impl FnMut(usize, u32)) -> Result<(), Error> {
        self.run(after_op)
    }

    /// Runs every op like [`Runtime::invoke`], the weighted int8 ops on the host-only
    /// packed weights of `packed` (prepared once from this model by
    /// [`crate::PackedModel::new`]), large CONV_2D ops split over up to
    /// [`crate::PackedModel::threads`] threads. The outputs are bit-identical to
    /// [`Runtime::invoke`]'s whatever the thread count. The arena is used exactly as by
    /// `invoke`; the packed kernels' work buffer (row buffers, framed input copies)
    /// lives outside it (one per calling thread, kept between calls), and so do the op records, decoded from the artifact on the
    /// first call and reused by the later ones (heap: one `OpDef` per op).
    ///
    /// Errors: [`Error::InvalidOp`] if `packed` was prepared from another model (its
    /// graph and weights are not this model's), and what [`Runtime::invoke`] returns.
    #[cfg(feature = "std")]
    pub fn invoke_packed(&mut self, packed: &crate::PackedModel) -> Result<(), Error> {
        self.invoke_packed_with(packed, |_, _| {})
    }

    /// [`Runtime::invoke_packed`] calling `after_op(position, source_op_index)` after
    /// each op (per-op profiling on the host).
    #[cfg(feature = "std")]
    pub fn invoke_packed_with(
        &mut self,
        packed: &crate::PackedModel,
        after_op: impl FnMut(usize, u32),
    ) -> Result<(), Error> {
        if !packed.prepared_from(self.model) {
            return Err(Error::InvalidOp {
                op: 0,
                name: "PACKED",
                reason: "the packed weights were prepared from another model",
            });
        }
        let threads = packed.threads();
        if self.decoded.is_empty() {
            self.decoded = self.model.ops().collect();
        }
        let (model, arena, ops) = (self.model, &mut *self.arena, self.decoded.as_slice());
        crate::host::with_work(|work| {
            run_decoded(
                model,
                arena,
                ops,
                |position, d, inputs, out, scratch| {
                    kernels::eval_host(
                        &d.op,
                        packed.op(position),
                        inputs,
                        out,
                        scratch,
                        work,
                        threads,
                    )
                },
                after_op,
            )
        })
    }

    /// The op loop of the device `invoke`s (the host's is `run_decoded`): decodes each op
    /// record into `self.op`, cuts the arena for it and runs its kernel ([`run_op`]),
    /// then calls `after_op`.
    ///
    /// On the size class (`cfg(edgeflow_size)`) each op runs through `Step`: a
    /// weighted op or a pool in a never-inlined [`run_op`] per op kind (a weighted op's
    /// kernel inlined into it; a pool's entry point is never inlined, a frame of its
    /// own under it), the light ops in one shared [`run_op`]; so only the loop's state
    /// (the record reader, the position) stays in this frame while a kernel runs, and
    /// the op's input list and arena slices are in that op's frame, merged with its
    /// kernel's (BENCHMARKS.md (j3): KWS, IC and VWW 816 → 736 B, AD 532 → 460 B). The
    /// speed class keeps [`run_op`] and the dispatch inlined here, each kernel in a frame
    /// of its own (`kernels::outlined`): per-op frames there cost 2.4 KB of code,
    /// 0.03–0.09 % more instructions and AD 32 B more stack (524 against 492 B).
    #[inline(always)]
    fn run(&mut self, mut after_op: impl FnMut(usize, u32)) -> Result<(), Error> {
        let model = self.model;
        let mut ops = model.ops();
        for position in 0..usize::MAX {
            // One record, in `self` rather than on the stack, decoded into for each op.
            if !ops.next_into(&mut self.op) {
                break;
            }
            let (d, arena) = (&self.op, &mut *self.arena);
            #[cfg(edgeflow_size)]
            let ran = kernels::dispatch(&d.op, Step { model, arena, d });
            #[cfg(not(edgeflow_size))]
            let ran = run_op(model, arena, d, |i, o, s| kernels::eval(&d.op, i, o, s));
            match ran {
                Ok(true) => after_op(position, d.source_index),
                Ok(false) => {} // excluded by parse
                Err(e) => return Err(e.error(d)),
            }
        }
        Ok(())
    }
}

/// One op of the size class's device loop ([`Runtime::invoke`]) as a
/// [`kernels::Runner`]: the model, the arena and the op's decoded record, from which
/// [`run_op`] cuts the kernel's arguments.
#[cfg(edgeflow_size)]
struct Step<'s, 'm, 'a> {
    model: &'m Model<'a>,
    arena: &'s mut [u8],
    d: &'s OpDef<'a>,
}

/// A light op's kernel as `Step` runs it, through its vtable.
#[cfg(edgeflow_size)]
type LightKernel<'k> = dyn Fn(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]) + 'k;

#[cfg(edgeflow_size)]
impl kernels::Runner for Step<'_, '_, '_> {
    type Out = Result<bool, Unprepared>;

    #[inline(always)]
    fn outlined(
        self,
        kernel: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]),
    ) -> Self::Out {
        run_op(self.model, self.arena, self.d, kernel)
    }

    /// The same as [`kernels::Runner::outlined`] here: every kernel already runs inside
    /// its op's own [`run_op`] frame.
    #[inline(always)]
    fn direct(
        self,
        kernel: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]),
    ) -> Self::Out {
        self.outlined(kernel)
    }

    /// `Ok(false)`, as for a record [`Model::parse`] excluded: `check` refuses an op this
    /// build does not link, so no such record reaches the loop.
    #[inline(always)]
    fn unlinked(self) -> Self::Out {
        Ok(false)
    }

    /// Every light op through one [`run_op`], the kernel called through its vtable
    /// (a frame of its own, as `kernels::outlined` gives it on the speed class): one
    /// copy of the argument preparation for them all, where a copy per op kind cost
    /// an application with every op 3.1 KB (lm3s6965evb, BENCHMARKS.md (j3)).
    #[inline(always)]
    fn light(
        self,
        kernel: impl Fn(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]),
    ) -> Self::Out {
        let kernel: &LightKernel<'_> = &kernel;
        run_op(self.model, self.arena, self.d, kernel)
    }
}

/// Cuts op `d`'s arguments out of `arena` ([`prepare`]) and runs `kernel` on them.
/// `Ok(true)` when the op ran (or is a RESHAPE planned in place: nothing to move),
/// `Ok(false)` for a record without an arena output (excluded by [`Model::parse`]).
///
/// The size class never inlines it, one copy per weighted or pool op kind (`Step`; a
/// weighted op's kernel inlined into it) and one for the light ops: the input list
/// lives there, in the frame the kernel runs in (or right above it), and the caller's
/// frame keeps only its loop. The error is a register ([`Unprepared`]), not an
/// [`Error`] in the caller's frame (which would sit under every kernel): the caller
/// builds it from `d`. The speed class inlines it into [`Runtime::invoke`].
#[cfg_attr(edgeflow_size, inline(never))]
#[cfg_attr(not(edgeflow_size), inline(always))]
fn run_op<'s, 'a>(
    model: &Model<'a>,
    arena: &'s mut [u8],
    d: &'s OpDef<'a>,
    kernel: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]),
) -> Result<bool, Unprepared> {
    let Some(out_def) = d.outputs.first() else {
        return Ok(false); // excluded by parse
    };
    let Some(out_r) = arena_range(out_def) else {
        return Ok(false); // excluded by parse
    };
    if matches!(d.op, Op::Reshape)
        && d.inputs.first().and_then(arena_range).as_ref() == Some(&out_r)
    {
        return Ok(true); // planned in place: nothing to move
    }
    // As many slots as this build's ops take (`kernels::RUN_INPUTS`: 4 bytes x 12
    // fewer on the stack without CONCATENATION).
    let mut inputs: heapless::Vec<TensorIn<'_, 'a>, { kernels::RUN_INPUTS }> = heapless::Vec::new();
    let (output, scratch) = prepare(model, arena, d, out_r, &mut inputs)?;
    let out = TensorOut {
        def: out_def,
        data: output,
    };
    kernel(inputs.as_slice(), out, scratch);
    Ok(true)
}

/// The host's op loop ([`Runtime::invoke_packed`]): `Runtime::run`'s, over op records
/// decoded beforehand (`ops`, in execution order) instead of decoding each from the
/// artifact per op, each op through [`run_op`] with `exec`.
#[cfg(feature = "std")]
fn run_decoded<'a>(
    model: &Model<'a>,
    arena: &mut [u8],
    ops: &[OpDef<'a>],
    mut exec: impl FnMut(usize, &OpDef<'a>, &[TensorIn<'_, '_>], TensorOut<'_, '_>, &mut [u8]),
    mut after_op: impl FnMut(usize, u32),
) -> Result<(), Error> {
    for (position, d) in ops.iter().enumerate() {
        let ran = run_op(model, &mut *arena, d, |i, o, s| exec(position, d, i, o, s));
        match ran {
            Ok(true) => after_op(position, d.source_index),
            Ok(false) => {} // excluded by parse
            Err(e) => return Err(e.error(d)),
        }
    }
    Ok(())
}

/// Cuts the arena around op `d`'s output (`out_r`) and scratch, and lists its inputs
/// (arena or constant bytes) into `inputs`; returns the output and scratch bytes.
///
/// Never inlined: the arena's cut (five slices) lives only in this frame, popped before
/// the kernel runs, rather than in the frame every kernel runs under ([`Runtime::invoke`]'s
/// or, on the size class, [`run_op`]'s; see BENCHMARKS.md, footprint, fifth pass).
/// Errors: [`Unprepared`] when the plan's regions cannot be cut apart or an input cannot
/// be read (both excluded by [`Model::parse`]).
#[inline(never)]
fn prepare<'s, 'a>(
    model: &Model<'a>,
    arena: &'s mut [u8],
    d: &'s OpDef<'a>,
    out_r: Range<usize>,
    inputs: &mut heapless::Vec<TensorIn<'s, 'a>, { kernels::RUN_INPUTS }>,
) -> Result<(&'s mut [u8], &'s mut [u8]), Unprepared> {
    let scratch_r = match d.scratch {
        Some(s) => {
            let start = s.offset as usize;
            Some(start..start.checked_add(s.len as usize).ok_or(Unprepared::Plan)?)
        }
        None => None,
    };
    let split = Split::new(arena, out_r, scratch_r).ok_or(Unprepared::Plan)?;
    for t in d.inputs.iter() {
        // `arena_range` inlined: called, its `Option<Range>` went through this frame, which
        // sits under `run_op`'s (the deepest chain of a FULLY_CONNECTED-only build).
        let data = match crate::model::arena_range_inline(t) {
            Some(r) => split.read(r),
            None => model.const_data(t),
        };
        let Some(data) = data else {
            return Err(Unprepared::Input);
        };
        // `kernels::check` (at parse) bounded the inputs by the capacity, so this
        // cannot overflow.
        let _ = inputs.push(TensorIn { def: t, data });
    }
    Ok((split.output, split.scratch))
}

/// Why [`prepare`] could not cut an op's arguments (both excluded by [`Model::parse`]):
/// a value that fits in a register, made an [`Error`] naming the op by
/// [`Unprepared::error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unprepared {
    /// The op's output and scratch regions overlap or lie outside the arena.
    Plan,
    /// An input tensor's bytes lie outside the arena or the artifact.
    Input,
}

impl Unprepared {
    /// The [`Error::InvalidOp`] for op record `d`.
    #[cold]
    #[inline(never)]
    fn error(self, d: &OpDef<'_>) -> Error {
        Error::InvalidOp {
            op: d.source_index,
            name: d.op.name(),
            reason: match self {
                Unprepared::Plan => "output and scratch regions overlap or lie outside the arena",
                Unprepared::Input => "input tensor not readable",
            },
        }
    }
}

/// The arena cut into the mutable output, the mutable scratch, and read-only rest.
struct Split<'s> {
    output: &'s mut [u8],
    scratch: &'s mut [u8],
    /// Read-only pieces with their start offsets.
    ro: [(usize, &'s [u8]); 3],
}

impl<'s> Split<'s> {
    /// Cuts `arena` at the edges of `out` and `scratch`. `None` when a range is empty
    /// (scratch only may be absent), past the arena's end, or overlaps the other; every
    /// step is checked, so no input can make this panic.
    fn new(arena: &'s mut [u8], out: Range<usize>, scratch: Option<Range<usize>>) -> Option<Self> {
        // Order the two regions by position; `Model::parse` guarantees they are
        // non-empty and disjoint (adjacent allowed).
        let (first, second, out_first) = match scratch {
            Some(s) if s.end <= out.start => (s, out, false),
            Some(s) if out.end <= s.start => (out, s, true),
            Some(_) => return None,
            None => (out.clone(), out.end..out.end, true),
        };
        let (pre, rest) = arena.split_at_mut_checked(first.start)?;
        let (a, rest) = rest.split_at_mut_checked(first.end.checked_sub(first.start)?)?;
        let (mid, rest) = rest.split_at_mut_checked(second.start.checked_sub(first.end)?)?;
        let (b, post) = rest.split_at_mut_checked(second.end.checked_sub(second.start)?)?;
        let (output, scratch) = if out_first { (a, b) } else { (b, a) };
        Some(Split {
            output,
            scratch,
            ro: [(0, pre), (first.end, mid), (second.end, post)],
        })
    }

    fn read(&self, r: Range<usize>) -> Option<&'s [u8]> {
        let len = r.end.checked_sub(r.start)?;
        self.ro.iter().find_map(|&(start, piece)| {
            let lo = r.start.checked_sub(start)?;
            piece.get(lo..lo.checked_add(len)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Split;

    #[test]
    fn split_orders_regions_and_never_panics() {
        let mut arena = [0u8; 16];
        // Scratch before, after, adjacent to the output, and absent.
        for (out, scratch) in [
            (8..12, Some(0..4)),
            (0..4, Some(4..8)),
            (4..8, Some(0..4)),
            (4..8, Some(8..16)),
            (4..8, None),
        ] {
            let s = Split::new(&mut arena, out.clone(), scratch.clone()).expect("valid regions");
            assert_eq!(s.output.len(), out.len());
            assert_eq!(s.scratch.len(), scratch.map_or(0, |r| r.len()));
        }
        // What `Model::parse` rejects is refused here too, never a panic: overlap, a range
        // past the arena, an inverted range, and the empty scratch at the output's start
        // found by fuzzing (it used to underflow `second.start - first.end`).
        for (out, scratch) in [
            (4..8, Some(6..10)),
            (12..20, None),
            (core::ops::Range { start: 8, end: 4 }, None),
            (4..8, Some(0..20)),
        ] {
            assert!(Split::new(&mut arena, out, scratch).is_none());
        }
        let s = Split::new(&mut arena, 4..8, Some(4..4)).expect("empty scratch orders first");
        assert_eq!((s.output.len(), s.scratch.len()), (4, 0));
        // Reads outside the read-only pieces are None.
        let s = Split::new(&mut arena, 4..8, None).expect("valid");
        assert!(s.read(0..4).is_some() && s.read(8..16).is_some());
        assert!(s.read(2..6).is_none() && s.read(12..20).is_none());
    }
}
