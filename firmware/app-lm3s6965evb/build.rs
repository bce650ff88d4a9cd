//! Links this board's memory.x.
fn main() {
    edgeflow_firmware_build::link_memory_x();
}
