//! RESHAPE: the bytes do not change; a copy unless the planner placed output on input.

use edgeflow_format::graph::TensorDef;

use super::{TensorIn, TensorOut};

pub(crate) fn check(inputs: &[TensorDef<'_>], output: &TensorDef<'_>) -> Result<(), &'static str> {
    // TFLite RESHAPE may carry the new shape as a second (constant) input; it is ignored.
    let input = inputs
        .first()
        .ok_or(why!("reshape.rs", "RESHAPE needs an input"))?;
    if input.dtype != output.dtype {
        return Err(why!("reshape.rs", "input and output types differ"));
    }
    if input.shape.num_elements() != output.shape.num_elements() {
        return Err(why!("reshape.rs", "input and output element counts differ"));
    }
    Ok(())
}

pub(crate) fn eval(inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    if let Some(input) = inputs.first() {
        if input.data.len() == output.data.len() {
            output.data.copy_from_slice(input.data);
        }
    }
}
