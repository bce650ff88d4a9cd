//! The committed `parse_execute` fuzz seeds (`fuzz/seeds/parse_execute/`, written by
//! `cargo xtask fuzz-seeds`) replayed without cargo-fuzz, the way the target runs them
//! (first byte odd: length and CRC resealed; then parse and, if valid, invoke), and checked
//! against what the generator promises: every fixture seed is an artifact of this reader's
//! format that parses, so mutations reach the kernels; the kept format 1.1 seeds
//! (`format_1_1_*`) are refused as older plans or accepted as `xtask/src/fuzz.rs` says.

use edgeflow_format::{FORMAT_MAJOR, FORMAT_MINOR, HEADER_LEN};

/// The fuzz target's input transformation (`fuzz/fuzz_targets/parse_execute.rs`).
fn artifact_of(seed: &[u8]) -> Vec<u8> {
    let (&mode, rest) = seed.split_first().expect("a seed has a mode byte");
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= HEADER_LEN {
        let body_len = (bytes.len() - HEADER_LEN) as u32;
        bytes[8..12].copy_from_slice(&body_len.to_le_bytes());
        let crc = edgeflow_format::CRC32.checksum(&bytes[HEADER_LEN..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

#[test]
fn parse_execute_seeds_are_current_format_and_run() {
    let dir = edgeflow_tests::root().join("fuzz/seeds/parse_execute");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("seed directory")
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .collect();
    names.sort();
    let (mut current, mut old_ok, mut old_refused) = (0, 0, 0);
    for name in &names {
        let bytes = artifact_of(&std::fs::read(dir.join(name)).expect("seed"));
        let version = (
            u16::from_le_bytes([bytes[4], bytes[5]]),
            u16::from_le_bytes([bytes[6], bytes[7]]),
        );
        let parsed = edgeflow_nn::Model::parse(&bytes);
        if name.starts_with("hostile_") {
            // Regression files (tests/hostile/, checked by hostile.rs): only no panic here.
            continue;
        }
        if name.starts_with("format_1_1_") {
            assert_eq!(version, (1, 1), "{name}");
            let refused = ["conv_same_s1_int8", "fc_int8", "pools_int8"]
                .iter()
                .any(|m| name.starts_with(&format!("format_1_1_{m}.")));
            match parsed {
                Err(edgeflow_nn::Error::OlderPlan { .. }) if refused => old_refused += 1,
                Ok(_) if !refused => old_ok += 1,
                other => panic!("{name}: {other:?}"),
            }
            continue;
        }
        assert_eq!(
            version,
            (FORMAT_MAJOR, FORMAT_MINOR),
            "{name}: regenerate the seeds"
        );
        let model = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut arena = vec![0u8; model.arena_bytes().min(1 << 20) + 16];
        let off = arena.as_ptr().align_offset(16);
        let mut rt = edgeflow_nn::Runtime::new(&model, &mut arena[off..])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        rt.invoke().unwrap_or_else(|e| panic!("{name}: {e}"));
        current += 1;
    }
    // 46 fixture artifacts and the pipeline-tables one, each as is and resealed (94); the
    // 5 old ones as is and resealed are counted below. A fixture added without
    // regenerating the seeds (`cargo xtask fuzz-seeds`) changes the count.
    assert_eq!(current, 94, "current-format seeds");
    assert_eq!((old_refused, old_ok), (6, 4));
}
