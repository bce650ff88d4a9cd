//! Instructions per inference estimated from per-op costs, for boards without an emulator.
//!
//! Each op kind costs `fixed + per_unit × work + per_output × outputs` instructions, where
//! `outputs` is the number of output elements and `work` is the op's
//! multiply-accumulates (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED), output elements ×
//! filter area (pools), input elements (MEAN) or output elements (all others). The
//! coefficients for the Cortex-M4F are relative-error least-squares fits to per-op counts
//! measured on QEMU `mps2-an386` (`-icount shift=0`) with the profiling firmware; the table
//! (`cost/cortex-m4f.toml`) records the command that measured it and the estimate's error
//! against whole-inference counts.

use std::collections::BTreeMap;

use edgeflow_format::graph::{Op, OpDef};
use serde::{Deserialize, Serialize};

/// Cost of one op kind.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpCost {
    /// Instructions per op, whatever its size.
    pub fixed: f64,
    /// Instructions per unit of work (see the module docs).
    pub per_unit: f64,
    /// Instructions per output element (requantization, stores, loop overhead).
    #[serde(default)]
    pub per_output: f64,
}

/// A per-op cost table for one core.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CostTable {
    /// The core the costs were measured on.
    pub core: String,
    /// The command that measured the table.
    pub measured_by: String,
    /// Mean absolute relative error of whole-inference estimates on the measured models.
    pub mean_abs_error: f64,
    /// Largest absolute relative error on the measured models.
    pub max_abs_error: f64,
    /// Costs by op name (`CONV_2D`, …).
    pub ops: BTreeMap<String, OpCost>,
}

/// The committed Cortex-M4F table.
pub const CORTEX_M4F: &str = include_str!("../cost/cortex-m4f.toml");

impl CostTable {
    /// The committed Cortex-M4F table. Errors only if the committed file is corrupt.
    pub fn cortex_m4f() -> Result<CostTable, toml::de::Error> {
        toml::from_str(CORTEX_M4F)
    }

    /// Estimated instructions of one op; `None` when the table lacks its kind.
    pub fn op(&self, d: &OpDef<'_>) -> Option<f64> {
        let c = self.ops.get(d.op.name())?;
        Some(c.fixed + c.per_unit * work(d) as f64 + c.per_output * outputs(d) as f64)
    }

    /// Estimated instructions per inference of a validated model; `Err(op name)` naming the
    /// first op kind the table does not cover.
    pub fn estimate(&self, model: &edgeflow_nn::Model<'_>) -> Result<u64, &'static str> {
        let mut total = 0.0;
        for d in model.ops() {
            total += self.op(&d).ok_or(d.op.name())?;
        }
        Ok(total.max(0.0).round() as u64)
    }
}

/// Output elements of an op.
pub fn outputs(d: &OpDef<'_>) -> u64 {
    d.outputs
        .first()
        .and_then(|t| t.shape.num_elements())
        .unwrap_or(0) as u64
}

/// The work units of an op (see the module docs).
pub fn work(d: &OpDef<'_>) -> u64 {
    let elems = |t: Option<&edgeflow_format::graph::TensorDef<'_>>| {
        t.and_then(|t| t.shape.num_elements()).unwrap_or(0) as u64
    };
    let out = elems(d.outputs.first());
    match d.op {
        Op::Conv2d(_) => {
            let w = d.inputs.get(1).map(|t| t.shape);
            w.map_or(0, |w| out * (w.dim(1) * w.dim(2) * w.dim(3)) as u64)
        }
        Op::DepthwiseConv2d(_) => {
            let w = d.inputs.get(1).map(|t| t.shape);
            w.map_or(0, |w| out * (w.dim(1) * w.dim(2)) as u64)
        }
        Op::FullyConnected(_) => {
            let w = d.inputs.get(1).map(|t| t.shape);
            w.map_or(0, |w| out * w.dim(1) as u64)
        }
        Op::AveragePool2d(p) | Op::MaxPool2d(p) => out * p.filter[0] as u64 * p.filter[1] as u64,
        Op::Mean(_) => elems(d.inputs.first()),
        _ => out,
    }
}

/// Least-squares `fixed + per_unit × work` through `(work, instructions)` points,
/// minimising the squared *relative* error (weights `1 / instructions²`), so that small and
/// large ops count alike. With a single distinct work value all cost goes to `per_unit`
/// (or `fixed` when work is 0); a negative coefficient is clamped to 0 and the other refitted.
pub fn fit(points: &[(f64, f64)]) -> OpCost {
    let pts: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|p| p.1 > 0.0)
        .map(|&(x, y)| (x, y, 1.0 / (y * y)))
        .collect();
    let sw: f64 = pts.iter().map(|p| p.2).sum();
    if pts.is_empty() || sw <= 0.0 {
        return OpCost {
            fixed: 0.0,
            per_unit: 0.0,
            per_output: 0.0,
        };
    }
    let mx = pts.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
    let my = pts.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
    let sxx: f64 = pts.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let only_fixed = OpCost {
        fixed: my.max(0.0),
        per_unit: 0.0,
        per_output: 0.0,
    };
    let through_origin = || {
        let sx2: f64 = pts.iter().map(|p| p.2 * p.0 * p.0).sum();
        let sxy0: f64 = pts.iter().map(|p| p.2 * p.0 * p.1).sum();
        if sx2 > 0.0 {
            OpCost {
                fixed: 0.0,
                per_unit: (sxy0 / sx2).max(0.0),
                per_output: 0.0,
            }
        } else {
            only_fixed
        }
    };
    if sxx <= 0.0 {
        return through_origin();
    }
    let b = sxy / sxx;
    let a = my - b * mx;
    if b < 0.0 {
        return only_fixed;
    }
    if a < 0.0 {
        return through_origin();
    }
    OpCost {
        fixed: a,
        per_unit: b,
        per_output: 0.0,
    }
}

/// Like [`fit`] with a third term: `fixed + per_unit × work + per_output × outputs` through
/// `(work, outputs, instructions)` points (relative-error weights). Falls back to [`fit`]
/// on `work` when the two terms cannot be separated (collinear, as for element-wise ops)
/// or a coefficient comes out negative.
pub fn fit3(points: &[(f64, f64, f64)]) -> OpCost {
    let two = || fit(&points.iter().map(|p| (p.0, p.2)).collect::<Vec<_>>());
    let mut m = [[0f64; 4]; 3];
    for &(x1, x2, y) in points.iter().filter(|p| p.2 > 0.0) {
        let w = 1.0 / (y * y);
        let v = [1.0, x1, x2];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += w * v[i] * v[j];
            }
            m[i][3] += w * v[i] * y;
        }
    }
    // Gaussian elimination with partial pivoting.
    for c in 0..3 {
        let piv = (c..3)
            .max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))
            .unwrap_or(c);
        m.swap(c, piv);
        if m[c][c].abs() < 1e-12 * (1.0 + m[0][0].abs()) {
            return two();
        }
        for r in 0..3 {
            if r != c {
                let f = m[r][c] / m[c][c];
                for k in c..4 {
                    m[r][k] -= f * m[c][k];
                }
            }
        }
    }
    let (a, b, c) = (m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]);
    if !(a.is_finite() && b.is_finite() && c.is_finite()) || a < 0.0 || b < 0.0 || c < 0.0 {
        let t = two();
        return t;
    }
    OpCost {
        fixed: a,
        per_unit: b,
        per_output: c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_line() {
        let c = fit(&[(10.0, 120.0), (20.0, 220.0), (40.0, 420.0)]);
        assert!(
            (c.fixed - 20.0).abs() < 1e-9 && (c.per_unit - 10.0).abs() < 1e-9,
            "{c:?}"
        );
        let c = fit(&[(5.0, 60.0), (5.0, 60.0)]);
        assert!((c.per_unit - 12.0).abs() < 1e-9 && c.fixed == 0.0, "{c:?}");
    }

    #[test]
    fn fit3_separates_macs_and_outputs() {
        let pts: Vec<(f64, f64, f64)> =
            [(100.0, 10.0), (400.0, 10.0), (400.0, 50.0), (900.0, 30.0)]
                .iter()
                .map(|&(w, o)| (w, o, 500.0 + 2.0 * w + 30.0 * o))
                .collect();
        let c = fit3(&pts);
        assert!((c.fixed - 500.0).abs() < 1e-6, "{c:?}");
        assert!(
            (c.per_unit - 2.0).abs() < 1e-9 && (c.per_output - 30.0).abs() < 1e-9,
            "{c:?}"
        );
    }

    #[test]
    fn committed_table_loads_and_covers_the_common_ops() {
        let t = CostTable::cortex_m4f().expect("committed table parses");
        for op in [
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "FULLY_CONNECTED",
            "SOFTMAX",
            "RESHAPE",
        ] {
            assert!(t.ops.contains_key(op), "{op} missing");
        }
        assert!(t.measured_by.contains("cargo test"));
    }
}
