//! Turns TOML and validation problems into messages a person can act on:
//! every problem names the file, the line and column, and the key path.
//!
//! serde only tells us a byte span; a [`SpanIndex`] built from toml's spanned
//! document maps spans back to key paths (`trunk.max_concurrent_calls`,
//! `campaign[1].mode`) and key paths to positions, so serde errors and our own
//! semantic checks are reported the same way.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `trunk.max_concurrent_calls` or `campaign[0].mode`;
    /// empty when the problem is not tied to a key (broken TOML syntax).
    pub key: String,
    /// 1-based line and column, when the position is known.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub fn single(file: &Path, problem: Problem) -> Self {
        Self {
            file: file.to_path_buf(),
            problems: vec![problem],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{} problem{} in {}",
            count,
            if count == 1 { "" } else { "s" },
            self.file.display()
        )?;
        for problem in &self.problems {
            write!(f, "\n  {}", problem.display_in(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Problem {
    /// `outdial.toml:12:1: `trunk.max_calls`: unknown key …`
    pub fn display_in(&self, file: &Path) -> String {
        let place = match self.position {
            Some((line, column)) => format!("{}:{line}:{column}", file.display()),
            None => file.display().to_string(),
        };
        if self.key.is_empty() {
            format!("{place}: {}", self.message)
        } else {
            format!("{place}: `{}`: {}", self.key, self.message)
        }
    }
}

/// Where each key of a TOML document stands.
#[derive(Debug, Default)]
pub struct SpanIndex {
    /// (dotted path, span of the key, span of the value)
    entries: Vec<(String, Range<usize>, Range<usize>)>,
    line_starts: Vec<usize>,
}

impl SpanIndex {
    /// Builds the index; `None` when the text is not valid TOML (the caller
    /// reports the syntax error, which carries its own span).
    pub fn build(text: &str) -> Option<Self> {
        let document = DeTable::parse(text).ok()?;
        let mut index = SpanIndex {
            entries: Vec::new(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(at, _)| at + 1))
                .collect(),
        };
        index.walk_table(document.get_ref(), "");
        Some(index)
    }

    /// Line starts only, for errors in documents that do not parse.
    pub fn lines_only(text: &str) -> Self {
        SpanIndex {
            entries: Vec::new(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(at, _)| at + 1))
                .collect(),
        }
    }

    fn walk_table(&mut self, table: &DeTable<'_>, prefix: &str) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.entries.push((path.clone(), key.span(), value.span()));
            self.walk_value(value.get_ref(), &path);
        }
    }

    fn walk_value(&mut self, value: &DeValue<'_>, path: &str) {
        match value {
            DeValue::Table(table) => self.walk_table(table, path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.entries
                        .push((item_path.clone(), item.span(), item.span()));
                    self.walk_value(item.get_ref(), &item_path);
                }
            }
            _ => {}
        }
    }

    /// 1-based (line, column) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(exact) => exact,
            Err(next) => next.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        (line + 1, offset.saturating_sub(start) + 1)
    }

    /// The innermost key whose key or value span contains `span`.
    pub fn key_at(&self, span: &Range<usize>) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(_, key, value)| contains(key, span) || contains(value, span))
            .min_by_key(|(_, key, value)| {
                if contains(key, span) {
                    key.len()
                } else {
                    value.len()
                }
            })
            .map(|(path, _, _)| path.as_str())
    }

    /// Position of a key path (its key if it has one, else its value).
    pub fn position_of(&self, path: &str) -> Option<(usize, usize)> {
        self.entries
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, key, _)| self.position(key.start))
    }

    /// Position of the closest ancestor of `path` present in the file, so a
    /// missing key is reported at the table that should hold it.
    pub fn position_of_nearest(&self, path: &str) -> Option<(usize, usize)> {
        let mut candidate = path;
        loop {
            if let Some(found) = self.position_of(candidate) {
                return Some(found);
            }
            let cut = candidate.rfind(['.', '['])?;
            candidate = &candidate[..cut];
        }
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && inner.start < outer.end
}

/// Converts a toml/serde error into a [`Problem`] with position, key path, and
/// a "did you mean" hint for unknown keys.
pub fn problem_from_toml(error: &toml::de::Error, index: &SpanIndex) -> Problem {
    let span = error.span();
    let position = span.as_ref().map(|s| index.position(s.start));
    let key = span
        .as_ref()
        .and_then(|s| index.key_at(s))
        .unwrap_or_default()
        .to_string();
    let raw = error.message().trim().to_string();
    Problem {
        key,
        position,
        message: explain(&raw),
    }
}

/// A TOML syntax error: no key path exists yet, so name the key or table
/// written on the offending line.
pub fn problem_from_syntax(error: &toml::de::Error, text: &str) -> Problem {
    let index = SpanIndex::lines_only(text);
    let position = error.span().map(|s| index.position(s.start));
    let line = position
        .and_then(|(line, _)| text.lines().nth(line - 1))
        .unwrap_or_default()
        .trim();
    let key = match line.split_once('=') {
        Some((key, _)) => key.trim().to_string(),
        None if line.starts_with('[') => line.to_string(),
        None => String::new(),
    };
    Problem {
        key,
        position,
        message: format!("invalid TOML: {}", error.message().trim()),
    }
}

/// Rewrites serde's wording into ours where it helps the reader.
fn explain(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        // serde: "unknown field `max_calls`, expected one of `uri`, `transport`, ..."
        let (unknown, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let mut close: Vec<(f64, &str)> = candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(unknown, c), *c))
            .filter(|(score, _)| *score > 0.7)
            .collect();
        close.sort_by(|a, b| b.0.total_cmp(&a.0));
        let close: Vec<String> = close
            .iter()
            .take(2)
            .map(|(_, c)| format!("`{c}`"))
            .collect();
        let mut message = format!("unknown key `{unknown}`");
        if !close.is_empty() {
            message.push_str(&format!(" — did you mean {}?", close.join(" or ")));
        } else if !candidates.is_empty() {
            message.push_str(&format!("; expected one of: {}", candidates.join(", ")));
        }
        return message;
    }
    if raw.contains("expected u16") {
        return format!("{raw} (ports are 1–65535)");
    }
    raw.to_string()
}
