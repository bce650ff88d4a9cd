//! Median host latency of one inference: `latency ARTIFACT INPUT [SECONDS [THREADS]]`.
//!
//! `INPUT` holds the model input's raw bytes (what `Runtime::input_mut(0)` takes). Runs
//! the model repeatedly for about `SECONDS` (default 1) after a warm-up, and prints one
//! line: `median_us=… min_us=… runs=… kernels=… threads=… packed_ops=…
//! packed_output_equal=…` (the last: whether `invoke_packed`'s output equals `invoke`'s,
//! bit for bit, on this input). By default the
//! host path: weights packed once (`PackedModel`), op records decoded once (on the one
//! `Runtime`'s first call, then reused) and `Runtime::invoke_packed` with
//! `THREADS` threads (default 1). `EDGEFLOW_NN_UNPACKED=1` times `Runtime::invoke` (the
//! device path's kernels, AVX2 / NEON on the host); `EDGEFLOW_NN_PORTABLE=1` selects the
//! portable kernels (and packs nothing). `cargo xtask bench-host` builds it in release
//! and runs it beside the LiteRT peer.
//!
//! `EDGEFLOW_LATENCY_OPS=1` also prints, per op type, the median time per inference spent
//! in it (`op NAME count=… us=…`; the timer's own cost is included); `=2` also each op's
//! (`op #POSITION NAME us=…`).
//!
//! `EDGEFLOW_LATENCY_RUNS=N` replaces the timing by exactly `N` inferences after the
//! warm-up, with no clock read (for instruction counts under emulation: the counts of
//! `N` and of `0` runs differ by `N` inferences; `bench/aarch64_insns/run.sh`), and prints
//! `runs=N kernels=… threads=… packed_ops=… packed_output_equal=…`.
//! With it, `EDGEFLOW_LATENCY_OUTPUT=PATH` writes output 0's raw bytes after one more run
//! on the input written again (the runs may have overwritten it: the memory plan can reuse
//! the input's bytes), so the file is the model's answer to `INPUT`.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, artifact, input, rest @ ..] = &args[..] else {
        return Err("usage: latency ARTIFACT INPUT [SECONDS [THREADS]]".into());
    };
    let secs: f64 = rest.first().map_or(Ok(1.0), |s| s.parse())?;
    let threads: usize = rest.get(1).map_or(Ok(1), |s| s.parse())?;
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let unpacked = flag("EDGEFLOW_NN_UNPACKED");
    let per_op = flag("EDGEFLOW_LATENCY_OPS")
        || std::env::var("EDGEFLOW_LATENCY_OPS").is_ok_and(|v| v == "2");
    let artifact = std::fs::read(artifact).map_err(|e| format!("{artifact}: {e}"))?;
    let input = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let model = edgeflow_nn::Model::parse(&artifact)?;
    let packed = edgeflow_nn::PackedModel::new(&model).with_threads(threads);
    let names: Vec<&'static str> = model.ops().map(|d| d.op.name()).collect();
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
    // Per op position: the time since the previous op ended, for each run.
    let mut op_times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let run = |rt: &mut edgeflow_nn::Runtime<'_, '_, '_>,
               op_times: &mut Vec<Vec<f64>>|
     -> Result<(), edgeflow_nn::Error> {
        if !per_op {
            return if unpacked {
                rt.invoke()
            } else {
                rt.invoke_packed(&packed)
            };
        }
        let mut last = Instant::now();
        let mut after = |pos: usize, _src: u32| {
            let now = Instant::now();
            if let Some(v) = op_times.get_mut(pos) {
                v.push((now - last).as_secs_f64() * 1e6);
            }
            last = now;
        };
        if unpacked {
            rt.invoke_with(&mut after)
        } else {
            rt.invoke_packed_with(&packed, &mut after)
        }
    };
    // The packed path's output against the device path's (bit for bit), once.
    // (The input is written again before each: the memory plan may reuse its bytes.)
    rt.invoke()?;
    let want = rt.output(0)?.to_vec();
    rt.input_mut(0)?.copy_from_slice(&input);
    rt.invoke_packed(&packed)?;
    let same = rt.output(0)? == &want[..];
    rt.input_mut(0)?.copy_from_slice(&input);
    for _ in 0..3 {
        run(&mut rt, &mut op_times)?;
    }
    op_times.iter_mut().for_each(Vec::clear);
    let portable = flag("EDGEFLOW_NN_PORTABLE");
    if let Ok(runs) = std::env::var("EDGEFLOW_LATENCY_RUNS") {
        let runs: usize = runs
            .parse()
            .map_err(|e| format!("EDGEFLOW_LATENCY_RUNS={runs:?}: {e}"))?;
        for _ in 0..runs {
            run(&mut rt, &mut op_times)?;
        }
        if let Ok(path) = std::env::var("EDGEFLOW_LATENCY_OUTPUT") {
            // Once more on the input itself (the runs above may have overwritten it).
            rt.input_mut(0)?.copy_from_slice(&input);
            run(&mut rt, &mut op_times)?;
            std::fs::write(&path, rt.output(0)?).map_err(|e| format!("{path}: {e}"))?;
        }
        println!(
            "runs={runs} kernels={} threads={} packed_ops={} packed_output_equal={same}",
            if portable { "portable" } else { "simd" },
            if unpacked { 1 } else { packed.threads() },
            if unpacked { 0 } else { packed.packed_ops() },
        );
        return Ok(());
    }
    let budget = Duration::from_secs_f64(secs);
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 100_000) {
        let t = Instant::now();
        run(&mut rt, &mut op_times)?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "median_us={:.1} min_us={:.1} runs={} kernels={} threads={} packed_ops={} packed_output_equal={}",
        samples[samples.len() / 2],
        samples[0],
        samples.len(),
        if portable { "portable" } else { "simd" },
        if unpacked { 1 } else { packed.threads() },
        if unpacked { 0 } else { packed.packed_ops() },
        same,
    );
    if std::env::var("EDGEFLOW_LATENCY_OPS").is_ok_and(|v| v == "2") {
        for (pos, (name, v)) in names.iter().zip(op_times.iter_mut()).enumerate() {
            v.sort_by(f64::total_cmp);
            let med = v.get(v.len() / 2).copied().unwrap_or(0.0);
            println!("op #{pos} {name} us={med:.1}");
        }
    }
    if per_op {
        let mut by_type: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        for (name, v) in names.iter().zip(op_times.iter_mut()) {
            v.sort_by(f64::total_cmp);
            let med = v.get(v.len() / 2).copied().unwrap_or(0.0);
            let e = by_type.entry(name).or_default();
            e.0 += 1;
            e.1 += med;
        }
        for (name, (count, us)) in by_type {
            println!("op {name} count={count} us={us:.1}");
        }
    }
    Ok(())
}
