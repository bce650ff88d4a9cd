//! Generates this board's memory.x and slot constants from boards/nucleo-f411re.toml [layout].
fn main() {
    edgeflow_firmware_build::board_app("nucleo-f411re");
}
