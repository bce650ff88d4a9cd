//! Output discipline shared by every subcommand.
//!
//! - Standard output is written with [`out!`]/[`outln!`], which return the I/O error instead
//!   of panicking; when the reader went away (`edgeflow inspect M | head`), `main` sees a
//!   broken pipe in the error chain and ends quietly with success, as cargo and coreutils do.
//! - An error is printed once: its chain joined by `: `, leaving out a cause whose message
//!   the previous one already contains (several library errors print their source inline).

use std::io::ErrorKind;

/// `print!` that returns `std::io::Result<()>` instead of panicking on a closed stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::write!(::std::io::stdout().lock(), $($arg)*)
    }};
}

/// `println!` that returns `std::io::Result<()>` instead of panicking on a closed stdout.
#[macro_export]
macro_rules! outln {
    () => {{
        use ::std::io::Write as _;
        ::std::writeln!(::std::io::stdout().lock())
    }};
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::writeln!(::std::io::stdout().lock(), $($arg)*)
    }};
}

/// Whether the error (or any cause) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

/// The error's chain as one message, each cause once.
pub fn message(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let m = cause.to_string();
        if m.is_empty() || parts.last().is_some_and(|prev| prev.contains(&m)) {
            continue;
        }
        parts.push(m);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Inline {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let e = anyhow::Error::new(Inline {
            path: "a.toml".into(),
            source: std::io::Error::other("line 3, column 1: bad key"),
        })
        .context("cannot load the pipeline");
        assert_eq!(
            message(&e),
            "cannot load the pipeline: a.toml: line 3, column 1: bad key"
        );
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let e = anyhow::Error::new(std::io::Error::from(ErrorKind::BrokenPipe)).context("x");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
