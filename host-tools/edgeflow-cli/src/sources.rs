//! Finding the edgeflow source tree that a command builds firmware from, from any
//! working directory: `edgeflow flash` (the device application `firmware/app-<board>`),
//! `validate --hil` (the test firmware `firmware/<board>`, `firmware/dsp-<board>`) and the
//! pipeline's deploy stage (`firmware/app-<board>`, as `flash`) all look the same way, here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The environment variable naming the edgeflow source tree.
pub(crate) const SOURCE_DIR_VAR: &str = "EDGEFLOW_SOURCE_DIR";

/// The edgeflow source tree holding the crate `firmware/<app>` (a directory with a
/// `Cargo.toml`), an absolute path: `EDGEFLOW_SOURCE_DIR` when set and not empty (a
/// relative value is taken from the working directory of the process's first lookup,
/// before any change of directory; an error if it does not hold
/// `firmware/<app>`), else the first ancestor of `near` (a directory, or a file's
/// directory: the artifact, the model, the project), then of the working directory, that
/// does.
///
/// `purpose` says what the tree is needed for (e.g. "flashing mps2-an386 builds its
/// device application"), `ways_out` what else the user can do (e.g. "pass --firmware
/// ELF"); both go into the error, which also names every directory looked in.
pub(crate) fn find(app: &str, near: &Path, purpose: &str, ways_out: &str) -> Result<PathBuf> {
    // Made absolute once, against the working directory of the first lookup: the
    // pipeline's deploy stage then changes directory into the tree and looks again.
    static ENV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let env = ENV
        .get_or_init(|| {
            std::env::var_os(SOURCE_DIR_VAR)
                .filter(|d| !d.is_empty())
                .map(|d| std::path::absolute(&d).unwrap_or_else(|_| PathBuf::from(d)))
        })
        .clone();
    let near = std::path::absolute(near).unwrap_or_else(|_| near.to_path_buf());
    let near = match near.parent() {
        Some(parent) if !near.is_dir() => parent.to_path_buf(),
        _ => near,
    };
    let cwd = std::env::current_dir().ok();
    let starts: Vec<&Path> = std::iter::once(near.as_path())
        .chain(cwd.as_deref())
        .collect();
    find_with(env, app, &starts, purpose, ways_out)
}

/// [`find`] with the value of `EDGEFLOW_SOURCE_DIR` given.
fn find_with(
    env: Option<PathBuf>,
    app: &str,
    near: &[&Path],
    purpose: &str,
    ways_out: &str,
) -> Result<PathBuf> {
    let has = |d: &Path| d.join("firmware").join(app).join("Cargo.toml").is_file();
    if let Some(d) = env {
        if !has(&d) {
            bail!(
                "{SOURCE_DIR_VAR} = {}: no firmware/{app} there (no firmware/{app}/Cargo.toml; {purpose} from the edgeflow source tree that variable names); \
set it to an edgeflow source tree, or {ways_out}",
                d.display()
            );
        }
        return Ok(d);
    }
    let mut tried: Vec<PathBuf> = Vec::new();
    for start in near {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        for d in start.ancestors() {
            if tried.iter().any(|t| t == d) {
                continue;
            }
            if has(d) {
                return Ok(d.to_path_buf());
            }
            tried.push(d.to_path_buf());
        }
    }
    let list: Vec<String> = tried.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "{purpose} from the edgeflow sources (firmware/{app}), and none was found: \
{SOURCE_DIR_VAR} is not set, and no firmware/{app}/Cargo.toml is in {}. \
Set {SOURCE_DIR_VAR} to an edgeflow source tree (a checkout of the edgeflow repository), or {ways_out}",
        if list.is_empty() {
            "any directory".to_string()
        } else {
            list.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_nearest_tree_and_names_every_place_tried() {
        let base = std::env::temp_dir().join(format!("edgeflow-sources-{}", std::process::id()));
        let tree = base.join("tree");
        let app = tree.join("firmware").join("app-x");
        std::fs::create_dir_all(&app).expect("dirs");
        std::fs::write(app.join("Cargo.toml"), "").expect("manifest");
        let inside = tree.join("a").join("b");
        std::fs::create_dir_all(&inside).expect("dirs");
        let outside = base.join("elsewhere");
        std::fs::create_dir_all(&outside).expect("dirs");

        let got = find_with(None, "app-x", &[&outside, &inside], "p", "w").expect("found");
        assert_eq!(got, tree);
        let e = find_with(
            None,
            "app-y",
            &[&outside, &inside],
            "building y",
            "pass --firmware ELF",
        )
        .expect_err("not found")
        .to_string();
        for d in [&outside, &base, &inside, &tree] {
            let d = d.display();
            assert!(
                e.contains(&format!("{d}, ")) || e.contains(&format!("{d}. Set")),
                "{d}: {e}"
            );
        }
        assert!(e.starts_with("building y from the edgeflow sources"), "{e}");
        assert!(
            e.contains("Set EDGEFLOW_SOURCE_DIR") && e.ends_with("or pass --firmware ELF"),
            "{e}"
        );

        let env = Some(tree.clone());
        let got = find_with(env.clone(), "app-x", &[&outside], "p", "w").expect("env");
        assert_eq!(got, tree);
        let e = find_with(env, "app-y", &[&inside], "p", "w").expect_err("env without app-y");
        assert!(e.to_string().contains("no firmware/app-y there"), "{e}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
