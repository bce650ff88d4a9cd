//! The run-time's hand-written graph reader (`edgeflow_format::decode`, used by
//! `Model::parse` and the executor) against postcard's serde decoding, on real artifacts:
//! every TFLite conformance fixture (`conformance/fixtures`, `conformance/ops`) and the four
//! MLPerf Tiny models when `../shared/benchmarks/mlperf-tiny` is present (skipped with a
//! notice otherwise). For each artifact the section framing, the graph header and every
//! op record must decode to the same value with the same rest; then every byte of the
//! graph section is replaced by a few values (and the section cut at every record
//! boundary and inside records) and the two decoders must still agree, error for error.

use edgeflow_format::decode;
use edgeflow_format::graph::{GraphHeader, OpDef};
use edgeflow_tests::root;

/// `(name, artifact)` of every TFLite fixture and, when present, the MLPerf Tiny models.
fn artifacts() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["conformance/fixtures", "conformance/ops"] {
        let dir = root().join(dir);
        let mut models: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
            .collect();
        models.sort();
        for p in models {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let tflite = std::fs::read(&p).expect("read model");
            let c = edgeflow_compile::compile(&tflite, name)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((name.to_string(), c.artifact));
        }
    }
    let mlperf = root().join("../shared/benchmarks/mlperf-tiny");
    for m in ["kws", "ic", "ad", "vww"] {
        let p = mlperf.join(format!("{m}.tflite"));
        match std::fs::read(&p) {
            Ok(t) => {
                let c = edgeflow_compile::compile(&t, m).expect("compile MLPerf model");
                out.push((format!("mlperf_{m}"), c.artifact));
            }
            Err(_) => println!(
                "skipping MLPerf Tiny {m}: {} not found (the fixtures are still checked)",
                p.display()
            ),
        }
    }
    out
}

/// A decode result in a comparable form (`Debug` of the value, so equal NaN bit
/// patterns compare equal; the rest as its length).
fn norm<T: std::fmt::Debug, E>(r: Result<(T, &[u8]), E>) -> String {
    match r {
        Ok((v, rest)) => format!("ok {v:?} rest {}", rest.len()),
        Err(_) => "err".into(),
    }
}

/// Whether two decode results agree: both errors, or equal values (by `==`, else by
/// `Debug` for NaN fields read from mutated bytes) with the same rest.
fn agree<T: PartialEq + std::fmt::Debug, E1, E2>(
    a: &Result<(T, &[u8]), E1>,
    b: &Result<(T, &[u8]), E2>,
) -> bool {
    match (a, b) {
        (Ok((x, xr)), Ok((y, yr))) => {
            xr.len() == yr.len() && (x == y || format!("{x:?}") == format!("{y:?}"))
        }
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// Decodes the graph section with both decoders: the header, then each record until
/// the first error, checking that the hand-written reader agrees with postcard at every
/// step. Returns how many steps decoded.
fn walk_both(name: &str, graph: &[u8]) -> usize {
    let s = postcard::take_from_bytes::<GraphHeader<'_>>(graph);
    let h = decode::graph_header(graph);
    assert!(
        agree(&s, &h),
        "{name}: graph header: {} vs {}",
        norm(s.clone()),
        norm(h)
    );
    let Ok((h, mut rest)) = s else {
        return 0;
    };
    let mut ok = 1;
    for i in 0..h.op_count.min(10_000) {
        let s = postcard::take_from_bytes::<OpDef<'_>>(rest);
        let hand = decode::op_def(rest);
        assert!(
            agree(&s, &hand),
            "{name}: op record {i}: {} vs {}",
            norm(s.clone()),
            norm(hand)
        );
        match s {
            Ok((_, r)) => rest = r,
            Err(_) => break,
        }
        ok += 1;
    }
    ok
}

#[test]
fn hand_reader_equals_postcard_on_every_fixture_and_mlperf_artifact() {
    let arts = artifacts();
    assert!(
        arts.len() >= 80,
        "expected the committed fixtures, found {}",
        arts.len()
    );
    let mut records = 0;
    let mut mutations = 0;
    for (name, a) in &arts {
        // Section framing of the whole body.
        let mut body = &a[edgeflow_format::HEADER_LEN..];
        while !body.is_empty() {
            let s = postcard::take_from_bytes::<(u16, &[u8])>(body);
            let h = decode::section(body).map(|(k, d, r)| ((k, d), r));
            assert_eq!(norm(s.clone()), norm(h), "{name}: section framing");
            body = s.expect("a written artifact's sections decode").1;
        }
        let art = edgeflow_format::Artifact::parse(a).expect("parse");
        let graph = art.graph;
        let op_count = edgeflow_nn::Model::parse(a).expect("model").ops().count();
        assert_eq!(
            walk_both(name, graph),
            op_count + 1,
            "{name}: every record decodes"
        );
        records += op_count;
        // The run-time's own walk over the same records (what `invoke` executes).
        let model = edgeflow_nn::Model::parse(a).expect("model parses");
        let (h, mut rest) = postcard::take_from_bytes::<GraphHeader<'_>>(graph).expect("h");
        assert_eq!(model.header(), &h);
        for op in model.ops() {
            let (s, r) = postcard::take_from_bytes::<OpDef<'_>>(rest).expect("record");
            assert_eq!(format!("{op:?}"), format!("{s:?}"), "{name}");
            rest = r;
        }
        assert!(rest.is_empty(), "{name}: trailing bytes");

        // Mutations: a sample of byte positions (all of them for small graphs), each
        // replaced by values that hit tags, option bytes and varint continuation bits.
        let step = (graph.len() / 400).max(1);
        let mut m = graph.to_vec();
        for i in (0..graph.len()).step_by(step) {
            for v in [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, graph[i] ^ 0x80] {
                m[i] = v;
                walk_both(name, &m);
                mutations += 1;
            }
            m[i] = graph[i];
        }
        for cut in (0..graph.len()).step_by(step.max(7)) {
            walk_both(name, &graph[..cut]);
            mutations += 1;
        }
    }
    println!(
        "{} artifacts, {records} op records equal; {mutations} mutated graph sections decoded alike",
        arts.len()
    );
    assert!(records > 100 && mutations > 50_000, "{records} {mutations}");
}
