//! The edgeflow host compiler: `.tflite` in, edgeflow artifact out.
//!
//! [`compile`] imports a TFLite flatbuffer (verified by the `flatbuffers` crate), checks
//! every op, version, option and tensor type against what the run-time computes exactly,
//! derives all int8 fixed-point parameters as TFLite Micro's `Prepare` does, plans the
//! arena from tensor lifetimes, writes the artifact and finally validates it with the
//! run-time's own `Model::parse`.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod board;
pub mod budget;
pub mod cost;
pub mod describe;
mod error;
pub mod export;
pub mod import;
pub mod ir;
pub mod load;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod plan;
pub mod quantize;
pub mod reference;
pub mod tflite;

use edgeflow_format::graph::{
    Bytes, GraphHeader, Location, Op, OpDef, PerChannel, Quant, Requant, Scratch, Shape, TensorDef,
};
use edgeflow_format::SectionKind;

pub use error::{CompileError, Limit};
use ir::Graph;

/// Arena alignment the planner uses (as TFLite Micro's 16-byte buffer alignment).
pub const ARENA_ALIGN: usize = 16;

/// The result of compiling a model.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The artifact bytes.
    pub artifact: Vec<u8>,
    /// Arena bytes the plan needs.
    pub arena_bytes: usize,
    /// Bytes of constant data (weights, biases).
    pub weights_bytes: usize,
}

/// Whether `bytes` look like an edgeflow artifact (rather than a `.tflite` file).
pub fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(&edgeflow_format::MAGIC)
}

/// Compiles a `.tflite` model into an artifact; `name` is stored for tooling.
pub fn compile(tflite_bytes: &[u8], name: &str) -> Result<Compiled, CompileError> {
    let graph = import::import(tflite_bytes)?;
    emit(&graph, name)
}

/// Multiply-accumulates of one op from its tensor shapes (CONV_2D, DEPTHWISE_CONV_2D,
/// FULLY_CONNECTED; 0 for the others), as the importer counts them.
pub fn macs(graph: &Graph, op: &ir::IrOp) -> u64 {
    let shape = |t: usize| -> &[u32] { &graph.tensors[t].shape };
    let prod = |s: &[u32]| s.iter().map(|&d| d as u64).product::<u64>();
    match op.op {
        Op::Conv2d(_) | Op::DepthwiseConv2d(_) if op.inputs.len() >= 2 => {
            let w = shape(op.inputs[1]);
            if w.len() != 4 {
                return 0;
            }
            let per = w[1] as u64 * w[2] as u64;
            let depth = if matches!(op.op, Op::Conv2d(_)) {
                w[3] as u64
            } else {
                1
            };
            prod(shape(op.output)) * per * depth
        }
        Op::FullyConnected(_) if op.inputs.len() >= 2 => {
            let w = shape(op.inputs[1]);
            prod(shape(op.output)) * w.last().copied().unwrap_or(0) as u64
        }
        _ => 0,
    }
}

/// Re-assembles `artifact` with the given non-graph sections (replacing any it has), and
/// validates the result with the run-time's `Model::parse`.
pub fn with_sections(artifact: &[u8], s: &load::Sections) -> Result<Vec<u8>, CompileError> {
    let a = edgeflow_format::Artifact::parse(artifact).map_err(CompileError::Artifact)?;
    let mut parts = edgeflow_format::write::Parts::of(&a);
    // The stored coefficient tables stay while the pipeline stays byte-identical.
    parts.set_feature_pipeline(s.feature_pipeline.as_deref());
    parts.labels = s.labels.as_deref();
    parts.monitoring_baseline = s.monitoring_baseline.as_deref();
    parts.metadata = s.metadata.as_deref();
    let out = parts.assemble()?;
    edgeflow_nn::Model::parse(&out)?;
    Ok(out)
}

/// Per-tensor bytes that tensor descriptions borrow (per-channel scales).
pub(crate) fn scale_bytes(graph: &Graph) -> Vec<Vec<u8>> {
    graph
        .tensors
        .iter()
        .map(|t| match &t.quant {
            Some(q) if q.scales.len() > 1 => {
                q.scales.iter().flat_map(|s| s.to_le_bytes()).collect()
            }
            _ => Vec::new(),
        })
        .collect()
}

pub(crate) fn tensor_def<'a>(
    graph: &Graph,
    scales: &'a [Vec<u8>],
    t: usize,
    location: Location,
) -> TensorDef<'a> {
    let it = &graph.tensors[t];
    TensorDef {
        id: it.index,
        dtype: it.dtype,
        // Rank was checked on import.
        shape: Shape::new(&it.shape).unwrap_or_default(),
        quant: it.quant.as_ref().map(|q| Quant {
            scale: q.scales[0],
            zero_point: q.zero_points[0] as i32,
            per_channel: (q.scales.len() > 1).then(|| PerChannel {
                axis: q.axis as u8,
                scales: Bytes(&scales[t]),
            }),
        }),
        location,
    }
}

pub(crate) fn with_requant<'a>(op: &Op<'static>, r: Option<&'a ir::OwnedRequant>) -> Op<'a> {
    let rq = r.map(|r| Requant {
        input_offset: r.input_offset,
        output_offset: r.output_offset,
        multipliers: Bytes(&r.multipliers),
        shifts: Bytes(&r.shifts),
    });
    match *op {
        Op::Conv2d(p) => Op::Conv2d(edgeflow_format::graph::ConvParams { requant: rq, ..p }),
        Op::DepthwiseConv2d(p) => {
            Op::DepthwiseConv2d(edgeflow_format::graph::ConvParams { requant: rq, ..p })
        }
        Op::FullyConnected(p) => {
            Op::FullyConnected(edgeflow_format::graph::FullyConnectedParams { requant: rq, ..p })
        }
        other => other,
    }
}

fn to_vec<'a, const N: usize>(
    defs: impl Iterator<Item = TensorDef<'a>>,
) -> Result<heapless::Vec<TensorDef<'a>, N>, CompileError> {
    let mut v = heapless::Vec::new();
    for d in defs {
        v.push(d).map_err(|_| Limit::TensorList { max: N })?;
    }
    Ok(v)
}

/// Plans and writes the artifact for an imported graph.
pub fn emit(graph: &Graph, name: &str) -> Result<Compiled, CompileError> {
    let scales = scale_bytes(graph);
    // Scratch sizes depend only on shapes and parameters, not on locations.
    let dummy = Location::Arena { offset: 0 };
    let mut scratch = Vec::with_capacity(graph.ops.len());
    for op in &graph.ops {
        let ins: Vec<TensorDef<'_>> = op
            .inputs
            .iter()
            .map(|&t| tensor_def(graph, &scales, t, dummy))
            .collect();
        let out = tensor_def(graph, &scales, op.output, dummy);
        scratch.push(edgeflow_nn::op::scratch_bytes(
            &with_requant(&op.op, op.requant.as_ref()),
            &ins,
            &out,
        ));
    }
    let plan = plan::plan(graph, &scratch, ARENA_ALIGN)?;

    // Constant data, 16-byte aligned within the weights section.
    let mut weights: Vec<u8> = Vec::new();
    let mut const_offset: Vec<Option<u32>> = vec![None; graph.tensors.len()];
    for op in &graph.ops {
        for &t in &op.inputs {
            if let (Some(data), None) = (&graph.tensors[t].data, const_offset[t]) {
                weights.resize(weights.len().div_ceil(16).saturating_mul(16), 0);
                const_offset[t] = Some(
                    u32::try_from(weights.len())
                        .map_err(|_| CompileError::Limit(Limit::Weights))?,
                );
                weights.extend_from_slice(data);
            }
        }
    }
    let location = |t: usize| -> Result<Location, CompileError> {
        if let Some(offset) = const_offset[t] {
            return Ok(Location::Const { offset });
        }
        plan.offsets[t]
            .map(|offset| Location::Arena { offset })
            .ok_or(CompileError::Unplanned(t))
    };
    let def = |t: usize| -> Result<TensorDef<'_>, CompileError> {
        Ok(tensor_def(graph, &scales, t, location(t)?))
    };

    let header = GraphHeader {
        arena_bytes: plan.arena_bytes,
        arena_align: ARENA_ALIGN as u32,
        op_count: u32::try_from(graph.ops.len()).map_err(|_| Limit::Ops)?,
        inputs: to_vec(
            graph
                .inputs
                .iter()
                .map(|&t| def(t))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter(),
        )?,
        outputs: to_vec(
            graph
                .outputs
                .iter()
                .map(|&t| def(t))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter(),
        )?,
        macs: graph
            .ops
            .iter()
            .try_fold(0u64, |n, o| n.checked_add(o.macs))
            .ok_or(Limit::Macs)?,
        name,
    };
    let mut section = postcard::to_stdvec(&header)?;
    for (i, op) in graph.ops.iter().enumerate() {
        let record = OpDef {
            source_index: op.source_index,
            op: with_requant(&op.op, op.requant.as_ref()),
            inputs: to_vec(
                op.inputs
                    .iter()
                    .map(|&t| def(t))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter(),
            )?,
            outputs: to_vec(std::iter::once(def(op.output)?))?,
            scratch: plan.scratch[i].map(|(offset, len)| Scratch { offset, len }),
        };
        section.extend(postcard::to_stdvec(&record)?);
    }
    let artifact = edgeflow_format::write::assemble(&[
        (SectionKind::Graph, &section),
        (SectionKind::Weights, &weights),
    ])?;
    edgeflow_nn::Model::parse(&artifact)?;
    Ok(Compiled {
        arena_bytes: plan.arena_bytes as usize,
        weights_bytes: weights.len(),
        artifact,
    })
}

/// Sections an artifact may carry beside the graph and weights (each already encoded in
/// its section's wire form: the edgeflow-dsp pipeline's postcard bytes, the labels text,
/// the monitoring baseline record, the metadata JSON object).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sections<'a> {
    /// [`SectionKind::FeaturePipeline`].
    pub feature_pipeline: Option<&'a [u8]>,
    /// [`SectionKind::Labels`].
    pub labels: Option<&'a [u8]>,
    /// [`SectionKind::MonitoringBaseline`].
    pub monitoring_baseline: Option<&'a [u8]>,
    /// [`SectionKind::Metadata`].
    pub metadata: Option<&'a [u8]>,
}

/// Plans and writes the artifact for `graph` as [`emit`] does, with the given extra
/// sections, then validates the result with the run-time's `Model::parse`.
///
/// Errors: as [`emit`]; a section that makes the artifact invalid is
/// [`CompileError::Validate`].
pub fn emit_with(
    graph: &Graph,
    name: &str,
    extra: &Sections<'_>,
) -> Result<Compiled, CompileError> {
    let c = emit(graph, name)?;
    let a = edgeflow_format::Artifact::parse(&c.artifact).map_err(CompileError::Emitted)?;
    let parts = edgeflow_format::write::Parts {
        feature_pipeline: extra.feature_pipeline,
        labels: extra.labels,
        monitoring_baseline: extra.monitoring_baseline,
        metadata: extra.metadata,
        ..edgeflow_format::write::Parts::of(&a)
    };
    let artifact = parts.assemble()?;
    edgeflow_nn::Model::parse(&artifact)?;
    Ok(Compiled { artifact, ..c })
}
