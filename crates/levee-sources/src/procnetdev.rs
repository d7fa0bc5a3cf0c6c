//! Parser for `/proc/net/dev`: per-interface cumulative byte, packet, error and
//! drop counters. Pure (text in, counters out); reading the file is
//! [`crate::KernelSource`]'s job.

use crate::error::{excerpt, ParseError};
use levee_model::InterfaceCounters;

/// Canonical path of the file this module parses; errors name it.
pub const PROC_NET_DEV: &str = "/proc/net/dev";

/// Positions of the counters we keep within a data line, learnt from the second
/// header line rather than hard-coded, so a kernel that adds a column to one
/// direction does not shift the other direction's values.
#[derive(Debug, Clone, Copy)]
struct Layout {
    total: usize,
    rx_bytes: usize,
    rx_packets: usize,
    rx_errs: usize,
    rx_drop: usize,
    tx_bytes: usize,
    tx_packets: usize,
    tx_errs: usize,
    tx_drop: usize,
}

impl Layout {
    /// Reads ` face |bytes packets errs drop ...|bytes packets errs drop ...`.
    fn from_header(line_no: usize, line: &str) -> Result<Layout, ParseError> {
        let mut parts = line.split('|');
        let (Some(_face), Some(rx), Some(tx), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::Unexpected {
                file: PROC_NET_DEV,
                line: line_no,
                expected: "the column header \" face |bytes packets ...|bytes packets ...\"".into(),
                found: excerpt(line),
            });
        };
        let find = |cols: &str, direction: &str, name: &str| {
            cols.split_ascii_whitespace()
                .position(|c| c == name)
                .ok_or_else(|| ParseError::MissingColumn {
                    file: PROC_NET_DEV,
                    line: line_no,
                    column: format!("{direction} {name}"),
                })
        };
        let rx_len = rx.split_ascii_whitespace().count();
        let tx_len = tx.split_ascii_whitespace().count();
        Ok(Layout {
            total: rx_len + tx_len,
            rx_bytes: find(rx, "Receive", "bytes")?,
            rx_packets: find(rx, "Receive", "packets")?,
            rx_errs: find(rx, "Receive", "errs")?,
            rx_drop: find(rx, "Receive", "drop")?,
            tx_bytes: rx_len + find(tx, "Transmit", "bytes")?,
            tx_packets: rx_len + find(tx, "Transmit", "packets")?,
            tx_errs: rx_len + find(tx, "Transmit", "errs")?,
            tx_drop: rx_len + find(tx, "Transmit", "drop")?,
        })
    }

    fn column_name(&self, index: usize) -> &'static str {
        match index {
            i if i == self.rx_bytes => "Receive bytes",
            i if i == self.rx_packets => "Receive packets",
            i if i == self.rx_errs => "Receive errs",
            i if i == self.rx_drop => "Receive drop",
            i if i == self.tx_bytes => "Transmit bytes",
            i if i == self.tx_packets => "Transmit packets",
            i if i == self.tx_errs => "Transmit errs",
            i if i == self.tx_drop => "Transmit drop",
            _ => "unused",
        }
    }
}

/// Parses the text of `/proc/net/dev`. `ifindex` is left `None`: the file does not
/// carry it.
pub fn parse_proc_net_dev(text: &str) -> Result<Vec<InterfaceCounters>, ParseError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let Some((n1, first)) = lines.next() else {
        return Err(ParseError::Empty { file: PROC_NET_DEV });
    };
    if !first.contains('|') {
        return Err(ParseError::Unexpected {
            file: PROC_NET_DEV,
            line: n1,
            expected: "the header \"Inter-|   Receive ... |  Transmit\"".into(),
            found: excerpt(first),
        });
    }
    let Some((n2, second)) = lines.next() else {
        return Err(ParseError::Unexpected {
            file: PROC_NET_DEV,
            line: n1 + 1,
            expected: "the column header \" face |bytes packets ...\"".into(),
            found: "end of file".into(),
        });
    };
    let layout = Layout::from_header(n2, second)?;

    let mut out = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_line(&layout, n, line)?);
    }
    Ok(out)
}

fn parse_line(layout: &Layout, n: usize, line: &str) -> Result<InterfaceCounters, ParseError> {
    // Interface names cannot contain ':' (dev_valid_name), and old kernels print
    // large byte counts glued to it ("eth0:123"), so split at the first colon.
    let Some((name, values)) = line.split_once(':') else {
        return Err(ParseError::Unexpected {
            file: PROC_NET_DEV,
            line: n,
            expected: "\"NAME: counters...\"".into(),
            found: excerpt(line),
        });
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(ParseError::Unexpected {
            file: PROC_NET_DEV,
            line: n,
            expected: "an interface name before ':'".into(),
            found: excerpt(line),
        });
    }

    let count = values.split_ascii_whitespace().count();
    if count != layout.total {
        return Err(ParseError::Unexpected {
            file: PROC_NET_DEV,
            line: n,
            expected: format!("{} counters as in the header", layout.total),
            found: format!("{count} in {}", excerpt(line)),
        });
    }

    let mut c = InterfaceCounters {
        name: name.to_string(),
        ..InterfaceCounters::default()
    };
    for (i, field) in values.split_ascii_whitespace().enumerate() {
        let slot = match i {
            i if i == layout.rx_bytes => &mut c.rx_bytes,
            i if i == layout.rx_packets => &mut c.rx_packets,
            i if i == layout.rx_errs => &mut c.rx_errors,
            i if i == layout.rx_drop => &mut c.rx_drops,
            i if i == layout.tx_bytes => &mut c.tx_bytes,
            i if i == layout.tx_packets => &mut c.tx_packets,
            i if i == layout.tx_errs => &mut c.tx_errors,
            i if i == layout.tx_drop => &mut c.tx_drops,
            _ => continue,
        };
        *slot = field.parse().map_err(|_| ParseError::NotANumber {
            file: PROC_NET_DEV,
            line: n,
            column: format!("{name} {}", layout.column_name(i)),
            found: excerpt(field),
        })?;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/proc_net_dev.txt");

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

    #[test]
    fn parses_this_machines_file() {
        let ifs = parse_proc_net_dev(FIXTURE).expect("fixture parses");
        let names: Vec<&str> = ifs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        let eth0 = &ifs[3];
        assert_eq!(eth0.rx_bytes, 51_067_859);
        assert_eq!(eth0.rx_packets, 2093);
        assert_eq!(eth0.tx_bytes, 154_561);
        assert_eq!(eth0.tx_packets, 1481);
        assert_eq!(eth0.ifindex, None);
        assert_eq!(ifs[0].rx_bytes, ifs[0].tx_bytes, "lo sends to itself");
    }

    #[test]
    fn maps_every_column_to_the_right_field() {
        let text = format!("{HEADER}  eth1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
        let c = &parse_proc_net_dev(&text).unwrap()[0];
        assert_eq!(
            (c.rx_bytes, c.rx_packets, c.rx_errors, c.rx_drops),
            (1, 2, 3, 4)
        );
        assert_eq!(
            (c.tx_bytes, c.tx_packets, c.tx_errors, c.tx_drops),
            (9, 10, 11, 12)
        );
    }

    #[test]
    fn accepts_counter_glued_to_name_and_u64_max() {
        let text = format!("{HEADER}eth0:18446744073709551615 2 0 0 0 0 0 0 9 10 0 0 0 0 0 0\n");
        let c = &parse_proc_net_dev(&text).unwrap()[0];
        assert_eq!(c.name, "eth0");
        assert_eq!(c.rx_bytes, u64::MAX);
    }

    #[test]
    fn follows_the_header_when_a_column_is_added() {
        let text = "Inter-|   Receive |  Transmit\n \
face |bytes packets errs drop newcol|bytes packets errs drop\n  \
eth0: 1 2 3 4 99 5 6 7 8\n";
        let c = &parse_proc_net_dev(text).unwrap()[0];
        assert_eq!((c.rx_drops, c.tx_bytes, c.tx_drops), (4, 5, 8));
    }

    #[test]
    fn empty_file_is_an_error() {
        assert_eq!(
            parse_proc_net_dev(""),
            Err(ParseError::Empty { file: PROC_NET_DEV })
        );
    }

    #[test]
    fn truncated_line_names_file_and_line() {
        let text = format!("{HEADER}  eth0: 1 2 3 4 5 6\n");
        let e = parse_proc_net_dev(&text).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("16 counters"), "{e}");
    }

    #[test]
    fn truncated_header_is_an_error() {
        let e = parse_proc_net_dev("Inter-|   Receive |  Transmit\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
    }

    #[test]
    fn non_numeric_counter_names_the_column() {
        let text = format!("{HEADER}  eth0: 1 x 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
        let e = parse_proc_net_dev(&text).unwrap_err();
        assert!(
            matches!(&e, ParseError::NotANumber { column, line: 3, .. } if column == "eth0 Receive packets"),
            "{e}"
        );
    }

    #[test]
    fn negative_counter_is_an_error() {
        let text = format!("{HEADER}  eth0: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
        assert!(matches!(
            parse_proc_net_dev(&text),
            Err(ParseError::NotANumber { .. })
        ));
    }

    #[test]
    fn missing_column_is_named() {
        let text = "Inter-|   Receive |  Transmit\n \
face |bytes packets errs|bytes packets errs drop\n";
        let e = parse_proc_net_dev(text).unwrap_err();
        assert_eq!(
            e,
            ParseError::MissingColumn {
                file: PROC_NET_DEV,
                line: 2,
                column: "Receive drop".into()
            }
        );
    }

    #[test]
    fn line_without_colon_is_an_error() {
        let text = format!("{HEADER}  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
        assert!(matches!(
            parse_proc_net_dev(&text),
            Err(ParseError::Unexpected { line: 3, .. })
        ));
    }
}
