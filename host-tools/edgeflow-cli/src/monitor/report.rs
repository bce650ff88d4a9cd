//! The monitoring report: HTML from a minijinja template, charts drawn by plotters as inline
//! SVG. Written so it can move into the shared report module (issue 9) when that lands:
//! `line_chart` / `bar_pair` take plain series, and the page is one template.

use std::path::Path;

use anyhow::{Context, Result};
use edgeflow_monitor::baseline::Baseline;
use edgeflow_monitor::store::DeviceInfo;
use edgeflow_monitor::windows::Window;
use edgeflow_monitor::WindowReport;
use plotters::prelude::*;
use serde::Serialize;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A line chart as an SVG string: `series` of `(name, points)`, an optional dashed
/// horizontal reference line.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    hline: Option<(f64, &str)>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let pts = series.iter().flat_map(|s| s.1.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for &(x, y) in pts.filter(|(x, y)| x.is_finite() && y.is_finite()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if let Some((h, _)) = hline {
            y0 = y0.min(h);
            y1 = y1.max(h);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let pad = (y1 - y0) * 0.08;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .y_label_formatter(&|v| format!("{v:.3}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (i, (name, points)) in series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied().filter(|(_, y)| y.is_finite()),
                    c.stroke_width(2),
                ))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2))
                });
        }
        if let Some((h, name)) = hline {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, h), (x1, h)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(name.to_string())
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK));
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(200, 200, 200))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// Reference vs current bin shares, side by side, as an SVG string.
pub fn bar_pair(title: &str, reference: &[f64], current: &[f64]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (360, 220)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = reference.len().max(current.len()).max(1);
        let ymax = reference
            .iter()
            .chain(current)
            .copied()
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("bin")
            .y_desc("share")
            .disable_x_mesh()
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (rc, cc) = (PALETTE[7], PALETTE[3]);
        chart
            .draw_series(reference.iter().enumerate().map(|(k, &v)| {
                Rectangle::new([(k as f64 + 0.08, 0.0), (k as f64 + 0.48, v)], rc.filled())
            }))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("training")
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], rc.filled()));
        chart
            .draw_series(current.iter().enumerate().map(|(k, &v)| {
                Rectangle::new([(k as f64 + 0.52, 0.0), (k as f64 + 0.92, v)], cc.filled())
            }))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("current")
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], cc.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

#[derive(Serialize)]
struct AlertRow {
    device: String,
    window: usize,
    start_s: String,
    what: String,
    test: String,
    value: String,
    threshold: String,
}

#[derive(Serialize)]
struct GroupView {
    name: String,
    windows: usize,
    drift_svg: String,
    class_svg: String,
    perf_svg: String,
    health_svg: String,
    histograms: Vec<String>,
}

const TEMPLATE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
th{background:#f3f3f3}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:8px}.charts div{border:1px solid #eee}
</style>{{ head_extra|safe }}</head><body>
<h1>{{ title }}</h1>
<p>Database <code>{{ db }}</code> · {{ total_windows }} window(s) · generated {{ generated }}</p>
{% if alerts %}<p id="status" class="bad">{{ alerts|length }} alert(s)</p>{% else %}<p id="status" class="ok">No alerts</p>{% endif %}
<h2>Devices</h2>
<table><tr><th>device</th><th>model</th><th>frames</th><th>gaps</th><th>corrupt</th></tr>
{% for d in devices %}<tr><td>{{ d.name }}</td><td>{{ d.model_hash or "?" }}</td><td>{{ d.frames }}</td><td>{{ d.gaps }}</td><td>{{ d.corrupt }}</td></tr>{% endfor %}
</table>
<h2>Alerts</h2>
{% if alerts %}<table id="alerts"><tr><th>device</th><th>window</th><th>start (s)</th><th>what</th><th>test</th><th>value</th><th>threshold</th></tr>
{% for a in alerts %}<tr><td>{{ a.device }}</td><td>{{ a.window }}</td><td>{{ a.start_s }}</td><td>{{ a.what }}</td><td>{{ a.test }}</td><td>{{ a.value }}</td><td>{{ a.threshold }}</td></tr>{% endfor %}
</table>{% else %}<p>None.</p>{% endif %}
{% for g in groups %}
<h2>{{ g.name }} ({{ g.windows }} windows)</h2>
<div class="charts">
<div>{{ g.drift_svg|safe }}</div><div>{{ g.perf_svg|safe }}</div>
<div>{{ g.class_svg|safe }}</div><div>{{ g.health_svg|safe }}</div>
</div>
<h3>Training vs last window</h3>
<div class="charts">{% for h in g.histograms %}<div>{{ h|safe }}</div>{% endfor %}</div>
{% endfor %}
</body></html>
"#;

fn shares(v: &[u64]) -> Vec<f64> {
    let n = v.iter().sum::<u64>().max(1) as f64;
    v.iter().map(|&c| c as f64 / n).collect()
}

/// Renders the whole report page. `head_extra` goes into `<head>` (the live page's script).
pub fn render(
    db: &Path,
    windows: &[Window],
    reports: &[WindowReport],
    devices: &[DeviceInfo],
    baseline: &Baseline,
    head_extra: Option<&str>,
) -> Result<String> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        match groups.last_mut() {
            Some((g, v)) if *g == w.group => v.push(i),
            _ => groups.push((w.group.clone(), vec![i])),
        }
    }
    let mut alerts = Vec::new();
    let mut views = Vec::new();
    for (name, idx) in &groups {
        for (k, &i) in idx.iter().enumerate() {
            for a in &reports[i].alerts {
                alerts.push(AlertRow {
                    device: name.clone(),
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
            windows: idx.len(),
            drift_svg,
            class_svg,
            perf_svg,
            health_svg,
            histograms,
        });
    }
    let env = minijinja::Environment::new();
    let tmpl = env.template_from_str(TEMPLATE).context("report template")?;
    let html = tmpl
        .render(minijinja::context! {
            title => "edgeflow monitoring report",
            db => db.display().to_string(),
            total_windows => windows.len(),
            generated => format!("{:.0} s since the Unix epoch", edgeflow_monitor::ingest::now_us() as f64 / 1e6),
            alerts => alerts,
            devices => devices,
            groups => views,
            head_extra => head_extra.unwrap_or(""),
        })
        .context("rendering the report")?;
    Ok(html)
}
