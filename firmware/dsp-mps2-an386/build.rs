//! Generates memory.x from boards/mps2-an386.toml and embeds the feature-pipeline cases (see `edgeflow_firmware_build`).
fn main() {
    edgeflow_firmware_build::dsp_app("mps2-an386");
}
