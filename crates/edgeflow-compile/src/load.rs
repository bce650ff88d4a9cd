//! Edgeflow artifact → IR: the inverse of [`crate::emit`], so that tools which work on
//! the IR (the quantizer, re-planning) accept an artifact as well as a `.tflite`.
//!
//! Tensors are identified by their `id` (the writer's tensor index); constants are copied
//! out of the weights section; fixed-point parameters (requantization arrays) become owned.
//! The artifact is validated by the run-time's own `Model::parse` first, so every op,
//! shape and offset has been checked before it is read here.

use std::collections::BTreeMap;

use edgeflow_format::graph::{ConvParams, FullyConnectedParams, Op, TensorDef};

use crate::error::CompileError;
use crate::ir::{Graph, IrOp, IrQuant, IrTensor, OwnedRequant};

/// The other sections of an artifact, carried over when a tool rewrites the graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sections {
    /// The feature pipeline section.
    pub feature_pipeline: Option<Vec<u8>>,
    /// The labels section.
    pub labels: Option<Vec<u8>>,
    /// The monitoring baseline section.
    pub monitoring_baseline: Option<Vec<u8>>,
    /// The metadata (JSON) section.
    pub metadata: Option<Vec<u8>>,
}

/// Reads an artifact into the IR, with its non-graph sections.
///
/// Errors: [`CompileError::Validate`] when the artifact does not pass `Model::parse`;
/// [`CompileError::Model`] when two tensor descriptions share an id but disagree.
pub fn load(bytes: &[u8]) -> Result<(Graph, Sections), CompileError> {
    let model = edgeflow_nn::Model::parse(bytes)?;
    let a = model.artifact();
    let mut tensors: Vec<IrTensor> = Vec::new();
    let mut by_id: BTreeMap<u32, usize> = BTreeMap::new();
    let mut intern = |t: &TensorDef<'_>| -> Result<usize, CompileError> {
        let quant = t.quant.map(|q| match q.per_channel {
            Some(pc) => {
                let scales: Vec<f32> = (0..pc.scales.len_i32())
                    .filter_map(|i| pc.scales.f32_at(i))
                    .collect();
                IrQuant {
                    zero_points: vec![q.zero_point as i64; scales.len()],
                    scales,
                    axis: pc.axis as u32,
                }
            }
            None => IrQuant {
                scales: vec![q.scale],
                zero_points: vec![q.zero_point as i64],
                axis: 0,
            },
        });
        let tensor = IrTensor {
            index: t.id,
            name: format!("t{}", t.id),
            dtype: t.dtype,
            shape: t.shape.dims().to_vec(),
            quant,
            data: model.const_data(t).map(<[u8]>::to_vec),
        };
        if let Some(&i) = by_id.get(&t.id) {
            let old = &tensors[i];
            if old.shape != tensor.shape || old.dtype != tensor.dtype || old.quant != tensor.quant {
                return Err(CompileError::TensorRedefined { id: t.id });
            }
            return Ok(i);
        }
        tensors.push(tensor);
        by_id.insert(t.id, tensors.len() - 1);
        Ok(tensors.len() - 1)
    };
    let h = model.header();
    let inputs = h
        .inputs
        .iter()
        .map(&mut intern)
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = h
        .outputs
        .iter()
        .map(&mut intern)
        .collect::<Result<Vec<_>, _>>()?;
    let mut ops = Vec::with_capacity(h.op_count as usize);
    for (index, d) in model.ops().enumerate() {
        let ins = d
            .inputs
            .iter()
            .map(&mut intern)
            .collect::<Result<Vec<_>, _>>()?;
        let out_def = d
            .outputs
            .first()
            .ok_or(CompileError::OpWithoutOutput { index })?;
        let output = intern(out_def)?;
        let owned = |r: &edgeflow_format::graph::Requant<'_>| OwnedRequant {
            input_offset: r.input_offset,
            output_offset: r.output_offset,
            multipliers: r.multipliers.0.to_vec(),
            shifts: r.shifts.0.to_vec(),
        };
        let (op, requant): (Op<'static>, Option<OwnedRequant>) = match d.op {
            Op::Conv2d(p) => (
                Op::Conv2d(ConvParams { requant: None, ..p }),
                p.requant.as_ref().map(owned),
            ),
            Op::DepthwiseConv2d(p) => (
                Op::DepthwiseConv2d(ConvParams { requant: None, ..p }),
                p.requant.as_ref().map(owned),
            ),
            Op::FullyConnected(p) => (
                Op::FullyConnected(FullyConnectedParams {
                    clamp: p.clamp,
                    requant: None,
                }),
                p.requant.as_ref().map(owned),
            ),
            Op::AveragePool2d(p) => (Op::AveragePool2d(p), None),
            Op::MaxPool2d(p) => (Op::MaxPool2d(p), None),
            Op::Add(p) => (Op::Add(p), None),
            Op::Mul(p) => (Op::Mul(p), None),
            Op::Reshape => (Op::Reshape, None),
            Op::Softmax(p) => (Op::Softmax(p), None),
            Op::Quantize(p) => (Op::Quantize(p), None),
            Op::Dequantize => (Op::Dequantize, None),
            Op::Concatenation(p) => (Op::Concatenation(p), None),
            Op::Pad(p) => (Op::Pad(p), None),
            Op::Mean(p) => (Op::Mean(p), None),
            Op::Logistic(p) => (Op::Logistic(p), None),
            Op::Tanh(p) => (Op::Tanh(p), None),
            Op::Transpose(p) => (Op::Transpose(p), None),
            Op::StridedSlice(p) => (Op::StridedSlice(p), None),
            Op::LeakyRelu(p) => (Op::LeakyRelu(p), None),
            Op::HardSwish(p) => (Op::HardSwish(p), None),
            Op::Maximum => (Op::Maximum, None),
            Op::Minimum => (Op::Minimum, None),
            Op::ReduceMax(p) => (Op::ReduceMax(p), None),
            Op::ResizeNearest(p) => (Op::ResizeNearest(p), None),
        };
        ops.push(IrOp {
            source_index: d.source_index,
            op,
            requant,
            inputs: ins,
            output,
            macs: 0,
        });
    }
    let owned = |s: Option<&[u8]>| s.map(<[u8]>::to_vec);
    let sections = Sections {
        feature_pipeline: owned(a.feature_pipeline),
        labels: owned(a.labels),
        monitoring_baseline: owned(a.monitoring_baseline),
        metadata: owned(a.metadata),
    };
    let mut graph = Graph {
        tensors,
        inputs,
        outputs,
        ops,
        description: h.name.to_string(),
    };
    for i in 0..graph.ops.len() {
        graph.ops[i].macs = crate::macs(&graph, &graph.ops[i]);
    }
    Ok((graph, sections))
}
