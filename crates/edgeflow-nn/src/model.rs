use core::ops::Range;

use edgeflow_format::decode;
use edgeflow_format::graph::{DType, GraphHeader, Location, Op, OpDef, TensorDef, MAX_RANK};
use edgeflow_format::Artifact;

use crate::kernels;
use crate::Error;

/// A validated model: the artifact's graph, with every op record checked.
///
/// Holds only borrowed views into the artifact bytes (flash); nothing is copied.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    artifact: Artifact<'a>,
    header: GraphHeader<'a>,
    ops: &'a [u8],
}

/// Sentinel op index used in errors about graph inputs/outputs.
const GRAPH_IO: u32 = u32::MAX;

// `LINKED_OP_TAGS`: the ops whose kernels this build links (build.rs, `EDGEFLOW_NN_OPS`).
include!(concat!(env!("OUT_DIR"), "/linked_ops.rs"));

/// The op-record reader's op set: only the linked ops' parameters are decoded, so a
/// one-model firmware does not carry the decoding of the others either.
struct LinkedOps;

impl decode::OpSet for LinkedOps {
    const TAGS: u64 = LINKED_OP_TAGS;
}

/// The error for op record `position` (`record`: its bytes on) that did not decode: an
/// op this build does not link is named (as [`kernels::check`] names it), anything else
/// is a malformed record.
fn undecodable(record: &[u8], position: u32) -> Error {
    if let Ok((op, tag)) = decode::record_op(record) {
        let linked = tag < 64 && LINKED_OP_TAGS & 1u64.wrapping_shl(tag) != 0;
        if let (false, Some(&name)) = (linked, decode::OP_NAMES.get(tag as usize)) {
            return Error::InvalidOp {
                op,
                name,
                reason: kernels::NOT_LINKED,
            };
        }
    }
    Error::BadOpRecord { position }
}

impl<'a> Model<'a> {
    /// Parses and validates an artifact.
    ///
    /// On `Ok`, every op record decodes, every tensor lies inside the arena plan or the
    /// weights section, and every op satisfies its kernel's preconditions, so
    /// [`crate::Runtime::invoke`] cannot panic or read out of bounds. Never panics.
    ///
    /// Never inlined (it runs once per model): a firmware's code then shows the parser as
    /// one function of its own, not spread into its caller (BENCHMARKS.md, footprint).
    #[inline(never)]
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let artifact = Artifact::parse(bytes)?;
        let (header, ops) =
            decode::graph_header(artifact.graph).map_err(|_| Error::BadGraphHeader)?;
        let model = Model {
            artifact,
            header,
            ops,
        };
        model.validate()?;
        Ok(model)
    }

    fn validate(&self) -> Result<(), Error> {
        let h = &self.header;
        if h.arena_align == 0 || !h.arena_align.is_power_of_two() || h.arena_align > 4096 {
            return Err(Error::BadGraphHeader);
        }
        if h.inputs.is_empty() || h.outputs.is_empty() {
            return Err(Error::BadGraphHeader);
        }
        for t in h.inputs.iter().chain(h.outputs.iter()) {
            let r = self.check_tensor(GRAPH_IO, t)?;
            if !matches!(t.location, Location::Arena { .. }) || r.is_none() {
                return Err(Error::BadTensor {
                    op: GRAPH_IO,
                    tensor: t.id,
                    reason: why!(
                        "model.rs",
                        "graph inputs and outputs must live in the arena"
                    ),
                });
            }
        }
        let mut rest = self.ops;
        let mut op = OpDef::empty();
        for position in 0..h.op_count {
            rest = decode::op_def_into_in::<LinkedOps>(rest, &mut op).map_err(|_| {
                match undecodable(rest, position) {
                    // Not an op this build leaves out: malformed, or an op of a newer
                    // format minor version.
                    Error::BadOpRecord { position } => self.undecodable(rest, position),
                    named => named,
                }
            })?;
            self.check_op(&op)?;
        }
        if !rest.is_empty() {
            return Err(Error::TrailingGraphBytes);
        }
        Ok(())
    }

    /// The error for an op record (`record`: its bytes on) that does not decode:
    /// [`Error::NewerOp`] (naming the record's op tag) when the artifact's minor version
    /// is above this reader's, else [`Error::BadOpRecord`].
    fn undecodable(&self, record: &[u8], position: u32) -> Error {
        let (major, minor) = (self.artifact.major, self.artifact.minor);
        if major == edgeflow_format::FORMAT_MAJOR && minor > edgeflow_format::FORMAT_MINOR {
            Error::NewerOp {
                position,
                tag: decode::record_op(record).ok().map(|(_, tag)| tag),
                artifact: (major, minor),
                reader: (edgeflow_format::FORMAT_MAJOR, edgeflow_format::FORMAT_MINOR),
            }
        } else {
            Error::BadOpRecord { position }
        }
    }

    /// Checks one tensor description; returns its arena byte range (None for constants).
    fn check_tensor(&self, op: u32, t: &TensorDef<'a>) -> Result<Option<Range<usize>>, Error> {
        let bad = |reason| Error::BadTensor {
            op,
            tensor: t.id,
            reason,
        };
        if t.shape.rank as usize > MAX_RANK {
            return Err(bad(why!(
                "model.rs",
                "rank above the run-time maximum of 6"
            )));
        }
        if t.shape.dims().contains(&0) {
            return Err(bad(why!("model.rs", "zero-sized dimension")));
        }
        let len = t
            .shape
            .num_elements()
            .and_then(|n| n.checked_mul(t.dtype.size()))
            .filter(|&n| n <= u32::MAX as usize)
            .ok_or(bad(why!("model.rs", "byte size overflows")))?;
        match (t.dtype, &t.quant) {
            (DType::I8, None) => {
                return Err(bad(why!("model.rs", "int8 tensor without quantization")))
            }
            (_, Some(q)) => {
                if !(q.scale.is_finite() && q.scale > 0.0) {
                    return Err(bad(why!(
                        "model.rs",
                        "quantization scale is not a positive finite number"
                    )));
                }
                if t.dtype == DType::I8 && !(-128..=127).contains(&q.zero_point) {
                    return Err(bad(why!("model.rs", "int8 zero point outside [-128, 127]")));
                }
                if let Some(pc) = &q.per_channel {
                    if pc.axis as usize >= t.shape.dims().len()
                        || pc.scales.0.len() != t.shape.dim(pc.axis as usize).saturating_mul(4)
                    {
                        return Err(bad(why!(
                            "model.rs",
                            "per-channel scales do not match the quantized axis"
                        )));
                    }
                }
            }
            _ => {}
        }
        match t.location {
            Location::Arena { offset } => {
                let start = offset as usize;
                let end = start
                    .checked_add(len)
                    .ok_or(bad(why!("model.rs", "arena range overflows")))?;
                if end > self.header.arena_bytes as usize {
                    return Err(bad(why!(
                        "model.rs",
                        "arena range past the planned arena size"
                    )));
                }
                // arena_align is a power of two in 1..=4096 (checked in `validate`).
                if start.checked_rem(self.header.arena_align as usize) != Some(0) {
                    return Err(bad(why!(
                        "model.rs",
                        "arena offset not aligned as the plan says"
                    )));
                }
                Ok(Some(start..end))
            }
            Location::Const { offset } => {
                let start = offset as usize;
                let end = start
                    .checked_add(len)
                    .ok_or(bad(why!("model.rs", "weights range overflows")))?;
                if end > self.artifact.weights.len() {
                    return Err(bad(why!(
                        "model.rs",
                        "constant data past the end of the weights section"
                    )));
                }
                Ok(None)
            }
        }
    }

    fn check_op(&self, d: &OpDef<'a>) -> Result<(), Error> {
        let name = d.op.name();
        let invalid = |reason| Error::InvalidOp {
            op: d.source_index,
            name,
            reason,
        };
        // No array of the inputs' ranges: LLVM unrolled the loop that filled one (up to
        // 8 inputs) into 8 inlined calls with their error paths, about 1 KB of parse
        // code; the overlap loop below recomputes each validated input's range.
        for t in d.inputs.iter() {
            self.check_tensor(d.source_index, t)?;
        }
        let out_t = d
            .outputs
            .first()
            .ok_or(invalid(why!("model.rs", "op has no output")))?;
        let out = self
            .check_tensor(d.source_index, out_t)?
            .ok_or(invalid(why!("model.rs", "output must live in the arena")))?;
        let scratch = match d.scratch {
            Some(s) => {
                // The runtime cuts the arena at the output's and the scratch's edges, so
                // both must be non-empty and disjoint (adjacent is fine); an empty scratch
                // region has no place in that cut and is rejected.
                if s.len == 0 {
                    return Err(invalid(why!(
                        "model.rs",
                        "scratch region is empty (omit it instead)"
                    )));
                }
                let start = s.offset as usize;
                let end = start
                    .checked_add(s.len as usize)
                    .filter(|&e| e <= self.header.arena_bytes as usize)
                    .ok_or(invalid(why!(
                        "model.rs",
                        "scratch region past the planned arena size"
                    )))?;
                if ranges_overlap(&(start..end), &out) {
                    return Err(invalid(why!(
                        "model.rs",
                        "scratch region overlaps the output"
                    )));
                }
                Some(start..end)
            }
            None => None,
        };
        let in_place_reshape = matches!(d.op, Op::Reshape);
        for r in d.inputs.iter().filter_map(arena_range) {
            let r = &r;
            if ranges_overlap(r, &out) && !(in_place_reshape && *r == out) {
                return Err(invalid(why!(
                    "model.rs",
                    "an input overlaps the output in the arena plan"
                )));
            }
            if let Some(s) = &scratch {
                if ranges_overlap(r, s) {
                    return Err(invalid(why!(
                        "model.rs",
                        "an input overlaps the scratch region"
                    )));
                }
            }
        }
        let scratch_len = scratch.map_or(0, |s| s.len());
        kernels::check(&d.op, &d.inputs, out_t, scratch_len).map_err(|reason| {
            let (major, minor) = (self.artifact.major, self.artifact.minor);
            if reason == kernels::SCRATCH_TOO_SMALL
                && major == edgeflow_format::FORMAT_MAJOR
                && minor < edgeflow_format::PLAN_SCRATCH_MINOR
            {
                Error::OlderPlan {
                    op: d.source_index,
                    name,
                    artifact: (major, minor),
                    reader: (edgeflow_format::FORMAT_MAJOR, edgeflow_format::FORMAT_MINOR),
                }
            } else {
                invalid(reason)
            }
        })
    }

    /// The graph header (arena size, inputs, outputs, op count, MACs, name).
    pub fn header(&self) -> &GraphHeader<'a> {
        &self.header
    }

    /// The container (format version and the other sections).
    pub fn artifact(&self) -> &Artifact<'a> {
        &self.artifact
    }

    /// Arena bytes the memory plan needs.
    pub fn arena_bytes(&self) -> usize {
        self.header.arena_bytes as usize
    }

    /// The op records in execution order.
    pub fn ops(&self) -> OpIter<'a> {
        OpIter {
            rest: self.ops,
            left: self.header.op_count,
        }
    }

    /// The bytes of a constant tensor (validated to be in bounds), or `None` for arena tensors.
    pub fn const_data(&self, t: &TensorDef<'_>) -> Option<&'a [u8]> {
        match t.location {
            Location::Const { offset } => {
                let len = t.shape.num_elements()?.checked_mul(t.dtype.size())?;
                self.artifact
                    .weights
                    .get(offset as usize..(offset as usize).checked_add(len)?)
            }
            Location::Arena { .. } => None,
        }
    }
}

/// Iterates over a validated model's op records in execution order.
#[derive(Clone, Debug)]
pub struct OpIter<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> OpIter<'a> {
    /// Decodes the next record into `out` (reusing its storage: the executor keeps one
    /// record on the stack); `false` when no record is left.
    pub(crate) fn next_into(&mut self, out: &mut OpDef<'a>) -> bool {
        if self.left == 0 {
            return false;
        }
        // The records were decoded once by `Model::parse`; decoding again cannot fail.
        let Ok(rest) = decode::op_def_into_in::<LinkedOps>(self.rest, out) else {
            return false;
        };
        self.rest = rest;
        self.left = self.left.saturating_sub(1);
        true
    }
}

impl<'a> Iterator for OpIter<'a> {
    type Item = OpDef<'a>;
    fn next(&mut self) -> Option<OpDef<'a>> {
        let mut op = OpDef::empty();
        self.next_into(&mut op).then_some(op)
    }
}

/// Byte range of a tensor in the arena, for tensors validated by `Model::parse`.
pub(crate) fn arena_range(t: &TensorDef<'_>) -> Option<Range<usize>> {
    arena_range_inline(t)
}

/// [`arena_range`], always inlined (for the executor's per-input loop, `runtime::prepare`).
#[inline(always)]
pub(crate) fn arena_range_inline(t: &TensorDef<'_>) -> Option<Range<usize>> {
    match t.location {
        Location::Arena { offset } => {
            let len = t.shape.num_elements()?.checked_mul(t.dtype.size())?;
            Some(offset as usize..(offset as usize).checked_add(len)?)
        }
        Location::Const { .. } => None,
    }
}

fn ranges_overlap(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeflow_format::graph::{Shape, MAX_GRAPH_IO, MAX_OP_INPUTS, MAX_OP_OUTPUTS};
    use edgeflow_format::{write, SectionKind, FORMAT_MAJOR, FORMAT_MINOR};

    #[test]
    fn tests_link_every_op() {
        // build.rs sets bit `i` of LINKED_OP_TAGS for OP_NAMES[i] (the one list, included
        // by build.rs and the format); tests build with every op.
        assert_eq!(LINKED_OP_TAGS, (1u64 << decode::OP_NAMES.len()) - 1);
    }

    fn f32t(id: u32, offset: u32) -> TensorDef<'static> {
        TensorDef {
            id,
            dtype: DType::F32,
            shape: Shape::new(&[4]).unwrap(),
            quant: None,
            location: Location::Arena { offset },
        }
    }

    /// The graph header and op record of a one-op graph `x -> op -> y` named `name`.
    fn one_op_graph(
        name: &'static str,
        arena_bytes: u32,
        x: TensorDef<'static>,
        op: Op<'static>,
        y: TensorDef<'static>,
        scratch: Option<edgeflow_format::graph::Scratch>,
    ) -> (GraphHeader<'static>, OpDef<'static>) {
        let mut inputs = heapless::Vec::<_, MAX_GRAPH_IO>::new();
        inputs.push(x.clone()).unwrap();
        let mut outputs = heapless::Vec::<_, MAX_GRAPH_IO>::new();
        outputs.push(y.clone()).unwrap();
        let h = GraphHeader {
            arena_bytes,
            arena_align: 4,
            op_count: 1,
            inputs,
            outputs,
            macs: 0,
            name,
        };
        let mut op_in = heapless::Vec::<_, MAX_OP_INPUTS>::new();
        op_in.push(x).unwrap();
        let mut op_out = heapless::Vec::<_, MAX_OP_OUTPUTS>::new();
        op_out.push(y).unwrap();
        let op = OpDef {
            source_index: 0,
            op,
            inputs: op_in,
            outputs: op_out,
            scratch,
        };
        (h, op)
    }

    /// A one-op graph as an artifact of format 1.`minor`; `tag` replaces the op record's
    /// variant tag when given.
    fn one_op_artifact(
        (h, op): (GraphHeader<'_>, OpDef<'_>),
        tag: Option<u8>,
        minor: u16,
    ) -> std::vec::Vec<u8> {
        let mut buf = [0u8; 512];
        let hl = postcard::to_slice(&h, &mut buf).unwrap().len();
        let ol = postcard::to_slice(&op, &mut buf[hl..]).unwrap().len();
        let mut graph = buf[..hl + ol].to_vec();
        // The record starts with the one-byte varint source index, then the op's tag.
        if let Some(t) = tag {
            graph[hl + 1] = t;
        }
        let mut a = write::assemble(&[(SectionKind::Graph, &graph)]).unwrap();
        // The header's CRC covers the body only: the version is rewritten in place.
        a[6..8].copy_from_slice(&minor.to_le_bytes());
        a
    }

    /// A one-RESHAPE artifact; `tag` replaces the op record's variant tag when given.
    fn artifact(tag: Option<u8>, minor: u16) -> std::vec::Vec<u8> {
        let g = one_op_graph("m", 32, f32t(0, 0), Op::Reshape, f32t(1, 16), None);
        one_op_artifact(g, tag, minor)
    }

    /// A one-op int8 AVERAGE_POOL_2D (2x2 window over 1x2x2x4): the graph header and the op
    /// record, with a scratch region of `scratch` bytes after the output (none when 0, as a
    /// 1.1 plan wrote it: 1.1 plans gave int8 average pooling no scratch).
    fn pool_graph(scratch: u32) -> (GraphHeader<'static>, OpDef<'static>) {
        let q = || {
            Some(edgeflow_format::graph::Quant {
                scale: 0.5,
                zero_point: -3,
                per_channel: None,
            })
        };
        let x = TensorDef {
            id: 0,
            dtype: DType::I8,
            shape: Shape::new(&[1, 2, 2, 4]).unwrap(),
            quant: q(),
            location: Location::Arena { offset: 0 },
        };
        let y = TensorDef {
            id: 1,
            dtype: DType::I8,
            shape: Shape::new(&[1, 1, 1, 4]).unwrap(),
            quant: q(),
            location: Location::Arena { offset: 16 },
        };
        let op = Op::AveragePool2d(edgeflow_format::graph::PoolParams {
            filter: [2, 2],
            stride: [2, 2],
            pad: [0, 0],
            clamp: edgeflow_format::graph::Clamp::NONE,
        });
        let region = (scratch > 0).then_some(edgeflow_format::graph::Scratch {
            offset: 20,
            len: scratch,
        });
        one_op_graph("pool", 20 + scratch, x, op, y, region)
    }

    /// [`pool_graph`] as an artifact of format 1.`minor`.
    fn pool_artifact(scratch: u32, minor: u16) -> std::vec::Vec<u8> {
        one_op_artifact(pool_graph(scratch), None, minor)
    }

    #[test]
    fn an_artifact_planned_by_an_older_edgeflow_is_refused_naming_both_versions() {
        let (_, op) = pool_graph(0);
        let needed = kernels::scratch_bytes(&op.op, &op.inputs, &op.outputs[0]) as u32;
        assert!(needed > 0, "int8 average pooling plans scratch");
        // The artifact is otherwise valid: with the scratch a 1.2 plan gives it, it parses,
        // in format 1.2 and in 1.1 (an older artifact whose plan already suffices is kept).
        assert!(Model::parse(&pool_artifact(needed, FORMAT_MINOR)).is_ok());
        assert!(Model::parse(&pool_artifact(needed, 1)).is_ok());
        // As a 1.1 compiler wrote it (no scratch): refused as compiled by an older edgeflow.
        let e = Model::parse(&pool_artifact(0, 1)).unwrap_err();
        assert_eq!(
            e,
            Error::OlderPlan {
                op: 0,
                name: "AVERAGE_POOL_2D",
                artifact: (1, 1),
                reader: (FORMAT_MAJOR, FORMAT_MINOR),
            }
        );
        let msg = std::format!("{e}");
        assert!(
            msg.contains("format 1.1")
                && msg.contains(&std::format!("format {FORMAT_MAJOR}.{FORMAT_MINOR}"))
                && msg.contains("older edgeflow")
                && msg.contains("edgeflow convert"),
            "{msg}"
        );
        // A short scratch in an artifact of this version is malformed, not old.
        let e = Model::parse(&pool_artifact(needed - 1, FORMAT_MINOR)).unwrap_err();
        assert_eq!(
            e,
            Error::InvalidOp {
                op: 0,
                name: "AVERAGE_POOL_2D",
                reason: kernels::SCRATCH_TOO_SMALL,
            }
        );
    }

    #[test]
    fn an_unknown_op_in_a_newer_minor_names_both_versions() {
        assert!(Model::parse(&artifact(None, FORMAT_MINOR)).is_ok());
        // A tag no variant has: malformed in an artifact of this reader's version…
        let e = Model::parse(&artifact(Some(0x7f), FORMAT_MINOR)).unwrap_err();
        assert_eq!(e, Error::BadOpRecord { position: 0 });
        // …and "newer than this run-time" in one of a later minor version.
        let e = Model::parse(&artifact(Some(0x7f), FORMAT_MINOR + 1)).unwrap_err();
        assert_eq!(
            e,
            Error::NewerOp {
                position: 0,
                tag: Some(0x7f),
                artifact: (FORMAT_MAJOR, FORMAT_MINOR + 1),
                reader: (FORMAT_MAJOR, FORMAT_MINOR),
            }
        );
        let msg = std::format!("{e}");
        assert!(
            msg.contains(&std::format!("format 1.{}", FORMAT_MINOR + 1))
                && msg.contains(&std::format!("1.{FORMAT_MINOR}"))
                && msg.contains("(op tag 127)"),
            "{msg}"
        );
    }
}
