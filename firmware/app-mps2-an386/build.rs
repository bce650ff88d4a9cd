//! Generates this board's memory.x and slot constants from boards/mps2-an386.toml [layout], and
//! its buffer sizes (app.rs) from [app].
fn main() {
    edgeflow_firmware_build::board_app("mps2-an386");
}
