//! Links this board's memory.x and embeds the feature-pipeline cases (see `edgeflow_firmware_build`).
fn main() {
    edgeflow_firmware_build::dsp_app();
}
