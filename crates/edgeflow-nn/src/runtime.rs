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
/// The value also holds the decoded record of the op being executed (an
/// [`OpDef`], up to [`MAX_OP_INPUTS`](edgeflow_format::graph::MAX_OP_INPUTS) tensor descriptions: about 0.7 KB on 32-bit targets),
/// so that it is not on the stack under every kernel during [`Runtime::invoke`], as TFLM
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
    /// Never inlined: its frame (the op record being executed, the input list) then sits
    /// below the caller's, where a stack measurement started before the call sees it
    /// (inlined, LLVM hoisted those locals into the caller's frame, and the firmware's
    /// stack painting did not count them).
    #[inline(never)]
    pub fn invoke(&mut self) -> Result<(), Error> {
        self.invoke_with(|_, _| {})
    }

    /// Like [`Runtime::invoke`], calling `after_op(position, source_op_index)` after each
    /// op (for per-op profiling on a device).
    pub fn invoke_with(&mut self, after_op: impl FnMut(usize, u32)) -> Result<(), Error> {
        self.run(
            |_, d, inputs, out, scratch| kernels::eval(&d.op, inputs, out, scratch),
            after_op,
        )
    }

    /// Runs every op like [`Runtime::invoke`], the weighted int8 ops on the host-only
    /// packed weights of `packed` (prepared once from this model by
    /// [`crate::PackedModel::new`]), large CONV_2D ops split over up to
    /// [`crate::PackedModel::threads`] threads. The outputs are bit-identical to
    /// [`Runtime::invoke`]'s whatever the thread count. The arena is used exactly as by
    /// `invoke`; the packed kernels' row buffers live outside it (one per calling thread,
    /// kept between calls), and so do the op records, decoded from the artifact on the
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
    /// record into `self.op`, cuts the arena for each op and calls
    /// `exec(position, op, inputs, output, scratch)`, then `after_op`.
    #[inline(always)]
    fn run(
        &mut self,
        mut exec: impl FnMut(
            usize,
            &edgeflow_format::graph::OpDef<'a>,
            &[TensorIn<'_, 'a>],
            TensorOut<'_, 'a>,
            &mut [u8],
        ),
        mut after_op: impl FnMut(usize, u32),
    ) -> Result<(), Error> {
        let model = self.model;
        let mut ops = model.ops();
        // One record, in `self` rather than on the stack, decoded into for each op.
        let d = &mut self.op;
        for position in 0..usize::MAX {
            if !ops.next_into(d) {
                break;
            }
            let d = &*d;
            let Some(out_def) = d.outputs.first() else {
                continue; // excluded by parse
            };
            let Some(out_r) = arena_range(out_def) else {
                continue; // excluded by parse
            };
            if matches!(d.op, Op::Reshape)
                && d.inputs.first().and_then(arena_range).as_ref() == Some(&out_r)
            {
                after_op(position, d.source_index);
                continue; // planned in place: nothing to move
            }
            // As many slots as this build's ops take (`kernels::RUN_INPUTS`: 4 bytes x 12
            // fewer on the stack without CONCATENATION).
            let mut inputs: heapless::Vec<TensorIn<'_, 'a>, { kernels::RUN_INPUTS }> =
                heapless::Vec::new();
            let (output, scratch) = prepare(model, self.arena, d, out_r, &mut inputs)?;
            let out = TensorOut {
                def: out_def,
                data: output,
            };
            exec(position, d, inputs.as_slice(), out, scratch);
            after_op(position, d.source_index);
        }
        Ok(())
    }
}

/// The host's op loop ([`Runtime::invoke_packed`]): `Runtime::run`'s, over op records
/// decoded beforehand (`ops`, in execution order) instead of decoding each from the
/// artifact per op. Kept apart from `run` so that the device loop's code is unchanged:
/// the per-op body is written in both loops on purpose — shared as one always-inlined
/// function it cost the device loop 8 B of peak stack in `invoke` on the emulated
/// Cortex-M4F (AD 500 → 508 B, over TFLM's 504; KWS 856 → 864 B), measured with
/// `cargo xtask footprint` on 2026-11-30.
#[cfg(feature = "std")]
fn run_decoded<'a>(
    model: &Model<'a>,
    arena: &mut [u8],
    ops: &[OpDef<'a>],
    mut exec: impl FnMut(usize, &OpDef<'a>, &[TensorIn<'_, 'a>], TensorOut<'_, 'a>, &mut [u8]),
    mut after_op: impl FnMut(usize, u32),
) -> Result<(), Error> {
    for (position, d) in ops.iter().enumerate() {
        let Some(out_def) = d.outputs.first() else {
            continue; // excluded by parse
        };
        let Some(out_r) = arena_range(out_def) else {
            continue; // excluded by parse
        };
        if matches!(d.op, Op::Reshape)
            && d.inputs.first().and_then(arena_range).as_ref() == Some(&out_r)
        {
            after_op(position, d.source_index);
            continue; // planned in place: nothing to move
        }
        let mut inputs: heapless::Vec<TensorIn<'_, 'a>, { kernels::RUN_INPUTS }> =
            heapless::Vec::new();
        let (output, scratch) = prepare(model, arena, d, out_r, &mut inputs)?;
        let out = TensorOut {
            def: out_def,
            data: output,
        };
        exec(position, d, inputs.as_slice(), out, scratch);
        after_op(position, d.source_index);
    }
    Ok(())
}

/// Cuts the arena around op `d`'s output (`out_r`) and scratch, and lists its inputs
/// (arena or constant bytes) into `inputs`; returns the output and scratch bytes.
///
/// Never inlined: the arena's cut (five slices) lives only in this frame, popped before
/// the kernel runs, rather than in [`Runtime::invoke`]'s frame under every kernel (see
/// BENCHMARKS.md, footprint, fifth pass). Errors: [`Error::InvalidOp`] when the plan's
/// regions cannot be cut apart or an input cannot be read (both excluded by
/// [`Model::parse`]).
#[inline(never)]
fn prepare<'s, 'a>(
    model: &Model<'a>,
    arena: &'s mut [u8],
    d: &'s OpDef<'a>,
    out_r: Range<usize>,
    inputs: &mut heapless::Vec<TensorIn<'s, 'a>, { kernels::RUN_INPUTS }>,
) -> Result<(&'s mut [u8], &'s mut [u8]), Error> {
    let scratch_r = match d.scratch {
        Some(s) => {
            let start = s.offset as usize;
            Some(start..start.checked_add(s.len as usize).ok_or(bad_plan(d))?)
        }
        None => None,
    };
    let split = Split::new(arena, out_r, scratch_r).ok_or(bad_plan(d))?;
    for t in d.inputs.iter() {
        let data = match arena_range(t) {
            Some(r) => split.read(r),
            None => model.const_data(t),
        };
        let Some(data) = data else {
            return Err(Error::InvalidOp {
                op: d.source_index,
                name: d.op.name(),
                reason: "input tensor not readable",
            });
        };
        // `kernels::check` (at parse) bounded the inputs by the capacity, so this
        // cannot overflow.
        let _ = inputs.push(TensorIn { def: t, data });
    }
    Ok((split.output, split.scratch))
}

/// The arena cut into the mutable output, the mutable scratch, and read-only rest.
struct Split<'s> {
    output: &'s mut [u8],
    scratch: &'s mut [u8],
    /// Read-only pieces with their start offsets.
    ro: [(usize, &'s [u8]); 3],
}

/// The error for an op whose arena regions cannot be cut apart; `Model::parse` rejects
/// such ops, so a validated model never gets here.
fn bad_plan(d: &edgeflow_format::graph::OpDef<'_>) -> Error {
    Error::InvalidOp {
        op: d.source_index,
        name: d.op.name(),
        reason: "output and scratch regions overlap or lie outside the arena",
    }
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
