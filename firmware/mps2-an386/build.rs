//! Generates memory.x from boards/mps2-an386.toml and embeds the model cases (see `edgeflow_firmware_build`).
fn main() {
    edgeflow_firmware_build::model_app("mps2-an386");
}
