//! Generates this board's memory.x and slot constants from boards/lm3s6965evb.toml [layout], and
//! its buffer sizes (app.rs) from [app].
fn main() {
    edgeflow_firmware_build::board_app("lm3s6965evb");
}
