//! The HTML report machinery every stage shares (monitoring, evaluation, validation):
//! charts drawn by plotters' SVG backend as inline SVG strings, and pages built from a
//! minijinja base template, so that all reports of the flow look alike.
//!
//! Contract: every chart function takes plain numbers, never panics on any input
//! (non-finite values are left out, empty input gives an empty chart) and returns the SVG
//! text or the plotting error. [`render`] renders a page's body template and puts it in
//! the one base layout [`BASE`] (title, style sheet); pages have no scripts unless a
//! caller puts one in `head`.

use anyhow::{Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The series colours (matplotlib's "tab10" order).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The page layout every report extends.
pub const BASE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}.skip{color:#777}
.charts{display:flex;flex-wrap:wrap;gap:8px}.charts div{border:1px solid #eee}
</style>{{ head|safe }}</head><body>
<h1>{{ title }}</h1>
{{ body|safe }}
</body></html>
"#;

/// Renders the body template `body` with `ctx` (values are HTML-escaped unless marked
/// `|safe`) and puts it in [`BASE`] under the heading `title`, with `head` (raw HTML, a
/// live page's script, say) at the end of `<head>`.
pub fn render(title: &str, head: &str, body: &str, ctx: minijinja::Value) -> Result<String> {
    // HTML escaping applies to templates whose name ends in `.html`.
    let mut env = minijinja::Environment::new();
    env.add_template("body.html", body)
        .context("report body template")?;
    env.add_template("base.html", BASE)
        .context("report base template")?;
    let body = env
        .get_template("body.html")
        .and_then(|t| t.render(ctx))
        .context("rendering the report")?;
    env.get_template("base.html")
        .and_then(|t| t.render(minijinja::context! { title, head, body }))
        .context("rendering the report")
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

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
        root.fill(&WHITE).map_err(plot_err)?;
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
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .y_label_formatter(&|v| format!("{v:.3}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        for (i, (name, points)) in series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && y.is_finite()),
                    c.stroke_width(2),
                ))
                .map_err(plot_err)?
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
                .map_err(plot_err)?
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
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Reference vs current bin shares, side by side, as an SVG string.
pub fn bar_pair(title: &str, reference: &[f64], current: &[f64]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (360, 220)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let n = reference.len().max(current.len()).max(1);
        let ymax = reference
            .iter()
            .chain(current)
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("bin")
            .y_desc("share")
            .disable_x_mesh()
            .draw()
            .map_err(plot_err)?;
        let (rc, cc) = (PALETTE[7], PALETTE[3]);
        chart
            .draw_series(reference.iter().enumerate().map(|(k, &v)| {
                Rectangle::new([(k as f64 + 0.08, 0.0), (k as f64 + 0.48, v)], rc.filled())
            }))
            .map_err(plot_err)?
            .label("training")
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], rc.filled()));
        chart
            .draw_series(current.iter().enumerate().map(|(k, &v)| {
                Rectangle::new([(k as f64 + 0.52, 0.0), (k as f64 + 0.92, v)], cc.filled())
            }))
            .map_err(plot_err)?
            .label("current")
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], cc.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// A histogram as an SVG string: `counts` of equal-width bins spanning `lo..hi` on the x
/// axis (a single value, `lo == hi`, is drawn as one bar around it).
pub fn histogram(title: &str, x_label: &str, lo: f64, hi: f64, counts: &[u64]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (340, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo - 0.5, lo + 0.5)
        } else {
            (0.0, 1.0)
        };
        let n = counts.len().max(1);
        let w = (hi - lo) / n as f64;
        let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(6)
            .x_label_area_size(26)
            .y_label_area_size(44)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(x_label)
            .x_labels(4)
            .y_labels(4)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        let c = PALETTE[0];
        chart
            .draw_series(counts.iter().enumerate().map(|(k, &v)| {
                let x0 = lo + w * k as f64;
                Rectangle::new([(x0, 0.0), (x0 + w * 0.95, v as f64)], c.filled())
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Category names under an f64 axis whose categories sit at `0.5, 1.5, …`: drawn on the
/// root area at the pixel positions the chart maps them to.
fn category_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    at: impl Fn(usize) -> (i32, i32),
    names: &[String],
    dy: i32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, n) in names.iter().enumerate() {
        let (x, y) = at(i);
        root.draw(&Text::new(n.clone(), (x, y + dy), style.clone()))
            .map_err(plot_err)?;
    }
    Ok(())
}

/// Grouped bars: one group per category (x), one bar per series in each group, values
/// from 0 to `y_max` (`None`: the largest value). Used for per-class metrics and budgets.
pub fn grouped_bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    y_max: Option<f64>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let n = categories.len().max(1);
        let width = (120 + 70 * n as u32).clamp(360, 1100);
        let root = SVGBackend::with_string(&mut svg, (width, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let top = y_max.unwrap_or_else(|| {
            series
                .iter()
                .flat_map(|s| s.1.iter())
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max)
        });
        let top = if top.is_finite() && top > 0.0 {
            top * 1.05
        } else {
            1.0
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_label)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        let k = series.len().max(1) as f64;
        for (j, (name, vals)) in series.iter().enumerate() {
            let c = PALETTE[j % PALETTE.len()];
            chart
                .draw_series(vals.iter().enumerate().filter(|(_, v)| v.is_finite()).map(
                    |(i, &v)| {
                        let x0 = i as f64 + 0.1 + 0.8 * j as f64 / k;
                        let x1 = i as f64 + 0.1 + 0.8 * (j + 1) as f64 / k - 0.02;
                        Rectangle::new([(x0, 0.0), (x1, v.clamp(0.0, top))], c.filled())
                    },
                ))
                .map_err(plot_err)?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], c.filled()));
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(200, 200, 200))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(plot_err)?;
        }
        category_labels(
            &root,
            |i| chart.backend_coord(&(i as f64 + 0.5, 0.0)),
            categories,
            6,
        )?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// A confusion-matrix heat map: `matrix[t][p]` counts of true class `t` predicted as
/// `p`; cells shaded by their share of the row (recall), each cell labelled with its count.
pub fn confusion_heatmap(title: &str, classes: &[String], matrix: &[Vec<usize>]) -> Result<String> {
    let mut svg = String::new();
    {
        let n = classes.len().max(matrix.len()).max(1);
        let side = (160 + 48 * n as u32).clamp(320, 900);
        let root = SVGBackend::with_string(&mut svg, (side + 60, side)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let names: Vec<String> = (0..n)
            .map(|i| classes.get(i).cloned().unwrap_or_else(|| i.to_string()))
            .collect();
        let nf = n as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..nf, 0.0..nf)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc("predicted")
            .y_desc("true")
            .draw()
            .map_err(plot_err)?;
        for (t, row) in matrix.iter().enumerate().take(n) {
            let total = row.iter().sum::<usize>().max(1) as f64;
            // Row 0 at the top.
            let y = (n - 1 - t) as f64;
            for (p, &c) in row.iter().enumerate().take(n) {
                let share = c as f64 / total;
                let shade = |v: u8| (255.0 - share * (255.0 - f64::from(v))) as u8;
                let fill = RGBColor(shade(31), shade(119), shade(180));
                let x = p as f64;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        fill.filled(),
                    )))
                    .map_err(plot_err)?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let style = TextStyle::from(("sans-serif", 14).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart
                    .draw_series(std::iter::once(Text::new(
                        c.to_string(),
                        (x + 0.5, y + 0.5),
                        style,
                    )))
                    .map_err(plot_err)?;
            }
        }
        category_labels(
            &root,
            |i| chart.backend_coord(&(i as f64 + 0.5, 0.0)),
            &names,
            4,
        )?;
        let left = TextStyle::from(("sans-serif", 12).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (t, name) in names.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, (n - 1 - t) as f64 + 0.5));
            root.draw(&Text::new(name.clone(), (x - 6, y), left.clone()))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// A reliability diagram (the picture of expected calibration error): for each
/// confidence bin `(lo, hi, mean confidence, accuracy, count)` with examples, a bar of
/// its accuracy over `[lo, hi]`, a marker at its mean confidence, and the diagonal of
/// perfect calibration.
pub fn reliability_diagram(title: &str, bins: &[(f64, f64, f64, f64, usize)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (420, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..1.0f64, 0.0..1.0f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("confidence (top-1 score)")
            .y_desc("accuracy")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        let used = bins
            .iter()
            .filter(|b| b.4 > 0 && [b.0, b.1, b.2, b.3].iter().all(|v| v.is_finite()));
        chart
            .draw_series(used.clone().map(|&(lo, hi, _, acc, _)| {
                Rectangle::new(
                    [(lo, 0.0), (hi, acc.clamp(0.0, 1.0))],
                    PALETTE[0].mix(0.7).filled(),
                )
            }))
            .map_err(plot_err)?
            .label("accuracy")
            .legend(|(x, y)| Rectangle::new([(x, y - 4), (x + 10, y + 4)], PALETTE[0].filled()));
        chart
            .draw_series(used.map(|&(_, _, conf, acc, _)| {
                Circle::new(
                    (conf.clamp(0.0, 1.0), acc.clamp(0.0, 1.0)),
                    3,
                    PALETTE[3].filled(),
                )
            }))
            .map_err(plot_err)?
            .label("mean confidence")
            .legend(|(x, y)| Circle::new((x + 5, y), 3, PALETTE[3].filled()));
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(plot_err)?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_draw_their_labels_and_survive_odd_input() {
        let names: Vec<String> = ["walk", "run"].iter().map(|s| s.to_string()).collect();
        let h = confusion_heatmap("Confusion", &names, &[vec![3, 1], vec![0, 4]]).unwrap();
        // plotters writes each SVG text on its own line.
        assert!(
            h.starts_with("<svg") && h.contains("\nwalk\n") && h.contains(">\n4\n<"),
            "{h}"
        );
        let b = grouped_bars(
            "F1",
            "score",
            &names,
            &[("F1".into(), vec![0.5, f64::NAN])],
            Some(1.0),
        )
        .unwrap();
        assert!(b.contains("<rect") && b.contains("run"));
        let r = reliability_diagram(
            "Reliability",
            &[(0.9, 1.0, 0.95, 0.8, 10), (0.0, 0.1, f64::NAN, 0.0, 3)],
        )
        .unwrap();
        assert!(r.contains("<circle"));
        assert!(line_chart("empty", "x", "y", &[], None)
            .unwrap()
            .contains("<svg"));
        assert!(confusion_heatmap("none", &[], &[])
            .unwrap()
            .contains("<svg"));
    }

    #[test]
    fn pages_extend_the_base_layout() {
        let html = render(
            "T",
            "",
            r#"<p id="x">{{ v }}</p>"#,
            minijinja::context! { v => "<b>" },
        )
        .unwrap();
        assert!(html.starts_with("<!doctype html>") && html.contains("<title>T</title>"));
        // Values are escaped unless marked safe.
        assert!(html.contains("&lt;b&gt;"));
    }
}
