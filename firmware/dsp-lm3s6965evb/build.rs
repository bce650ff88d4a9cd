//! Generates memory.x from boards/lm3s6965evb.toml and embeds the feature-pipeline cases (see `edgeflow_firmware_build`).
fn main() {
    edgeflow_firmware_build::dsp_app("lm3s6965evb");
}
