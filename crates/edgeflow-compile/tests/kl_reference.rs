//! KL (entropy) calibration against its reference: `tests/kl/make_kl_goldens.py` (numpy and
//! `scipy.stats.entropy`, pinned in `tests/kl/requirements.txt`) computed the divergence of
//! every candidate threshold and the chosen one for seven histograms (ReLU output with a
//! spike at zero, |normal| with outliers, |Laplace|, a heavy tail, a bimodal one, a small
//! calibration set with many empty bins, a flat one). Every candidate's divergence must
//! agree (relative 1e-9; infinite where the reference's is) and the chosen number of bins
//! must be the same.

use edgeflow_compile::quantize::{entropy_calibration, entropy_divergences};

struct Case {
    name: String,
    levels: usize,
    bins: usize,
    best: f64,
    hist: Vec<u64>,
    kl: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("kl/kl_goldens.txt");
    let mut out = Vec::new();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    while let Some(head) = lines.next() {
        let h: Vec<&str> = head.split_whitespace().collect();
        assert_eq!(h[0], "case", "{head}");
        let hist = lines.next().expect("hist line");
        let kl = lines.next().expect("kl line");
        out.push(Case {
            name: h[1].to_string(),
            levels: h[2].parse().expect("levels"),
            bins: h[3].parse().expect("bins"),
            best: h[4].parse().expect("divergence"),
            hist: hist
                .strip_prefix("hist ")
                .expect("hist")
                .split(' ')
                .map(|c| c.parse().expect("count"))
                .collect(),
            kl: kl
                .strip_prefix("kl ")
                .expect("kl")
                .split(' ')
                .map(|d| {
                    if d == "inf" {
                        f64::INFINITY
                    } else {
                        d.parse().expect("kl")
                    }
                })
                .collect(),
        });
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

#[test]
fn every_candidate_divergence_and_the_choice_match_numpy_and_scipy() {
    let cases = cases();
    assert_eq!(cases.len(), 7);
    for c in &cases {
        let kl = entropy_divergences(&c.hist, c.levels);
        assert_eq!(kl.len(), c.kl.len(), "{}", c.name);
        for (k, (got, want)) in kl.iter().zip(&c.kl).enumerate() {
            assert!(
                close(*got, *want),
                "{}: keeping {} bins: {got} vs {want}",
                c.name,
                c.levels + k
            );
        }
        let choice = entropy_calibration(&c.hist, c.levels).expect("a threshold");
        assert_eq!(choice.bins, c.bins, "{}", c.name);
        assert!(close(choice.divergence, c.best), "{}", c.name);
    }
    // The histograms really are different problems: the thresholds differ, from heavy
    // clipping (the outliers) to none (the flat histogram).
    let bins: Vec<usize> = cases.iter().map(|c| c.bins).collect();
    assert!(
        bins.iter().any(|&b| b < 600) && bins.contains(&2048),
        "{bins:?}"
    );
}
