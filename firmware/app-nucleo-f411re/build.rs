//! Generates this board's memory.x and slot constants from boards/nucleo-f411re.toml [layout], and
//! its buffer sizes (app.rs) from [app].
fn main() {
    edgeflow_firmware_build::board_app("nucleo-f411re");
}
