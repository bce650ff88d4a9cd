//! Human-readable description of a validated model: ops, tensors, shapes, quantization,
//! flash bytes, arena bytes and MACs per op (what `edgeflow inspect` prints).

use std::fmt::Write;

use edgeflow_format::graph::{Location, Op, OpDef, TensorDef};
use edgeflow_nn::Model;

/// Multiply-accumulates of one op record.
pub fn macs(d: &OpDef<'_>) -> u64 {
    let out = d
        .outputs
        .first()
        .and_then(|t| t.shape.num_elements())
        .unwrap_or(0) as u64;
    let w = d.inputs.get(1);
    match d.op {
        Op::Conv2d(_) => w.map_or(0, |w| {
            out * (w.shape.dim(1) * w.shape.dim(2) * w.shape.dim(3)) as u64
        }),
        Op::DepthwiseConv2d(_) => w.map_or(0, |w| out * (w.shape.dim(1) * w.shape.dim(2)) as u64),
        Op::FullyConnected(_) => w.map_or(0, |w| out * w.shape.dim(1) as u64),
        _ => 0,
    }
}

fn shape(t: &TensorDef<'_>) -> String {
    let dims: Vec<String> = t.shape.dims().iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join("x"))
}

fn tensor(t: &TensorDef<'_>) -> String {
    let q = match &t.quant {
        Some(q) if q.per_channel.is_some() => format!(
            " q(per-channel x{}, zp {})",
            q.per_channel.map_or(0, |p| p.scales.0.len() / 4),
            q.zero_point
        ),
        Some(q) => format!(" q({:.6e}, zp {})", q.scale, q.zero_point),
        None => String::new(),
    };
    let loc = match t.location {
        Location::Arena { offset } => format!("@arena+{offset}"),
        Location::Const { offset } => format!("@weights+{offset}"),
    };
    format!("t{} {:?}{}{} {}", t.id, t.dtype, shape(t), q, loc)
}

/// Describes a model; `file_bytes` is the artifact size in flash.
pub fn describe(model: &Model<'_>, file_bytes: usize) -> String {
    let h = model.header();
    let mut s = String::new();
    let a = model.artifact();
    let _ = writeln!(
        s,
        "model        {}",
        if h.name.is_empty() {
            "(unnamed)"
        } else {
            h.name
        }
    );
    let _ = writeln!(s, "format       {}.{}", a.major, a.minor);
    let _ = writeln!(s, "flash bytes  {file_bytes} (weights {})", a.weights.len());
    let _ = writeln!(s, "arena bytes  {}", h.arena_bytes);
    let _ = writeln!(s, "ops          {}", h.op_count);
    let _ = writeln!(s, "MACs         {}", h.macs);
    for t in h.inputs.iter() {
        let _ = writeln!(s, "input        {}", tensor(t));
    }
    for t in h.outputs.iter() {
        let _ = writeln!(s, "output       {}", tensor(t));
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>4}  {:<18} {:>10}  {:<6} tensors",
        "#", "op", "MACs", "scratch"
    );
    for (i, d) in model.ops().enumerate() {
        let scratch = d.scratch.map_or(0, |s| s.len);
        let _ = writeln!(
            s,
            "{:>4}  {:<18} {:>10}  {:<6} ",
            i,
            d.op.name(),
            macs(&d),
            scratch
        );
        for t in d.inputs.iter() {
            let _ = writeln!(s, "{:>40} in  {}", "", tensor(t));
        }
        for t in d.outputs.iter() {
            let _ = writeln!(s, "{:>40} out {}", "", tensor(t));
        }
    }
    s
}
