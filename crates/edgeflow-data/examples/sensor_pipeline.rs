//! A sensor pipeline: UCR/UEA `.ts` recordings → sliding windows → per-axis features →
//! batches, then a nearest-centroid classifier as a smoke test of the features.
//!
//! Real data: `crates/edgeflow-data/scripts/fetch_basicmotions.sh` downloads
//! BasicMotions (smart-watch accelerometer + gyroscope, 4 activities) from the `aeon`
//! PyPI package into `target/data/BasicMotions`; then
//! `cargo run -p edgeflow-data --example sensor_pipeline -- target/data/BasicMotions`.
//! Without an argument, synthetic recordings of the same shape are generated.
//!
//! The features come from edgeflow-dsp's `stats` block, the same code the device runs
//! (a `Signal` input of 6 axes, one window of `WINDOW` samples, mean/std/min/max/RMS per
//! axis); `features` below is the plain f64 definition the tests check it against.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgeflow_data::sources::ts::TsFile;
use edgeflow_data::{BadRecords, Dataset, Error, Result, Rng};
use edgeflow_dsp::{Block, Input, Output, Pipeline, PipelineDesc, Stat};

/// Samples per window.
pub const WINDOW: usize = 25;
/// Samples between window starts.
pub const SHIFT: usize = 12;
/// Features per axis: mean, standard deviation, minimum, maximum, RMS.
pub const PER_AXIS: usize = 5;

/// Features of one window: for each axis, `PER_AXIS` values.
pub fn features(window: &[Vec<f64>]) -> Vec<f32> {
    let axes = window.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(axes * PER_AXIS);
    for a in 0..axes {
        let xs: Vec<f64> = window.iter().map(|f| f[a]).collect();
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let rms = (xs.iter().map(|x| x * x).sum::<f64>() / n).sqrt();
        out.extend([mean, var.sqrt(), min, max, rms].map(|v| v as f32));
    }
    out
}

/// The edgeflow-dsp pipeline for one window of `axes` axes: a `stats` block with
/// mean, std, min, max and RMS of each axis.
pub fn dsp_pipeline(axes: u32) -> Result<Pipeline<'static>> {
    let mut stats = heapless::Vec::new();
    for s in [Stat::Mean, Stat::Std, Stat::Min, Stat::Max, Stat::Rms] {
        let _ = stats.push(s);
    }
    let mut blocks = heapless::Vec::new();
    let _ = blocks.push(Block::Stats { stats });
    let desc = PipelineDesc {
        input: Input::Signal {
            axes,
            rate_hz: 10.0,
            window: WINDOW as u32,
            stride: WINDOW as u32,
        },
        stream: Default::default(),
        blocks,
        branches: Default::default(),
        post: Default::default(),
        output: Output::default(),
    };
    Pipeline::new(desc).map_err(|e| Error::invalid("dsp_pipeline", e.to_string()))
}

/// The DSP features of one window (`WINDOW` frames of one value per axis).
pub fn dsp_features(p: &Pipeline<'static>, window: &[Vec<f64>]) -> Result<Vec<f32>> {
    let interleaved: Vec<f32> = window.iter().flatten().map(|&x| x as f32).collect();
    let out = edgeflow_dsp::host::run(p, &edgeflow_dsp::host::Sample::Signal(interleaved))
        .map_err(|e| Error::invalid("dsp_features", e.to_string()))?;
    match out.as_slice() {
        [one] => Ok(edgeflow_dsp::host::as_f32(one)),
        other => Err(Error::invalid(
            "dsp_features",
            format!("{} outputs for one window", other.len()),
        )),
    }
}

/// `(features, class)` for every window of every case of the `.ts` file at `path`.
pub fn windows(path: &Path) -> Result<Dataset<(Vec<f32>, usize)>> {
    let f = TsFile::open(path, BadRecords::Error)?;
    let axes = f.header().dimensions.unwrap_or(1) as u32;
    let dsp = Arc::new(dsp_pipeline(axes)?);
    Ok(f.cases().interleave(1, 1, false, move |s| {
        let class = s.class.unwrap_or(0);
        let len = s.dims.first().map_or(0, Vec::len);
        let frames: Vec<Vec<f64>> = (0..len)
            .map(|t| s.dims.iter().map(|d| d[t]).collect())
            .collect();
        let dsp = Arc::clone(&dsp);
        Dataset::from_vec(frames)
            .window(WINDOW, SHIFT, 1, true)
            .map_result(move |w| Ok((dsp_features(&dsp, &w)?, class)))
    }))
}

/// Batches of `batch` windows: `(features row-major, classes)`.
pub fn pipeline(path: &Path, batch: usize, seed: u64) -> Result<Dataset<(Vec<f32>, Vec<usize>)>> {
    Ok(windows(path)?
        .shuffle(256, seed)
        .batch(batch, false)
        .map(|b| {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for (f, c) in b {
                x.extend(f);
                y.push(c);
            }
            (x, y)
        }))
}

/// Writes a synthetic `.ts` file shaped like BasicMotions: 6 axes × 100 samples, four
/// activities that differ in amplitude and frequency, `per_class` cases each.
pub fn make_ts(path: &Path, per_class: usize, seed: u64) -> std::io::Result<()> {
    let classes = ["Standing", "Running", "Walking", "Badminton"];
    let mut s = format!(
        "@problemName Synthetic\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 6\n@equalLength true\n@seriesLength 100\n@classLabel true {}\n@data\n",
        classes.join(" ")
    );
    let mut rng = Rng::new(seed);
    for k in 0..per_class * classes.len() {
        let c = k % classes.len();
        let (amp, freq) = [(0.05, 0.1), (2.0, 0.9), (0.8, 0.4), (1.4, 0.2)][c];
        let dims: Vec<String> = (0..6)
            .map(|a| {
                (0..100)
                    .map(|t| {
                        let v = amp * ((t as f64) * freq + a as f64).sin() + 0.05 * rng.next_f64();
                        format!("{v:.6}")
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        s.push_str(&format!("{}:{}\n", dims.join(":"), classes[c]));
    }
    std::fs::write(path, s)
}

/// Nearest-centroid accuracy of `test` windows against centroids of `train` windows.
pub fn centroid_accuracy(train: &Path, test: &Path, classes: usize) -> Result<f64> {
    let dim = 6 * PER_AXIS;
    let mut sums = vec![vec![0f64; dim]; classes];
    let mut counts = vec![0usize; classes];
    for item in windows(train)?.iter() {
        let (f, c) = item?;
        for (s, v) in sums[c].iter_mut().zip(&f) {
            *s += f64::from(*v);
        }
        counts[c] += 1;
    }
    let cent: Vec<Vec<f64>> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &n)| s.iter().map(|x| x / n.max(1) as f64).collect())
        .collect();
    let (mut right, mut all) = (0usize, 0usize);
    for item in windows(test)?.iter() {
        let (f, c) = item?;
        let d = |k: usize| {
            cent[k]
                .iter()
                .zip(&f)
                .map(|(a, b)| (a - f64::from(*b)).powi(2))
                .sum::<f64>()
        };
        let best = (0..classes)
            .min_by(|&a, &b| d(a).total_cmp(&d(b)))
            .unwrap_or(0);
        right += usize::from(best == c);
        all += 1;
    }
    Ok(right as f64 / all.max(1) as f64)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (train, test) = match std::env::args().nth(1) {
        Some(d) => {
            let d = PathBuf::from(d);
            (
                d.join("BasicMotions_TRAIN.ts"),
                d.join("BasicMotions_TEST.ts"),
            )
        }
        None => {
            let d = std::env::temp_dir();
            let (a, b) = (
                d.join("edgeflow-synth-train.ts"),
                d.join("edgeflow-synth-test.ts"),
            );
            make_ts(&a, 10, 1)?;
            make_ts(&b, 10, 2)?;
            (a, b)
        }
    };
    let ds = pipeline(&train, 32, 7)?;
    let mut windows_seen = 0;
    for b in ds.iter() {
        windows_seen += b?.1.len();
    }
    println!(
        "{windows_seen} windows of {WINDOW} samples from {}",
        train.display()
    );
    let classes = TsFile::open(&train, BadRecords::Error)?
        .header()
        .class_labels
        .as_ref()
        .map_or(1, Vec::len);
    println!(
        "nearest-centroid accuracy on {}: {:.3}",
        test.display(),
        centroid_accuracy(&train, &test, classes)?
    );
    println!("{}", ds.stats().table());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn features_of_a_known_window() {
        let w: Vec<Vec<f64>> = [1.0, -1.0, 1.0, -1.0]
            .iter()
            .map(|&x| vec![x, 2.0])
            .collect();
        assert_eq!(
            features(&w),
            [0.0, 1.0, -1.0, 1.0, 1.0, 2.0, 0.0, 2.0, 2.0, 2.0]
        );
    }

    #[test]
    fn dsp_features_match_the_f64_definition() {
        let p = dsp_pipeline(6).unwrap();
        let mut rng = Rng::new(4);
        let w: Vec<Vec<f64>> = (0..WINDOW)
            .map(|_| (0..6).map(|_| rng.next_f64() * 4.0 - 2.0).collect())
            .collect();
        let got = dsp_features(&p, &w).unwrap();
        let want = features(&w);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn windows_per_case_and_batches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.ts");
        make_ts(&p, 3, 5).unwrap();
        // 12 cases x ((100 - 25) / 12 + 1 = 7) windows
        let all = windows(&p).unwrap().collect_vec().unwrap();
        assert_eq!(all.len(), 12 * 7);
        assert!(all.iter().all(|(f, _)| f.len() == 6 * PER_AXIS));
        let batches = pipeline(&p, 16, 1).unwrap().collect_vec().unwrap();
        assert_eq!(batches.iter().map(|b| b.1.len()).sum::<usize>(), 84);
        assert_eq!(batches[0].0.len(), 16 * 6 * PER_AXIS);
        assert_eq!(batches, pipeline(&p, 16, 1).unwrap().collect_vec().unwrap());
    }

    #[test]
    fn features_separate_the_synthetic_activities() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("train.ts"), dir.path().join("test.ts"));
        make_ts(&a, 5, 1).unwrap();
        make_ts(&b, 5, 2).unwrap();
        assert!(centroid_accuracy(&a, &b, 4).unwrap() > 0.9);
    }
}
