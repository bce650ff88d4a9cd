//! The image pipeline of tf.data's guide: list files → decode → random crop, flip and
//! brightness → resize → normalise → batch → prefetch.
//!
//! `cargo run -p edgeflow-data --example image_pipeline [FOLDER]` — FOLDER holds one
//! sub-folder of PNG/JPEG images per class; without it, a small synthetic folder is
//! generated in a temporary directory.

use std::path::{Path, PathBuf};

use edgeflow_data::sources::image::{encode_png, read_image, Image, ImageFolder};
use edgeflow_data::{Dataset, Parallel, Result, Rng};

/// Output side of the network input.
pub const SIDE: usize = 32;

/// One training batch: `n × SIDE × SIDE × 3` normalised floats and `n` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Pixels, NHWC.
    pub pixels: Vec<f32>,
    /// Labels.
    pub labels: Vec<usize>,
}

/// Random augmentation of one image: a crop of 7/8 of each side at a random place, a
/// horizontal flip with probability 1/2, a brightness shift in [-0.1, 0.1].
pub fn augment(img: &Image, rng: &mut Rng) -> Result<(Image, f32)> {
    let (w, h) = (img.width * 7 / 8, img.height * 7 / 8);
    let mut out = img.random_crop(w.max(1), h.max(1), rng)?;
    if rng.bernoulli(0.5) {
        out = out.flip_horizontal();
    }
    Ok((out, rng.uniform(-0.1, 0.1)))
}

/// The pipeline over `folder`: files shuffled per epoch, decoded and augmented on
/// `threads` threads, batched by `batch`, prefetched.
pub fn pipeline(folder: &Path, threads: usize, batch: usize, seed: u64) -> Result<Dataset<Batch>> {
    let files = ImageFolder::open(folder)?;
    let par = Parallel::threads(threads);
    Ok(files
        .dataset(Some(seed))
        .par_map_result(par, |(p, label)| Ok((read_image(&p)?, label)))
        .par_map_with_rng(
            par,
            seed,
            |(img, label): (Image, usize), rng| -> Result<(Vec<f32>, usize)> {
                let (img, brightness) = augment(&img, rng)?;
                let img = if img.channels == 3 { img } else { to_rgb(&img) };
                let small = img.resize_bilinear(SIDE, SIDE);
                let x = small.to_f32(
                    1.0,
                    brightness,
                    &[0.485, 0.456, 0.406],
                    &[0.229, 0.224, 0.225],
                );
                Ok((x, label))
            },
        )
        .map_result(|r| r)
        .batch(batch, false)
        .map(|items| {
            let mut b = Batch {
                pixels: Vec::new(),
                labels: Vec::new(),
            };
            for (x, l) in items {
                b.pixels.extend(x);
                b.labels.push(l);
            }
            b
        })
        .prefetch(2))
}

fn to_rgb(img: &Image) -> Image {
    let data = img
        .data
        .chunks_exact(img.channels)
        .flat_map(|p| {
            if img.channels == 1 {
                [p[0]; 3]
            } else {
                [p[0], p[1], p[2]]
            }
        })
        .collect();
    Image {
        channels: 3,
        data,
        ..*img
    }
}

/// Writes `per_class` synthetic 40×40 PNGs for each of three classes (red, green and
/// blue squares at varying places) under `dir`.
pub fn make_folder(dir: &Path, per_class: usize) -> std::io::Result<()> {
    for (c, name) in ["red", "green", "blue"].iter().enumerate() {
        let d = dir.join(name);
        std::fs::create_dir_all(&d)?;
        for k in 0..per_class {
            let mut data = vec![30u8; 40 * 40 * 3];
            let off = (k * 7) % 20;
            for y in off..off + 16 {
                for x in off..off + 16 {
                    data[(y * 40 + x) * 3 + c] = 230;
                }
            }
            let img = Image {
                width: 40,
                height: 40,
                channels: 3,
                data,
            };
            let png = encode_png(&img).map_err(std::io::Error::other)?;
            std::fs::write(d.join(format!("{k:03}.png")), png)?;
        }
    }
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1).map(PathBuf::from);
    let tmp;
    let folder = match arg {
        Some(p) => p,
        None => {
            tmp = std::env::temp_dir().join(format!("edgeflow-images-{}", std::process::id()));
            make_folder(&tmp, 20)?;
            tmp.clone()
        }
    };
    let ds = pipeline(&folder, 2, 16, 42)?;
    let t0 = std::time::Instant::now();
    let mut n = 0;
    for b in ds.iter() {
        let b = b?;
        n += b.labels.len();
    }
    println!("{n} images in {:.3} s", t0.elapsed().as_secs_f64());
    println!("{}", ds.stats().table());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        make_folder(d.path(), 5).unwrap();
        d
    }

    #[test]
    fn batches_have_the_right_shapes_and_labels() {
        let d = folder();
        let all = pipeline(d.path(), 2, 4, 1).unwrap().collect_vec().unwrap();
        assert_eq!(
            all.iter().map(|b| b.labels.len()).collect::<Vec<_>>(),
            [4, 4, 4, 3]
        );
        for b in &all {
            assert_eq!(b.pixels.len(), b.labels.len() * SIDE * SIDE * 3);
            assert!(b
                .pixels
                .iter()
                .all(|x| x.is_finite() && (-3.0..3.0).contains(x)));
        }
        let mut labels: Vec<usize> = all.iter().flat_map(|b| b.labels.clone()).collect();
        labels.sort();
        assert_eq!(labels, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn augmentation_is_reproducible_at_any_thread_count() {
        let d = folder();
        let one = pipeline(d.path(), 1, 4, 9).unwrap().collect_vec().unwrap();
        let three = pipeline(d.path(), 3, 4, 9).unwrap().collect_vec().unwrap();
        assert_eq!(one, three);
        let other_epoch: Vec<Batch> = pipeline(d.path(), 2, 4, 9)
            .unwrap()
            .iter_epoch(1)
            .map(|b| b.unwrap())
            .collect();
        assert_ne!(one, other_epoch);
    }

    #[test]
    fn the_dominant_channel_survives_augmentation() {
        // A red square stays reddest after crop/flip/resize: a check that pixels and
        // labels stay paired through the parallel stages.
        let d = folder();
        for b in pipeline(d.path(), 2, 5, 3).unwrap().collect_vec().unwrap() {
            for (i, &l) in b.labels.iter().enumerate() {
                let px = &b.pixels[i * SIDE * SIDE * 3..(i + 1) * SIDE * SIDE * 3];
                let mut sums = [0f32; 3];
                for (k, v) in px.iter().enumerate() {
                    sums[k % 3] += v * [0.229, 0.224, 0.225][k % 3] + [0.485, 0.456, 0.406][k % 3];
                }
                let best = (0..3).max_by(|&a, &b| sums[a].total_cmp(&sums[b])).unwrap();
                // classes sort as blue, green, red
                assert_eq!(["blue", "green", "red"][l], ["red", "green", "blue"][best]);
            }
        }
    }
}
