//! The flash layout has one source, the `[layout]` table of `boards/<board>.toml`: the
//! firmware's build script generates memory.x and the slot constants from it, and the host
//! (`edgeflow flash`, the HIL tests) reads it to place the model partition. This test links
//! each board's application and reads back, from the ELF, the layout the firmware was built
//! with (its `EDGEFLOW_LAYOUT` symbol) and where the linker put its sections; it fails if
//! either disagrees with what the host reads from the board file. The `[app]` table (buffer
//! sizes, generated into the application too) is checked against the RAM and the ELF's `.bss`.

use edgeflow_compile::board::Board;
use edgeflow_tests::{device, root};
use object::{Object, ObjectSection, ObjectSymbol};

fn check(name: &str) {
    let board = Board::load(&root().join("boards").join(format!("{name}.toml"))).expect("board");
    let l = board.layout.expect("the board has a [layout]");
    let elf_path = device::build_app(&board).unwrap_or_else(|e| panic!("{name}: {e}"));
    let bytes = std::fs::read(&elf_path).expect("read ELF");
    let elf = object::File::parse(&*bytes).expect("parse ELF");
    let sym = elf
        .symbols()
        .find(|s| s.name() == Ok("EDGEFLOW_LAYOUT"))
        .expect("EDGEFLOW_LAYOUT in the ELF");
    let section = elf
        .section_by_index(sym.section_index().expect("defined"))
        .expect("section");
    let data = section.data().expect("section data");
    let at = (sym.address() - section.address()) as usize;
    let words: Vec<u64> = data[at..at + 24]
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    assert_eq!(
        words,
        vec![
            l.firmware_origin,
            l.firmware_bytes,
            l.ram_origin,
            l.slots_origin,
            l.slot_bytes,
            l.page_bytes
        ],
        "{name}: the firmware was built with another layout than boards/{name}.toml says"
    );
    // Everything the image loads lies in the firmware region (never in the model slots);
    // everything else allocated lies in RAM.
    let fw = l.firmware_origin..l.firmware_origin + l.firmware_bytes;
    let ram = l.ram_origin..l.ram_origin + board.ram_bytes;
    let slots = l.slots_origin..l.slots_origin + l.partition_bytes();
    let mut loaded = 0;
    for s in elf.sections() {
        let (start, size) = (s.address(), s.size());
        let alloc = match s.flags() {
            object::SectionFlags::Elf { sh_flags } => {
                sh_flags & u64::from(object::elf::SHF_ALLOC) != 0
            }
            _ => false,
        };
        // Debug info and other non-allocated sections are not in the device's memory.
        if size == 0 || !alloc {
            continue;
        }
        let end = start + size;
        let in_fw = fw.contains(&start) && end <= fw.end;
        let in_ram = ram.contains(&start) && end <= ram.end;
        let name_s = s.name().unwrap_or("?");
        if matches!(
            s.kind(),
            object::SectionKind::Text | object::SectionKind::ReadOnlyData
        ) {
            assert!(in_fw, "{name}: section {name_s} at {start:#x}..{end:#x} is outside the firmware region {fw:x?}");
            loaded += size;
        } else if matches!(
            s.kind(),
            object::SectionKind::Data | object::SectionKind::UninitializedData
        ) {
            assert!(
                in_ram,
                "{name}: section {name_s} at {start:#x}..{end:#x} is outside RAM {ram:x?}"
            );
        }
        assert!(
            end <= slots.start || start >= slots.end || in_ram,
            "{name}: section {name_s} overlaps the model slots {slots:x?}"
        );
    }
    assert!(loaded > 0, "{name}: no code found");

    // The buffers of [app] (generated into the image as one static in .bss) fit the RAM with
    // the stack band, and the linked .bss holds them: the image was built with these sizes
    // or larger ones, not with sizes written elsewhere.
    let app = board
        .app
        .expect("a board with an application has an [app] table");
    let need = app.buffer_bytes() + app.stack_band_bytes.unwrap_or(0);
    assert!(
        need <= board.ram_bytes,
        "{name}: [app] buffers {} B + stack band {:?} exceed the RAM",
        app.buffer_bytes(),
        app.stack_band_bytes
    );
    let bss = elf.section_by_name(".bss").expect(".bss").size();
    assert!(
        bss >= app.buffer_bytes(),
        "{name}: .bss is {bss} B, less than the [app] buffers ({} B)",
        app.buffer_bytes()
    );
    // Nothing but those buffers is large: the statics besides them stay under 4 KiB, so a
    // smaller [app] gives a smaller image.
    assert!(
        bss < app.buffer_bytes() + 4096,
        "{name}: .bss is {bss} B for [app] buffers of {} B",
        app.buffer_bytes()
    );
}

#[test]
fn mps2_an386_app_is_linked_with_the_board_file_layout() {
    check("mps2-an386");
}

#[test]
fn lm3s6965evb_app_is_linked_with_the_board_file_layout() {
    check("lm3s6965evb");
}

/// The real board (built, not run: no board in CI).
#[test]
fn nucleo_f411re_app_is_linked_with_the_board_file_layout() {
    check("nucleo-f411re");
}

/// Every firmware crate's `.cargo/config.toml` (which cargo needs for the target and the
/// linker scripts, see boards/README.md) builds for its board file's `target` and repeats
/// no runner (the run command comes from the board file's `[runner]`).
#[test]
fn firmware_cargo_configs_follow_the_board_files() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("firmware")).expect("firmware/") {
        let dir = entry.expect("dir entry").path();
        let config = dir.join(".cargo/config.toml");
        if !config.exists() {
            continue;
        }
        let crate_name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let board_name = crate_name
            .strip_prefix("app-")
            .or_else(|| crate_name.strip_prefix("dsp-"))
            .unwrap_or(crate_name);
        let board = Board::load(&root().join("boards").join(format!("{board_name}.toml")))
            .unwrap_or_else(|e| panic!("{crate_name}: board {board_name}: {e}"));
        let text = std::fs::read_to_string(&config).expect("read config");
        let table: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let target = table
            .get("build")
            .and_then(|b| b.get("target"))
            .and_then(toml::Value::as_str);
        assert_eq!(
            target,
            Some(board.target.as_str()),
            "{}: [build] target differs from boards/{board_name}.toml",
            config.display()
        );
        let runner = table
            .get("target")
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.values().any(|v| v.get("runner").is_some()));
        assert!(
            !runner,
            "{}: a runner repeats boards/{board_name}.toml [runner]",
            config.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 7, "firmware crates with a .cargo/config.toml");
}
