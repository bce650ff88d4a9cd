//! Aligned plain-text tables for terminals.

/// A table of strings rendered with aligned columns.
///
/// Contract: `render` pads every cell to its column's widest cell (counted in `char`s),
/// separates columns by two spaces, underlines the header, and never panics (rows with
/// fewer cells are padded with empty cells, extra cells are kept).
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right_from: usize,
}

impl Table {
    /// A table with the given column headers; all columns left-aligned.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let right_from = header.len().max(1) * 1000;
        Table {
            header,
            rows: Vec::new(),
            right_from,
        }
    }

    /// Right-aligns column `col` and every column after it (for numbers).
    pub fn right_align_from(&mut self, col: usize) -> &mut Self {
        self.right_from = col;
        self
    }

    /// Appends a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Number of rows (without the header).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rendered table, one line per row, each ending in `\n`.
    pub fn render(&self) -> String {
        let ncols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; ncols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let mut s = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = w.saturating_sub(c.chars().count());
                if i > 0 {
                    s.push_str("  ");
                }
                if i >= self.right_from {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut out, &self.header);
        let total: usize = widths.iter().sum::<usize>() + 2 * ncols.saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

/// `n` bytes as a short human-readable string (`512 B`, `1.5 KiB`, `3.2 MiB`, …).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new(["name", "n"]);
        t.right_align_from(1);
        t.row(["a", "1"]).row(["longer", "12345"]);
        let s = t.render();
        assert_eq!(
            s,
            "name        n\n-------------\na           1\nlonger  12345\n"
        );
    }

    #[test]
    fn ragged_rows_do_not_panic() {
        let mut t = Table::new(["a"]);
        t.row(["x", "y", "z"]).row(Vec::<String>::new());
        let s = t.render();
        assert_eq!(s.lines().count(), 4);
        assert!(s.contains("x  y  z"));
    }

    #[test]
    fn bytes_are_humane() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
