//! Generates memory.x from boards/lm3s6965evb.toml and embeds the model cases (see `edgeflow_firmware_build`).
fn main() {
    edgeflow_firmware_build::model_app("lm3s6965evb");
}
