//! Writes a feature-pipeline case for the firmware benchmark harness
//! (`firmware/dsp-<board>`, see `bench/tflm_frontend/run.sh`):
//!
//! `cargo run -p edgeflow-dsp --example frontend_case -- PIPELINE.toml AUDIO.i16 OUT_DIR`
//!
//! writes `OUT_DIR/pipeline.bin` (postcard), `OUT_DIR/tables.bin` (the host-designed
//! tables, little-endian f32 words), `OUT_DIR/input.i16` and `OUT_DIR/host_out.hex` (every
//! output tensor's bytes in hex, one line each), and prints `workspace=<words>
//! output=<bytes> features_fnv1a=<hash>` (FNV-1a over the features as little-endian u16,
//! the hash `bench/tflm_frontend/run.sh` prints for TFLM's front end).

use std::fmt::Write as _;
use std::path::PathBuf;

use edgeflow_dsp::host::{self, Sample};
use edgeflow_dsp::Pipeline;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [toml, audio, out] = args.as_slice() else {
        return Err("usage: frontend_case PIPELINE.toml AUDIO.i16 OUT_DIR".into());
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let spec = host::load(std::path::Path::new(toml))?;
    let bytes = host::to_bytes(&spec)?;
    let p = Pipeline::from_bytes(&bytes)?;
    let tables: Vec<u8> = host::tables(&p)?
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let raw = std::fs::read(audio)?;
    let samples: Vec<f32> = raw
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
        .collect();
    let outputs = host::run(&p, &Sample::Signal(samples))?;
    let mut hex = String::new();
    let mut hash = 2166136261u32;
    for o in &outputs {
        for b in o {
            let _ = write!(hex, "{b:02x}");
        }
        hex.push('\n');
        for v in host::as_f32(o) {
            for byte in (v as u16).to_le_bytes() {
                hash = (hash ^ byte as u32).wrapping_mul(16777619);
            }
        }
    }
    std::fs::write(out.join("pipeline.bin"), &bytes)?;
    std::fs::write(out.join("tables.bin"), &tables)?;
    std::fs::write(out.join("input.i16"), &raw)?;
    std::fs::write(out.join("host_out.hex"), hex)?;
    println!(
        "workspace={} output={} features_fnv1a={hash}",
        p.workspace_len(),
        p.output_bytes()
    );
    Ok(())
}
