//! Median host latency of one inference: `latency ARTIFACT INPUT [SECONDS]`.
//!
//! `INPUT` holds the model input's raw bytes (what `Runtime::input_mut(0)` takes). Runs
//! `invoke` repeatedly for about `SECONDS` (default 1) after a warm-up, and prints one
//! line: `median_us=… min_us=… runs=… isa=…`. `cargo xtask bench-host` builds it in
//! release and runs it beside the LiteRT peer; `EDGEFLOW_NN_PORTABLE=1` selects the
//! portable kernels instead of AVX2 / NEON.
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, artifact, input, rest @ ..] = &args[..] else {
        return Err("usage: latency ARTIFACT INPUT [SECONDS]".into());
    };
    let secs: f64 = rest.first().map_or(Ok(1.0), |s| s.parse())?;
    let artifact = std::fs::read(artifact).map_err(|e| format!("{artifact}: {e}"))?;
    let input = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let model = edgeflow_nn::Model::parse(&artifact)?;
    let mut arena = edgeflow_nn::HostArena::for_model(&model)?;
    let mut rt = edgeflow_nn::Runtime::new(&model, arena.as_mut_bytes())?;
    let slot = rt.input_mut(0)?;
    if slot.len() != input.len() {
        return Err(format!(
            "input has {} bytes, the model takes {}",
            input.len(),
            slot.len()
        )
        .into());
    }
    slot.copy_from_slice(&input);
    for _ in 0..3 {
        rt.invoke()?;
    }
    let budget = Duration::from_secs_f64(secs);
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 100_000) {
        let t = Instant::now();
        rt.invoke()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let portable = std::env::var("EDGEFLOW_NN_PORTABLE").is_ok_and(|v| v == "1");
    println!(
        "median_us={:.1} min_us={:.1} runs={} kernels={}",
        samples[samples.len() / 2],
        samples[0],
        samples.len(),
        if portable { "portable" } else { "simd" }
    );
    Ok(())
}
