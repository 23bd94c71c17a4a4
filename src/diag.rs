//! Errors that say where: `zones/eu.toml: line 14: region "fra" has no VIP`.

use std::fmt;
use std::path::{Path, PathBuf};

/// One mistake in one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The input file the mistake is in, shown first when displayed.
    pub file: PathBuf,
    /// 1-based line, when the mistake can be pinned to one.
    pub line: Option<usize>,
    /// What is wrong, without the `file: line N:` prefix that `Display` adds.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic for `file`, at `line` (1-based) when known.
    pub fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}: line {}: {}",
                self.file.display(),
                line,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every mistake found in one load; a load either succeeds whole or returns all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one mistake.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// True when no mistake was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The number of mistakes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// The mistakes in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
    /// A list holding the single mistake `file: line: message`.
    pub fn one(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self(vec![Diagnostic::new(file, line, message)])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// The 1-based line of byte offset `pos` in `text`.
pub fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Byte offset → line, for many lookups in one text: the line starts are found once and each
/// lookup is a binary search (a zone of 10 000 services asks for thousands of lines).
pub struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    /// Finds the start of every line of `text` once, for [`line`](Self::line) lookups.
    pub fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        Self { starts }
    }

    /// The 1-based line of byte offset `pos` (as [`line_of`]).
    pub fn line(&self, pos: usize) -> usize {
        self.starts.partition_point(|&s| s <= pos).max(1)
    }
}

/// Turns a toml parse error into a diagnostic with the line it points at.
pub(crate) fn from_toml_error(file: &Path, text: &str, err: &toml::de::Error) -> Diagnostic {
    let line = err.span().map(|s| line_of(text, s.start));
    // toml's Display repeats the source excerpt over several lines; the message alone reads
    // better after `file: line N:`.
    Diagnostic::new(file, line, err.message().trim().to_string())
}

#[cfg(test)]
mod lines_tests {
    use super::{Lines, line_of};

    #[test]
    fn lines_agree_with_counting_newlines_at_every_offset() {
        for text in ["", "a", "\n", "a\nb", "a\n\nbc\n", "\n\nx\ny\n\n"] {
            let lines = Lines::new(text);
            for pos in 0..=text.len() + 2 {
                assert_eq!(lines.line(pos), line_of(text, pos), "{text:?} at {pos}");
            }
        }
    }
}
