//! Drift statistics against scipy 1.14.1 and Evidently 0.7.23 on the same histograms
//! (goldens from `scripts/make_goldens.py`, versions pinned in `scripts/requirements.txt`).

use edgeflow_monitor::analysis::{run_test, Method};
use edgeflow_monitor::stats;
use serde_json::Value;

fn goldens() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/goldens/stats.json"
    ))
    .expect("tests/goldens/stats.json is committed");
    serde_json::from_str(&text).expect("valid JSON")
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("count"))
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn close(what: &str, name: &str, got: f64, want: f64, rel: f64) {
    let tol = rel * want.abs().max(1e-300) + 1e-15;
    assert!(
        (got - want).abs() <= tol,
        "{name}: {what} = {got:e}, reference {want:e} (|diff| {:e} > {tol:e})",
        (got - want).abs()
    );
}

#[test]
fn psi_js_wasserstein_ks_chi2_z_match_the_references() {
    let g = goldens();
    let cases = g["cases"].as_array().expect("cases");
    assert!(cases.len() >= 10);
    let mut worst_ks_p = 0.0f64;
    for c in cases {
        let name = c["name"].as_str().expect("name");
        let (r, cur, centres) = (
            counts(&c["reference"]),
            counts(&c["current"]),
            floats(&c["centres"]),
        );
        close(
            "psi (Evidently)",
            name,
            stats::psi(&r, &cur).expect("psi"),
            c["psi"].as_f64().expect("f"),
            1e-9,
        );
        let js = stats::jensen_shannon(&r, &cur).expect("js");
        close(
            "jensen_shannon (Evidently)",
            name,
            js,
            c["jensen_shannon"].as_f64().expect("f"),
            1e-7,
        );
        close(
            "jensen_shannon (scipy)",
            name,
            js,
            c["jensen_shannon_scipy"].as_f64().expect("f"),
            1e-7,
        );
        let w = stats::wasserstein_normed(&r, &cur, &centres).expect("w");
        close(
            "wasserstein normed (Evidently)",
            name,
            w,
            c["wasserstein_normed"].as_f64().expect("f"),
            1e-9,
        );
        let ks = stats::ks_binned(&r, &cur).expect("ks");
        close(
            "ks statistic (scipy ks_2samp)",
            name,
            ks.statistic,
            c["ks_statistic"].as_f64().expect("f"),
            1e-12,
        );
        close(
            "ks p asymptotic (scipy.special.kolmogorov)",
            name,
            ks.p_value,
            c["ks_p_asymptotic"].as_f64().expect("f"),
            1e-6,
        );
        // Evidently's p-value comes from ks_2samp's exact / finite-n distribution; the
        // asymptotic one must reach the same decision at the default 0.05.
        let ev = c["ks_p_evidently"].as_f64().expect("f");
        assert_eq!(
            ks.p_value < 0.05,
            ev < 0.05,
            "{name}: ks p {} vs Evidently {ev}",
            ks.p_value
        );
        worst_ks_p = worst_ks_p.max((ks.p_value - ev).abs());
        let chi = stats::chi_squared_drift(&r, &cur).expect("chi2");
        close(
            "chi-squared p (Evidently)",
            name,
            chi.p_value,
            c["chi_squared_p"].as_f64().expect("f"),
            1e-6,
        );
        if let Some(z) = c.get("z_test_p") {
            let res = run_test(Method::ZTest, &r, &cur, &centres, 0.05).expect("z");
            close(
                "z-test p (Evidently)",
                name,
                res.value,
                z.as_f64().expect("f"),
                1e-9,
            );
        }
    }
    println!("largest |KS p asymptotic - Evidently's ks_2samp p| over the cases: {worst_ks_p:.4}");
}

#[test]
fn class_mix_chi_squared_matches_scipy() {
    let g = goldens();
    for c in g["class_mix"].as_array().expect("class_mix") {
        let obs = counts(&c["observed"]);
        let prior = floats(&c["prior"]);
        let r = stats::chi_squared_gof(&obs, &prior).expect("chi2");
        close(
            "statistic",
            "class_mix",
            r.statistic,
            c["statistic"].as_f64().expect("f"),
            1e-9,
        );
        close(
            "p",
            "class_mix",
            r.p_value,
            c["p_value"].as_f64().expect("f"),
            1e-6,
        );
    }
}

#[test]
fn distribution_tails_match_scipy() {
    let g = goldens();
    for k in g["kolmogorov"].as_array().expect("kolmogorov") {
        let x = k["x"].as_f64().expect("x");
        close(
            "kolmogorov",
            &format!("x={x}"),
            stats::kolmogorov_sf(x),
            k["q"].as_f64().expect("q"),
            1e-9,
        );
    }
    for k in g["chi2_sf"].as_array().expect("chi2_sf") {
        let (x, dof) = (
            k["x"].as_f64().expect("x"),
            k["dof"].as_u64().expect("dof") as usize,
        );
        close(
            "chi2.sf",
            &format!("x={x} dof={dof}"),
            stats::chi2_sf(x, dof),
            k["p"].as_f64().expect("p"),
            1e-8,
        );
    }
}
