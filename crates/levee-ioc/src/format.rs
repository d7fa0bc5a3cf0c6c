//! List formats and auto-detection.
//!
//! The three formats differ only in what a `;` means: in Spamhaus DROP/EDROP it
//! introduces the SBL reference we keep as the indicator's note; in plain lists it starts
//! a comment. FireHOL netsets are plain lists with a `#` header. Detection therefore
//! only has to look at the header comments and the first data line, which lets the
//! parser stream a file without reading it twice.

use std::fmt;

/// The format of an indicator list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Decide from the header comments and the first data line.
    #[default]
    Auto,
    /// One address or CIDR per line; `#` and `;` start comments.
    Plain,
    /// Spamhaus DROP / EDROP / DROPv6: `1.10.16.0/20 ; SBL256894`, `;` header lines.
    SpamhausDrop,
    /// FireHOL `.netset` / `.ipset`: a `#` comment header, then one network per line.
    FireholNetset,
}

impl Format {
    /// The name used in config files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Plain => "plain",
            Format::SpamhausDrop => "spamhaus_drop",
            Format::FireholNetset => "firehol_netset",
        }
    }

    /// Parse a config name (as printed by [`Format::name`]).
    pub fn from_name(name: &str) -> Option<Format> {
        [
            Format::Auto,
            Format::Plain,
            Format::SpamhausDrop,
            Format::FireholNetset,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Streaming detector: feed it comment lines until the first data line, then decide.
#[derive(Debug, Default)]
pub(crate) struct Detector {
    spamhaus_header: bool,
    firehol_header: bool,
}

impl Detector {
    /// Look at a header (comment) line.
    pub(crate) fn header(&mut self, line: &str) {
        // Header lines are short; lowercasing them costs nothing next to the data.
        let lower = line.to_ascii_lowercase();
        self.spamhaus_header |= lower.contains("spamhaus");
        self.firehol_header |= lower.contains("firehol");
    }

    /// Decide from the first data line (already trimmed).
    pub(crate) fn decide(&self, first_data: &str) -> Format {
        let sbl_trailer = first_data
            .split_once(';')
            .map(|(_, rest)| rest.trim_start().starts_with("SBL"))
            .unwrap_or(false);
        if self.spamhaus_header || sbl_trailer {
            Format::SpamhausDrop
        } else if self.firehol_header {
            Format::FireholNetset
        } else {
            Format::Plain
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in [
            Format::Auto,
            Format::Plain,
            Format::SpamhausDrop,
            Format::FireholNetset,
        ] {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("csv"), None);
    }

    #[test]
    fn detects_from_header_or_first_line() {
        let mut d = Detector::default();
        d.header("; Spamhaus DROP List 2024/05/01");
        assert_eq!(d.decide("1.10.16.0/20 ; SBL256894"), Format::SpamhausDrop);

        let d = Detector::default();
        assert_eq!(d.decide("1.10.16.0/20 ; SBL256894"), Format::SpamhausDrop);

        let mut d = Detector::default();
        d.header("# Maintainer      : FireHOL");
        assert_eq!(d.decide("1.0.0.0/24"), Format::FireholNetset);

        let d = Detector::default();
        assert_eq!(d.decide("1.0.0.1 ; seen scanning"), Format::Plain);
    }
}
