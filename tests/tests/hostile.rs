//! The hostile files in `tests/hostile/` (see its README): each is a kind of fault that once
//! broke the no-panic or bounded-memory promise. Each must now give a clear error (or, where
//! the file is a valid model, be refused by the host's caps, tested in the CLI's tests).

use std::path::PathBuf;

fn hostile(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("hostile")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn empty_scratch_at_the_output_start_is_rejected_by_parse() {
    // One SOFTMAX whose scratch region has length 0 and starts at the output's first byte:
    // `parse` accepted it and the runtime's arena split panicked (`mid > len`).
    let bytes = hostile("artifact_softmax_empty_scratch_140B.efm");
    let e =
        edgeflow_nn::Model::parse(&bytes).expect_err("an empty scratch region must be rejected");
    let text = e.to_string();
    assert!(
        text.contains("SOFTMAX") && text.contains("scratch region is empty"),
        "{text}"
    );
}

#[test]
fn pad_with_a_rank_0_output_is_a_named_error() {
    // A PAD whose output tensor has an empty shape: the importer indexed the output's
    // dims by the input's rank and panicked.
    let e = edgeflow_compile::compile(&hostile("tflite_pad_output_rank0.tflite"), "pad")
        .expect_err("rank mismatch");
    let text = e.to_string();
    assert!(
        text.contains("PAD") && text.contains("output tensor") && text.contains("rank 0"),
        "{text}"
    );
}

#[test]
fn a_177_byte_artifact_may_ask_for_a_huge_arena_but_says_so() {
    // Valid by the format (a PAD to [1, 22000, 22000, 3]); the library reports its arena
    // size honestly and the host decides (the CLI's cap is tested in edgeflow-cli).
    let bytes = hostile("artifact_pad_1p45GB_arena_177B.efm");
    assert_eq!(bytes.len(), 177);
    let m = edgeflow_nn::Model::parse(&bytes).expect("the format allows it");
    assert!(m.arena_bytes() > 1_400_000_000, "{}", m.arena_bytes());
    // An arena of the wrong size is an error naming the bytes needed, not an allocation.
    let mut small = vec![0u8; 1024];
    let e = edgeflow_nn::Runtime::new(&m, &mut small)
        .err()
        .expect("too small");
    assert!(e.to_string().contains(&m.arena_bytes().to_string()), "{e}");
}

#[test]
fn tensor_sizes_that_overflow_are_named_errors() {
    // A real model whose input shape is patched from [1, 7, 9, 3] to
    // [1, 2^31-1, 2^31-1, 3]: ~1.4e19 bytes, which wrapped around in release builds.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/fixtures/conv_same_s1_int8.tflite");
    let mut m = std::fs::read(path).expect("fixture");
    let pat: Vec<u8> = [4i32, 1, 7, 9, 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let at = m
        .windows(pat.len())
        .position(|w| w == pat)
        .expect("the input shape");
    for k in [2, 3] {
        m[at + 4 * k..at + 4 * k + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    }
    let e = edgeflow_compile::compile(&m, "huge").expect_err("overflow");
    let text = e.to_string();
    assert!(
        text.contains("overflows") && text.contains("2147483647"),
        "{text}"
    );
}

#[test]
fn zero_points_outside_their_type_are_named_errors() {
    // Found by the seeded `import_tflite` fuzzer: an int8 tensor's zero point of i32::MIN
    // (stored as i64 in the flatbuffer) overflowed when negated for the requantization.
    let e = edgeflow_compile::compile(&hostile("tflite_zero_point_overflow.tflite"), "zp")
        .expect_err("zero point out of range");
    let text = e.to_string();
    assert!(
        text.contains("zero point") && text.contains("outside the range"),
        "{text}"
    );
}
