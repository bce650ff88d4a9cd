//! The monitoring report: a page of the shared report layout ([`crate::report`]), charts
//! drawn by the shared plotters helpers as inline SVG.

use std::path::Path;

use anyhow::{Context, Result};
use edgeflow_monitor::baseline::Baseline;
use edgeflow_monitor::store::DeviceInfo;
use edgeflow_monitor::windows::{Baselines, Window};
use edgeflow_monitor::WindowReport;
use serde::Serialize;

use crate::report::{bar_pair, line_chart};

#[derive(Serialize)]
struct AlertRow {
    device: String,
    model: String,
    window: usize,
    start_s: String,
    what: String,
    test: String,
    value: String,
    threshold: String,
}

#[derive(Serialize)]
struct UncheckedRow {
    device: String,
    model: String,
    windows: usize,
    summaries: u64,
}

#[derive(Serialize)]
struct GroupView {
    name: String,
    model: String,
    baseline: String,
    windows: usize,
    drift_svg: String,
    class_svg: String,
    perf_svg: String,
    health_svg: String,
    histograms: Vec<String>,
}

const TEMPLATE: &str = r#"
<p>Database <code>{{ db }}</code> · {{ total_windows }} window(s) · generated {{ generated }}</p>
{% if alerts %}<p id="status" class="bad">{{ alerts|length }} alert(s)</p>{% else %}<p id="status" class="ok">No alerts</p>{% endif %}
<h2>Devices</h2>
<table><tr><th>device</th><th>model</th><th>frames</th><th>gaps</th><th>corrupt</th></tr>
{% for d in devices %}<tr><td>{{ d.name }}</td><td>{{ d.model_hash or "?" }}</td><td>{{ d.frames }}</td><td>{{ d.gaps }}</td><td>{{ d.corrupt }}</td></tr>{% endfor %}
</table>
<h2>Alerts</h2>
{% if alerts %}<table id="alerts"><tr><th>device</th><th>model</th><th>window</th><th>start (s)</th><th>what</th><th>test</th><th>value</th><th>threshold</th></tr>
{% for a in alerts %}<tr><td>{{ a.device }}</td><td>{{ a.model }}</td><td>{{ a.window }}</td><td>{{ a.start_s }}</td><td>{{ a.what }}</td><td>{{ a.test }}</td><td>{{ a.value }}</td><td>{{ a.threshold }}</td></tr>{% endfor %}
</table>{% else %}<p>None.</p>{% endif %}
{% if unchecked %}<h2>Not checked</h2>
<p>No baseline was given for these models (known: {{ known }}); their windows are not compared with another model's baseline.</p>
<table id="unchecked"><tr><th>device</th><th>model</th><th>windows</th><th>summaries</th></tr>
{% for u in unchecked %}<tr><td>{{ u.device }}</td><td>{{ u.model }}</td><td>{{ u.windows }}</td><td>{{ u.summaries }}</td></tr>{% endfor %}
</table>{% endif %}
{% for g in groups %}
<h2>{{ g.name }} · model {{ g.model }} ({{ g.windows }} windows)</h2>
<p>Baseline: <code>{{ g.baseline }}</code></p>
<div class="charts">
<div>{{ g.drift_svg|safe }}</div><div>{{ g.perf_svg|safe }}</div>
<div>{{ g.class_svg|safe }}</div><div>{{ g.health_svg|safe }}</div>
</div>
<h3>Training vs last window</h3>
<div class="charts">{% for h in g.histograms %}<div>{{ h|safe }}</div>{% endfor %}</div>
{% endfor %}
"#;

fn shares(v: &[u64]) -> Vec<f64> {
    let n = v.iter().sum::<u64>().max(1) as f64;
    v.iter().map(|&c| c as f64 / n).collect()
}

/// Renders the whole report page with one baseline for every window (every window was
/// analysed against it). `head_extra` goes into `<head>` (the live page's script).
pub fn render(
    db: &Path,
    windows: &[Window],
    reports: &[WindowReport],
    devices: &[DeviceInfo],
    baseline: &Baseline,
    head_extra: Option<&str>,
) -> Result<String> {
    let reports: Vec<Option<WindowReport>> = reports.iter().cloned().map(Some).collect();
    let baselines = Baselines::single("the artifact's baseline", baseline.clone());
    render_models(db, windows, &reports, devices, &baselines, head_extra)
}

/// Renders the whole report page: one section per device (or fleet) and model, drawn
/// against that model's baseline; windows whose report is `None` (no baseline for their
/// model) are listed as not checked. `head_extra` goes into `<head>`.
pub fn render_models(
    db: &Path,
    windows: &[Window],
    reports: &[Option<WindowReport>],
    devices: &[DeviceInfo],
    baselines: &Baselines,
    head_extra: Option<&str>,
) -> Result<String> {
    // Windows come grouped by device (or fleet) and model.
    let mut groups: Vec<((String, Option<String>), Vec<usize>)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let k = (w.group.clone(), w.model.clone());
        match groups.last_mut() {
            Some((g, v)) if *g == k => v.push(i),
            _ => groups.push((k, vec![i])),
        }
    }
    let mut alerts = Vec::new();
    let mut views = Vec::new();
    let mut unchecked = Vec::new();
    for ((name, model), idx) in &groups {
        let model_name = model.clone().unwrap_or_else(|| "unknown".into());
        let (Some((origin, baseline)), Some(reports)) = (
            baselines.get(model.as_deref()),
            idx.iter()
                .map(|&i| reports.get(i).cloned().flatten())
                .collect::<Option<Vec<WindowReport>>>(),
        ) else {
            unchecked.push(UncheckedRow {
                device: name.clone(),
                model: model_name,
                windows: idx.len(),
                summaries: idx.iter().map(|&i| windows[i].summaries).sum(),
            });
            continue;
        };
        // From here on, `reports[k]` is the report of window `idx[k]`.
        let windows: Vec<&Window> = idx.iter().map(|&i| &windows[i]).collect();
        let idx: Vec<usize> = (0..idx.len()).collect();
        for (k, &i) in idx.iter().enumerate() {
            for a in &reports[i].alerts {
                alerts.push(AlertRow {
                    device: name.clone(),
                    model: model_name.clone(),
                    window: k,
                    start_s: format!("{:.1}", windows[i].start_us as f64 / 1e6),
                    what: a
                        .feature
                        .map_or_else(|| a.area.to_string(), |f| format!("feature {f}")),
                    test: a.test.clone(),
                    value: format!("{:.4}", a.value),
                    threshold: format!("{}", a.threshold),
                });
            }
        }
        let nf = baseline.features();
        let drift: Vec<(String, Vec<(f64, f64)>)> = (0..nf)
            .map(|f| {
                let pts = idx
                    .iter()
                    .enumerate()
                    .filter_map(|(k, &i)| {
                        reports[i]
                            .features
                            .get(f)?
                            .as_ref()
                            .map(|d| (k as f64, d.psi))
                    })
                    .collect();
                (format!("feature {f}"), pts)
            })
            .collect();
        // Show the legend only for a readable number of lines.
        let drift_svg = if nf <= 8 {
            line_chart(
                "Drift per feature (PSI)",
                "window",
                "PSI",
                &drift,
                Some((0.1, "0.1")),
            )?
        } else {
            let mut top: Vec<(f64, usize)> = drift
                .iter()
                .enumerate()
                .map(|(f, s)| (s.1.iter().map(|p| p.1).fold(0.0, f64::max), f))
                .collect();
            top.sort_by(|a, b| b.0.total_cmp(&a.0));
            let pick: Vec<_> = top.iter().take(8).map(|&(_, f)| drift[f].clone()).collect();
            line_chart(
                "Drift per feature (PSI, 8 highest)",
                "window",
                "PSI",
                &pick,
                Some((0.1, "0.1")),
            )?
        };
        let classes = baseline.class_prior.len();
        let class_series: Vec<(String, Vec<(f64, f64)>)> = (0..classes.min(8))
            .map(|c| {
                let pts = idx
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| {
                        (
                            k as f64,
                            shares(&windows[i].summary.class_counts)
                                .get(c)
                                .copied()
                                .unwrap_or(0.0),
                        )
                    })
                    .collect();
                (
                    format!("class {c} (prior {:.2})", baseline.class_prior[c]),
                    pts,
                )
            })
            .collect();
        let class_svg = line_chart("Class mix", "window", "share", &class_series, None)?;
        let mut perf = vec![(
            "estimated (CBPE)".to_string(),
            idx.iter()
                .enumerate()
                .filter_map(|(k, &i)| {
                    reports[i]
                        .performance
                        .as_ref()
                        .map(|p| (k as f64, p.estimated_accuracy))
                })
                .collect::<Vec<_>>(),
        )];
        let realised: Vec<(f64, f64)> = idx
            .iter()
            .enumerate()
            .filter_map(|(k, &i)| {
                reports[i]
                    .performance
                    .as_ref()?
                    .realised
                    .map(|r| (k as f64, r.0))
            })
            .collect();
        if !realised.is_empty() {
            perf.push(("realised (labels)".into(), realised));
        }
        let perf_svg = line_chart(
            "Accuracy",
            "window",
            "accuracy",
            &perf,
            baseline.reference_accuracy().map(|a| (a, "validation")),
        )?;
        let health = vec![
            (
                "latency max (ms)".to_string(),
                idx.iter()
                    .enumerate()
                    .map(|(k, &i)| {
                        (
                            k as f64,
                            f64::from(windows[i].summary.health.latency_max_us) / 1000.0,
                        )
                    })
                    .collect(),
            ),
            (
                "frames lost".to_string(),
                idx.iter()
                    .enumerate()
                    .map(|(k, &i)| (k as f64, windows[i].summary.health.gaps as f64))
                    .collect(),
            ),
            (
                "NaN + out of range".to_string(),
                idx.iter()
                    .enumerate()
                    .map(|(k, &i)| {
                        (
                            k as f64,
                            (windows[i].summary.quality.nan
                                + windows[i].summary.quality.out_of_range)
                                as f64,
                        )
                    })
                    .collect(),
            ),
        ];
        let health_svg = line_chart(
            "Device health and data quality",
            "window",
            "count / ms",
            &health,
            None,
        )?;
        let last = idx.last().copied().context("group without windows")?;
        let mut feats: Vec<usize> = reports[last]
            .alerts
            .iter()
            .filter_map(|a| a.feature)
            .collect();
        if feats.is_empty() {
            let mut by: Vec<(f64, usize)> = reports[last]
                .features
                .iter()
                .enumerate()
                .filter_map(|(f, d)| d.as_ref().map(|d| (d.psi, f)))
                .collect();
            by.sort_by(|a, b| b.0.total_cmp(&a.0));
            feats = by.iter().take(4).map(|&(_, f)| f).collect();
        }
        let mut histograms = Vec::new();
        for f in feats.into_iter().take(8) {
            let r = shares(baseline.feature_counts(f));
            let c = shares(windows[last].summary.feature(f, baseline.bins));
            histograms.push(bar_pair(&format!("feature {f}"), &r, &c)?);
        }
        views.push(GroupView {
            name: name.clone(),
            model: model_name,
            baseline: origin.to_string(),
            windows: idx.len(),
            drift_svg,
            class_svg,
            perf_svg,
            health_svg,
            histograms,
        });
    }
    crate::report::render(
        "edgeflow monitoring report",
        head_extra.unwrap_or(""),
        TEMPLATE,
        minijinja::context! {
            db => db.display().to_string(),
            total_windows => windows.len(),
            generated => format!("{:.0} s since the Unix epoch", edgeflow_monitor::ingest::now_us() as f64 / 1e6),
            alerts => alerts,
            devices => devices,
            groups => views,
            unchecked => unchecked,
            known => {
                let v: Vec<String> = baselines.models().map(|(m, o)| format!("{m} ({o})")).collect();
                if v.is_empty() { "none".to_string() } else { v.join(", ") }
            },
        },
    )
}
