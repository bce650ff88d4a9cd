//! Host reference evaluation of an IR [`Graph`], op by op, with edgeflow-nn's own kernels.
//!
//! The quantizer needs every intermediate activation of the float model on each
//! calibration sample. Rather than a second implementation of every op, this runs the
//! run-time's kernels (the f32 variants for a float graph, the int8 ones for a quantized
//! graph) on host buffers, one buffer per tensor, so a float graph is evaluated exactly
//! as `edgeflow-nn` would evaluate it on a device (IEEE single precision, fixed
//! operation order, `libm` transcendental functions).

use edgeflow_format::graph::{Location, TensorDef};
use edgeflow_nn::op::{self as nn_op, TensorIn, TensorOut};

use crate::error::CompileError;
use crate::ir::Graph;
use crate::{scale_bytes, tensor_def, with_requant};

/// A graph checked once op by op, ready to evaluate many inputs.
pub struct Evaluator<'g> {
    graph: &'g Graph,
    scales: Vec<Vec<u8>>,
    scratch: Vec<usize>,
}

impl<'g> Evaluator<'g> {
    /// Checks every op with the run-time's own preconditions.
    ///
    /// Errors: [`CompileError::Op`] naming the op whose shapes or parameters the kernel
    /// rejects.
    pub fn new(graph: &'g Graph) -> Result<Self, CompileError> {
        let scales = scale_bytes(graph);
        let here = Location::Arena { offset: 0 };
        let mut scratch = Vec::with_capacity(graph.ops.len());
        for (i, op) in graph.ops.iter().enumerate() {
            let ins: Vec<TensorDef<'_>> = op
                .inputs
                .iter()
                .map(|&t| tensor_def(graph, &scales, t, here))
                .collect();
            let out = tensor_def(graph, &scales, op.output, here);
            let full = with_requant(&op.op, op.requant.as_ref());
            let n = nn_op::scratch_bytes(&full, &ins, &out);
            nn_op::check(&full, &ins, &out, n).map_err(|reason| CompileError::Op {
                index: i,
                op: op.op.name().to_string(),
                reason: reason.to_string(),
            })?;
            scratch.push(n);
        }
        Ok(Self {
            graph,
            scales,
            scratch,
        })
    }

    /// Evaluates the graph on `inputs` (one little-endian byte buffer per graph input,
    /// `num_elements * dtype.size()` bytes each) and returns every tensor's value:
    /// `Some(bytes)` for graph inputs and op outputs, `None` for constants.
    ///
    /// Errors: a wrong number of inputs or a buffer of the wrong length.
    pub fn run(&self, inputs: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, CompileError> {
        let g = self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(CompileError::InputCount {
                given: inputs.len(),
                expected: g.inputs.len(),
            });
        }
        let mut values: Vec<Option<Vec<u8>>> = vec![None; g.tensors.len()];
        for (&t, data) in g.inputs.iter().zip(inputs) {
            let want = g.tensors[t]
                .bytes()
                .ok_or(CompileError::TooLargeToEvaluate {
                    role: "input",
                    tensor: t,
                })?;
            if data.len() != want {
                return Err(CompileError::InputSize {
                    tensor: t,
                    name: g.tensors[t].name.clone(),
                    want,
                    got: data.len(),
                });
            }
            values[t] = Some(data.to_vec());
        }
        let here = Location::Arena { offset: 0 };
        for (i, op) in g.ops.iter().enumerate() {
            let defs: Vec<TensorDef<'_>> = op
                .inputs
                .iter()
                .map(|&t| tensor_def(g, &self.scales, t, here))
                .collect();
            let mut ins = Vec::with_capacity(defs.len());
            for (def, &t) in defs.iter().zip(&op.inputs) {
                let data = match (&g.tensors[t].data, &values[t]) {
                    (Some(c), _) => c.as_slice(),
                    (None, Some(v)) => v.as_slice(),
                    (None, None) => {
                        return Err(CompileError::Op {
                            index: i,
                            op: op.op.name().to_string(),
                            reason: format!("input tensor {t} has no value yet"),
                        })
                    }
                };
                ins.push(TensorIn { def, data });
            }
            let out_def = tensor_def(g, &self.scales, op.output, here);
            let out_bytes =
                g.tensors[op.output]
                    .bytes()
                    .ok_or(CompileError::TooLargeToEvaluate {
                        role: "output",
                        tensor: op.output,
                    })?;
            let mut out = vec![0u8; out_bytes];
            let mut scratch = vec![0u8; self.scratch[i]];
            nn_op::eval(
                &with_requant(&op.op, op.requant.as_ref()),
                &ins,
                TensorOut {
                    def: &out_def,
                    data: &mut out,
                },
                &mut scratch,
            )
            .map_err(|reason| CompileError::Op {
                index: i,
                op: op.op.name().to_string(),
                reason: reason.to_string(),
            })?;
            values[op.output] = Some(out);
        }
        Ok(values)
    }
}

/// Little-endian bytes of `f32` values.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `f32` values of little-endian bytes (a trailing partial value is ignored).
pub fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
