//! Line-oriented parsing of indicator lists.
//!
//! Parsing is streaming (a `BufRead` in, a callback per indicator out) so that loading
//! a million-line feed never holds the whole file or an intermediate `Vec` of owned
//! entries: the [`crate::IocSet`] builder takes indicators straight into its compact
//! tables. A bad line is counted and the first few are kept for the report; it never
//! stops the parse, because one corrupt line in a feed must not cost us the rest.

use std::fmt;
use std::io::{self, BufRead};

use crate::format::{Detector, Format};
use crate::prefix::{Prefix, PrefixError};

/// How many bad lines a report keeps verbatim; the rest are only counted.
pub const MAX_REPORTED_ERRORS: usize = 5;

/// One indicator as parsed: a prefix and, for Spamhaus lists, the SBL reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Indicator<'a> {
    /// The canonical prefix.
    pub prefix: Prefix,
    /// Free text attached by the list (Spamhaus: `SBL256894`).
    pub note: Option<&'a str>,
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineErrorKind {
    /// The address/prefix token is invalid.
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// Text follows the address without a comment marker (ranges, CSV, ...).
    #[error("unexpected text `{0}` after the address (comments start with `#` or `;`)")]
    TrailingText(String),
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
}

/// A bad line, naming the file and the 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct LineError {
    /// The list's file name (or another label for in-memory text).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: LineErrorKind,
}

/// The outcome of parsing one list (the indicators went to the caller's sink).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseReport {
    /// The list's file name or label.
    pub file: String,
    /// The format used (never `Auto` once a data line was seen).
    pub format: Format,
    /// Lines read, including comments and blanks.
    pub lines: usize,
    /// Indicators produced.
    pub indicators: usize,
    /// Lines that could not be parsed.
    pub bad_lines: usize,
    /// Indicators whose host bits were set and masked.
    pub normalised: usize,
    /// The first [`MAX_REPORTED_ERRORS`] bad lines.
    pub first_errors: Vec<LineError>,
}

impl fmt::Display for ParseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {} indicators, {} bad lines, {} normalised",
            self.file, self.format, self.indicators, self.bad_lines, self.normalised
        )
    }
}

/// An owned indicator, for callers that want a `Vec` (tests, small lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedIndicator {
    /// The canonical prefix.
    pub prefix: Prefix,
    /// The list's note, if any.
    pub note: Option<String>,
}

/// Parse in-memory text and collect the indicators.
pub fn parse_str(text: &str, file: &str, format: Format) -> (Vec<OwnedIndicator>, ParseReport) {
    let mut out = Vec::new();
    let mut parser = LineParser::new(file, format);
    for line in text.lines() {
        parser.line(Ok(line), &mut |i: Indicator<'_>| {
            out.push(OwnedIndicator {
                prefix: i.prefix,
                note: i.note.map(str::to_owned),
            })
        });
    }
    (out, parser.finish())
}

/// Parse a reader line by line, handing each indicator to `sink`.
///
/// Only an I/O error aborts (the file cannot be read, so nothing it says is trustworthy);
/// bad lines are reported in the returned [`ParseReport`].
pub fn parse_reader<R: BufRead>(
    mut reader: R,
    file: &str,
    format: Format,
    mut sink: impl FnMut(Indicator<'_>),
) -> io::Result<ParseReport> {
    let mut parser = LineParser::new(file, format);
    let mut buf = Vec::with_capacity(128);
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = std::str::from_utf8(&buf).map_err(|_| ());
        parser.line(line, &mut sink);
    }
    Ok(parser.finish())
}

/// The per-line state machine shared by [`parse_str`] and [`parse_reader`].
struct LineParser {
    report: ParseReport,
    detector: Detector,
}

impl LineParser {
    fn new(file: &str, format: Format) -> LineParser {
        LineParser {
            report: ParseReport {
                file: file.to_owned(),
                format,
                ..ParseReport::default()
            },
            detector: Detector::default(),
        }
    }

    fn line(&mut self, line: Result<&str, ()>, sink: &mut dyn FnMut(Indicator<'_>)) {
        self.report.lines += 1;
        let Ok(line) = line else {
            self.bad(LineErrorKind::NotUtf8);
            return;
        };
        // A UTF-8 byte-order mark would otherwise make the first address unparsable.
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() {
            return;
        }
        if line.starts_with('#') || line.starts_with(';') {
            if self.report.format == Format::Auto {
                self.detector.header(line);
            }
            return;
        }
        if self.report.format == Format::Auto {
            self.report.format = self.detector.decide(line);
        }
        match split_line(line, self.report.format) {
            Ok((token, note)) => match Prefix::parse(token) {
                Ok(parsed) => {
                    self.report.indicators += 1;
                    self.report.normalised += usize::from(parsed.normalised);
                    sink(Indicator {
                        prefix: parsed.prefix,
                        note,
                    });
                }
                Err(e) => self.bad(e.into()),
            },
            Err(kind) => self.bad(kind),
        }
    }

    fn bad(&mut self, kind: LineErrorKind) {
        self.report.bad_lines += 1;
        if self.report.first_errors.len() < MAX_REPORTED_ERRORS {
            self.report.first_errors.push(LineError {
                file: self.report.file.clone(),
                line: self.report.lines,
                kind,
            });
        }
    }

    fn finish(self) -> ParseReport {
        self.report
    }
}

/// Split a trimmed, non-comment line into the address token and an optional note.
fn split_line(line: &str, format: Format) -> Result<(&str, Option<&str>), LineErrorKind> {
    let (data, note) = match format {
        Format::SpamhausDrop => match line.split_once(';') {
            Some((data, note)) => {
                let note = note.trim();
                (data, (!note.is_empty()).then_some(note))
            }
            None => (line, None),
        },
        // Plain lists and netsets: `#` or `;` anywhere starts a trailing comment.
        _ => (line.split(['#', ';']).next().unwrap_or(""), None),
    };
    let mut tokens = data.split_whitespace();
    let token = tokens.next().unwrap_or("");
    match tokens.next() {
        Some(extra) => Err(LineErrorKind::TrailingText(extra.to_owned())),
        None => Ok((token, note)),
    }
}
