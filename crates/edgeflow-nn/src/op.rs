//! One op at a time, outside an artifact: what the host compiler needs to plan scratch
//! and to evaluate a graph op by op with the run-time's own kernels (quantizer
//! calibration, reference evaluation).
//!
//! The kernels themselves stay private: they are sound only after their preconditions
//! were checked, so [`eval`] checks them (and every buffer length) on each call and
//! returns the reason instead of running an op that did not pass.

use edgeflow_format::graph::{Op, TensorDef, MAX_OP_INPUTS};

pub use crate::kernels::{TensorIn, TensorOut};

/// Scratch bytes `op` needs while it runs (0 for most ops, and for an op whose shapes do
/// not check). Firmware and the host planner size the scratch region with it.
pub fn scratch_bytes(op: &Op<'_>, inputs: &[TensorDef<'_>], output: &TensorDef<'_>) -> usize {
    crate::kernels::scratch_bytes(op, inputs, output)
}

/// Verifies every precondition the kernel of `op` relies on, for these tensors and a
/// scratch region of `scratch_len` bytes (the check [`crate::Model::parse`] runs on
/// every op record). Errors: the reason, in words.
pub fn check(
    op: &Op<'_>,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    scratch_len: usize,
) -> Result<(), &'static str> {
    crate::kernels::check(op, inputs, output, scratch_len)
}

/// Bytes of a tensor: `num_elements * dtype.size()`, or `None` on overflow.
fn tensor_bytes(t: &TensorDef<'_>) -> Option<usize> {
    t.shape.num_elements()?.checked_mul(t.dtype.size())
}

/// Runs `op` on `inputs` into `output`, using `scratch`, after [`check`] and after
/// checking that every buffer holds exactly `num_elements * dtype.size()` bytes.
///
/// Errors: the reason the op or a buffer was rejected; nothing was written then. Never
/// panics.
pub fn eval(
    op: &Op<'_>,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
) -> Result<(), &'static str> {
    let mut defs: heapless::Vec<TensorDef<'_>, MAX_OP_INPUTS> = heapless::Vec::new();
    for t in inputs {
        if tensor_bytes(t.def) != Some(t.data.len()) {
            return Err("an input buffer's length is not num_elements * dtype size");
        }
        defs.push(*t.def)
            .map_err(|_| "more inputs than an op takes")?;
    }
    if tensor_bytes(output.def) != Some(output.data.len()) {
        return Err("the output buffer's length is not num_elements * dtype size");
    }
    check(op, &defs, output.def, scratch.len())?;
    crate::kernels::eval(op, inputs, output, scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeflow_format::graph::{DType, Location, Shape};

    fn f32t(dims: &[u32]) -> TensorDef<'static> {
        TensorDef {
            id: 0,
            dtype: DType::F32,
            shape: Shape::new(dims).unwrap(),
            quant: None,
            location: Location::Arena { offset: 0 },
        }
    }

    #[test]
    fn eval_checks_the_op_and_every_buffer_first() {
        let (xd, od) = (f32t(&[2, 3]), f32t(&[6]));
        let x: [u8; 24] = core::array::from_fn(|i| i as u8);
        let mut out = [0u8; 24];
        let ins = [TensorIn { def: &xd, data: &x }];
        let run = |ins: &[TensorIn<'_, '_>], od: &TensorDef<'_>, out: &mut [u8]| {
            eval(&Op::Reshape, ins, TensorOut { def: od, data: out }, &mut [])
        };
        assert_eq!(run(&ins, &od, &mut out), Ok(()));
        assert_eq!(out, x);
        let mut short = [0xA5u8; 20];
        assert!(run(&ins, &od, &mut short).is_err());
        assert_eq!(short, [0xA5; 20], "nothing written on error");
        let bad_in = [TensorIn {
            def: &xd,
            data: &x[..20],
        }];
        assert!(run(&bad_in, &od, &mut out).is_err());
        // Element counts differ: the kernel's own check rejects it.
        let od5 = f32t(&[5]);
        assert!(run(&ins, &od5, &mut out[..20]).is_err());
        assert_eq!(scratch_bytes(&Op::Reshape, &[xd], &od), 0);
    }
}
