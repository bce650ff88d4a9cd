//! Writes the deterministic sample stream of this format version (see `tests/sample`).
//!
//! `cargo run -p edgeflow-telemetry --features std --example sample_stream -- OUT.bin`
#[path = "../tests/sample/mod.rs"]
mod sample;

fn main() -> std::io::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| {
        format!(
            "stream_v{}_{}.bin",
            edgeflow_telemetry::FORMAT_MAJOR,
            edgeflow_telemetry::FORMAT_MINOR
        )
    });
    let bytes = sample::stream();
    std::fs::write(&out, &bytes)?;
    println!("wrote {} bytes to {out}", bytes.len());
    Ok(())
}
