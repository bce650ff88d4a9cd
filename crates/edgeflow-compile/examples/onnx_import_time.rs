//! Import and compile time of ONNX models (BENCHMARKS.md, "ONNX import").
//!
//! `cargo run -p edgeflow-compile --features onnx --example onnx_import_time -- FILE.onnx…`
//! prints, per model, the median over 20 runs of (a) `onnx::import_model` (protobuf decode +
//! layout conversion + folding; for a QDQ model also `quantize::quantize_qdq`, the mapping
//! onto int8 kernels with the model's own parameters, as `edgeflow convert` does) and (b)
//! `emit` (memory plan + artifact + validation).

use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| model | bytes | ops | import (ms) | compile (ms) |");
    println!("|---|--:|--:|--:|--:|");
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path)?;
        let (mut imp, mut comp) = (vec![], vec![]);
        let mut ops = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let m = edgeflow_compile::onnx::import_model(&bytes)?;
            let g = match &m.qdq {
                Some(q) => edgeflow_compile::quantize::quantize_qdq(&m.graph, q, true)?,
                None => m.graph,
            };
            imp.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            edgeflow_compile::emit(&g, "bench")?;
            comp.push(t.elapsed().as_secs_f64() * 1e3);
            ops = g.ops.len();
        }
        println!(
            "| {path} | {} | {ops} | {:.3} | {:.3} |",
            bytes.len(),
            median(imp),
            median(comp)
        );
    }
    Ok(())
}
