//! Links this board's memory.x and embeds the model cases (see `edgeflow_firmware_build`).
fn main() {
    edgeflow_firmware_build::model_app();
}
