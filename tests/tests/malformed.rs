//! Bad input: thousands of mutated and truncated artifacts and `.tflite` files. Each must
//! be rejected with an error or, if it happens to be valid, run to completion; none may
//! panic or hang.

use edgeflow_tests::fixtures;

/// xorshift64*, seeded: the mutants are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8], keep_prefix: usize) -> Vec<u8> {
    let mut m = base.to_vec();
    match rng.below(5) {
        0 => m.truncate(rng.below(m.len())),
        1 => {
            for _ in 0..1 + rng.below(4) {
                let i = keep_prefix + rng.below(m.len() - keep_prefix);
                m[i] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let i = keep_prefix + rng.below(m.len() - keep_prefix);
            m[i] = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.below(5)];
        }
        3 => {
            let i = keep_prefix + rng.below(m.len() - keep_prefix);
            let n = 1 + rng.below(8);
            m.splice(i..i, std::iter::repeat_n(rng.next() as u8, n));
        }
        _ => {
            let i = keep_prefix + rng.below(m.len() - keep_prefix);
            let j = (i + 1 + rng.below(16)).min(m.len());
            m.drain(i..j);
        }
    }
    m
}

/// Rewrites the header's body length and CRC so that a mutated body reaches the graph
/// validation instead of stopping at the checksum.
fn reseal(m: &mut [u8]) {
    if m.len() < edgeflow_format::HEADER_LEN {
        return;
    }
    let body_len = (m.len() - edgeflow_format::HEADER_LEN) as u32;
    m[8..12].copy_from_slice(&body_len.to_le_bytes());
    let crc = edgeflow_format::CRC32.checksum(&m[edgeflow_format::HEADER_LEN..]);
    m[12..16].copy_from_slice(&crc.to_le_bytes());
}

fn exercise(artifact: &[u8]) -> bool {
    let Ok(model) = edgeflow_nn::Model::parse(artifact) else {
        return false;
    };
    // A mutated header may ask for a huge arena: give at most 1 MiB (too small is an error).
    let mut arena = vec![0u8; model.arena_bytes().min(1 << 20) + 64];
    let off = arena.as_ptr().align_offset(16);
    match edgeflow_nn::Runtime::new(&model, &mut arena[off..]) {
        Ok(mut rt) => rt.invoke().is_ok(),
        Err(_) => false,
    }
}

#[test]
fn mutated_artifacts_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut total, mut accepted) = (0usize, 0usize);
    for f in fixtures() {
        let tflite = std::fs::read(&f.model).expect("read");
        let artifact = edgeflow_compile::compile(&tflite, &f.name)
            .expect("compile")
            .artifact;
        assert!(
            exercise(&artifact),
            "{}: the unmutated artifact must run",
            f.name
        );
        for k in 0..150 {
            let mut m = mutate(
                &mut rng,
                &artifact,
                if k % 2 == 0 {
                    0
                } else {
                    edgeflow_format::HEADER_LEN
                },
            );
            if k % 2 == 1 {
                reseal(&mut m);
            }
            total += 1;
            accepted += exercise(&m) as usize;
        }
    }
    assert!(total >= 5000, "only {total} mutants");
    eprintln!("{total} mutated artifacts, {accepted} still valid and executed");
}

#[test]
fn mutated_tflite_files_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (mut total, mut compiled) = (0usize, 0usize);
    for f in fixtures() {
        let tflite = std::fs::read(&f.model).expect("read");
        for _ in 0..60 {
            let m = mutate(&mut rng, &tflite, 0);
            total += 1;
            if let Ok(c) = edgeflow_compile::compile(&m, "mutant") {
                compiled += 1;
                exercise(&c.artifact);
            }
        }
    }
    assert!(total >= 2500, "only {total} mutants");
    eprintln!("{total} mutated .tflite files, {compiled} compiled");
}

#[test]
fn errors_name_the_problem() {
    let f = &fixtures()[0];
    let tflite = std::fs::read(&f.model).expect("read");
    let artifact = edgeflow_compile::compile(&tflite, &f.name)
        .expect("compile")
        .artifact;

    let e = edgeflow_nn::Model::parse(&artifact[..10]).expect_err("truncated");
    assert!(e.to_string().contains("too short"), "{e}");
    let model = edgeflow_nn::Model::parse(&artifact).expect("valid");
    let need = model.arena_bytes();
    // The size check comes before the alignment check, so any small buffer will do.
    let mut small = vec![0u8; need - 1];
    let e = edgeflow_nn::Runtime::new(&model, &mut small)
        .err()
        .expect("too small");
    assert!(
        e.to_string().contains(&format!("needs {need} bytes")),
        "{e}"
    );

    let e = edgeflow_compile::compile(b"definitely not a flatbuffer", "x").expect_err("garbage");
    assert!(e.to_string().contains("not a valid .tflite"), "{e}");
}
