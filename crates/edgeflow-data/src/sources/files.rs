//! Listing files: by glob pattern, and class folders (one sub-folder per class).

use std::path::{Path, PathBuf};

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

/// A folder with one sub-folder per class holding that class's files
/// (`root/yes/a.wav`, `root/no/b.wav`, …): the layout of Keras'
/// `image_dataset_from_directory` / `audio_dataset_from_directory` and of datasets such
/// as Speech Commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFolder {
    root: PathBuf,
    classes: Vec<String>,
    files: Vec<(PathBuf, usize)>,
}

impl ClassFolder {
    /// Lists `root`: the classes are the sub-folder names, sorted by name; label `i` is
    /// class `i`; the files are those directly inside each class folder whose extension
    /// is one of `extensions` (compared without case, given without the dot), sorted by
    /// path. Other files and deeper folders are left out. A class folder may be empty.
    ///
    /// Errors: `root` or a class folder cannot be read ([`Error::Io`]); `root` has no
    /// sub-folder; a sub-folder's name is not valid UTF-8 (it could not name a class).
    pub fn open(root: impl Into<PathBuf>, extensions: &[&str]) -> Result<Self> {
        let root = root.into();
        let read = |d: &Path| -> Result<Vec<PathBuf>> {
            let mut v = Vec::new();
            for e in std::fs::read_dir(d).map_err(|e| Error::io(d, e))? {
                v.push(e.map_err(|e| Error::io(d, e))?.path());
            }
            v.sort();
            Ok(v)
        };
        let wanted = |p: &Path| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
        };
        let mut classes = Vec::new();
        let mut files = Vec::new();
        for dir in read(&root)?.into_iter().filter(|p| p.is_dir()) {
            let label = classes.len();
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::file(&dir, "the folder name is not valid UTF-8"))?;
            classes.push(name.to_string());
            for f in read(&dir)?.into_iter().filter(|p| p.is_file() && wanted(p)) {
                files.push((f, label));
            }
        }
        if classes.is_empty() {
            return Err(Error::file(&root, "no class sub-folder"));
        }
        Ok(ClassFolder {
            root,
            classes,
            files,
        })
    }

    /// The folder given to [`ClassFolder::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The class names; label `i` is `classes()[i]`.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Every `(file, label)`, sorted by class then path.
    pub fn files(&self) -> &[(PathBuf, usize)] {
        &self.files
    }
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
