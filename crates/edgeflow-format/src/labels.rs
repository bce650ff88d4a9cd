//! The labels section ([`SectionKind::Labels`](crate::SectionKind)): class names.
//!
//! Wire form: UTF-8 text, one label per line (`\n`; a trailing `\r` is not part of the
//! label), the line index being the class index of the model's output. A trailing newline
//! after the last label is allowed. Labels are borrowed; nothing is copied.

/// Why a labels section was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LabelsError {
    /// The section is not valid UTF-8; `offset` is the first bad byte.
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// Label `index` is empty.
    Empty {
        /// Class index of the empty label.
        index: usize,
    },
}

impl core::fmt::Display for LabelsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::NotUtf8 { offset } => write!(f, "labels section is not UTF-8 (byte {offset})"),
            Self::Empty { index } => write!(f, "label of class {index} is empty"),
        }
    }
}

impl core::error::Error for LabelsError {}

/// A validated view of the labels section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Labels<'a> {
    text: &'a str,
    count: usize,
}

impl<'a> Labels<'a> {
    /// Validates the section (UTF-8, no empty label). Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LabelsError> {
        let text = core::str::from_utf8(bytes).map_err(|e| LabelsError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let mut count: usize = 0;
        if !text.is_empty() {
            for (index, l) in text.split('\n').enumerate() {
                if l.strip_suffix('\r').unwrap_or(l).is_empty() {
                    return Err(LabelsError::Empty { index });
                }
                count = count.saturating_add(1);
            }
        }
        Ok(Self { text, count })
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The label of class `index`.
    pub fn get(&self, index: usize) -> Option<&'a str> {
        self.iter().nth(index)
    }

    /// The labels in class order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let text = self.text;
        text.split('\n')
            .filter(move |_| !text.is_empty())
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// Encodes labels as the section's bytes (host side).
#[cfg(feature = "std")]
pub fn encode<S: AsRef<str>>(labels: &[S]) -> Result<Vec<u8>, LabelsError> {
    let mut out = String::new();
    for (index, l) in labels.iter().enumerate() {
        let l = l.as_ref();
        if l.is_empty() || l.contains('\n') || l.ends_with('\r') {
            return Err(LabelsError::Empty { index });
        }
        out.push_str(l);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let b = encode(&["walking", "running", "idle"]).expect("enc");
        let l = Labels::parse(&b).expect("parse");
        assert_eq!(l.len(), 3);
        assert_eq!(l.get(1), Some("running"));
        assert_eq!(l.get(3), None);
        let crlf = Labels::parse(b"a\r\nb\r\n").expect("crlf");
        assert_eq!(crlf.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(Labels::parse(b"").expect("empty").is_empty());
        assert_eq!(
            Labels::parse(b"a\n\nb"),
            Err(LabelsError::Empty { index: 1 })
        );
        assert_eq!(
            Labels::parse(b"a\xff"),
            Err(LabelsError::NotUtf8 { offset: 1 })
        );
    }
}
