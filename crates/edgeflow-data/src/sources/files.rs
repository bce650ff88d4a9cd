//! Listing files by glob pattern.

use std::path::PathBuf;

use crate::dataset::{Dataset, IterStream};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The files matching a glob pattern (`*`, `?`, `[...]`, `**`), sorted by path so the
/// order does not depend on the file system. Directories are left out.
///
/// Errors: a malformed pattern ([`Error::Pattern`]); an unreadable directory on the way
/// ([`Error::Io`]).
pub fn glob_sorted(pattern: &str) -> Result<Vec<PathBuf>> {
    let paths = glob::glob(pattern).map_err(|e| Error::Pattern {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    for p in paths {
        let p = p.map_err(|e| {
            let path = e.path().to_path_buf();
            Error::io(path, e.into())
        })?;
        if !p.is_dir() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

impl Dataset<PathBuf> {
    /// The files matching `pattern` (see [`glob_sorted`]), listed when the dataset is
    /// iterated. With `shuffle_seed`, the list is shuffled with
    /// `Rng::keyed(seed, [epoch])`: a different, reproducible order every epoch. No
    /// match yields one error item, since an empty listing is almost always a mistake.
    pub fn list_files(pattern: impl Into<String>, shuffle_seed: Option<u64>) -> Dataset<PathBuf> {
        let pattern: String = pattern.into();
        let name = format!("list_files({pattern})");
        Dataset::from_op(name, vec![], move |cx| {
            let items: Vec<Result<PathBuf>> = match glob_sorted(&pattern) {
                Ok(v) if v.is_empty() => vec![Err(Error::Pattern {
                    pattern: pattern.clone(),
                    reason: "no file matches".into(),
                })],
                Ok(mut v) => {
                    if let Some(seed) = shuffle_seed {
                        Rng::keyed(seed, &[cx.epoch]).shuffle(&mut v);
                    }
                    v.into_iter().map(Ok).collect()
                }
                Err(e) => vec![Err(e)],
            };
            Box::new(IterStream(items.into_iter()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_is_sorted_and_shuffles_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.txt", "a.txt", "c.txt", "skip.csv"] {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.txt")).unwrap();
        let pat = format!("{}/*.txt", dir.path().display());
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let d = Dataset::list_files(pat.clone(), None);
        assert_eq!(names(d.collect_vec().unwrap()), ["a.txt", "b.txt", "c.txt"]);
        let s = Dataset::list_files(pat.clone(), Some(3));
        let mut orders = std::collections::BTreeSet::new();
        for e in 0..8 {
            let v = names(s.iter_epoch(e).map(|x| x.unwrap()).collect());
            assert_eq!(v, names(s.iter_epoch(e).map(|x| x.unwrap()).collect()));
            let mut sorted = v.clone();
            sorted.sort();
            assert_eq!(sorted, ["a.txt", "b.txt", "c.txt"]);
            orders.insert(v);
        }
        assert!(orders.len() > 1);
        let none = Dataset::list_files(format!("{}/*.none", dir.path().display()), None);
        assert!(none
            .collect_vec()
            .unwrap_err()
            .to_string()
            .contains("no file matches"));
        assert!(glob_sorted("[").is_err());
    }
}
