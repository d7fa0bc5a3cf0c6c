//! Operator-friendly text for FlowSpec components, as `levee flowspec
//! build` takes it: value lists (`80,443,1000-2000`), protocol names or
//! numbers, TCP flag sets as letters (`S`, `SA`: exact sets, any of which
//! matches), fragment words. Errors name the value and the expected form.

use super::{frag, ranges, BitOp, NumOp};
use crate::build::exact_tcp_flags;

/// `N`, `N-M`, comma-separated, each at most `max`.
pub fn parse_values(s: &str, max: u64, what: &str) -> Result<Vec<NumOp>, String> {
    let bad = |p: &str| {
        format!(
            "{what} `{p}`: expected N or N-M (0..={max}), comma-separated, e.g. 80,443,1000-2000"
        )
    };
    let mut rs = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u64>(), b.trim().parse::<u64>()),
            None => (part.parse::<u64>(), part.parse::<u64>()),
        };
        match (lo, hi) {
            (Ok(lo), Ok(hi)) if lo <= hi && hi <= max => rs.push((lo, hi)),
            _ => return Err(bad(part)),
        }
    }
    if rs.is_empty() {
        return Err(bad(s));
    }
    Ok(ranges(&rs))
}

/// Protocol names (`tcp`, `udp`, `icmp`, `icmpv6`, `gre`, `esp`, `sctp`) or numbers.
pub fn parse_protocols(s: &str) -> Result<Vec<NumOp>, String> {
    let mut out = Vec::new();
    for p in s.split(',').map(str::trim) {
        let n = match p.to_ascii_lowercase().as_str() {
            "icmp" => 1,
            "tcp" => 6,
            "udp" => 17,
            "gre" => 47,
            "esp" => 50,
            "icmpv6" | "ipv6-icmp" => 58,
            "sctp" => 132,
            other => other.parse::<u8>().map_err(|_| {
                format!("protocol `{p}`: expected tcp, udp, icmp, icmpv6, gre, esp, sctp or a number 0..255")
            })?,
        };
        out.push(NumOp::eq(u64::from(n)));
    }
    Ok(out)
}

/// TCP flag sets as letters (F S R P A U E C), comma-separated; each is an
/// exact set. `none` is no flags at all.
pub fn parse_tcp_flags(s: &str) -> Result<Vec<BitOp>, String> {
    let mut bytes = Vec::new();
    for set in s.split(',').map(str::trim) {
        let b = set.parse::<levee_packet::TcpFlags>().map_err(|_| {
            format!(
                "TCP flags `{set}`: expected letters of F S R P A U E C (e.g. S or SA), or none"
            )
        })?;
        bytes.push(b.0);
    }
    Ok(exact_tcp_flags(&bytes))
}

/// `not-a-fragment`, `is-fragment`, `first-fragment`, `last-fragment`,
/// `dont-fragment` or `later-fragments` (fragments but not the first).
pub fn parse_fragment(s: &str) -> Result<Vec<BitOp>, String> {
    Ok(match s {
        "not-a-fragment" | "unfragmented" => vec![BitOp::none(frag::IS_F)],
        "is-fragment" | "fragments" => vec![BitOp::any(frag::IS_F)],
        "first-fragment" => vec![BitOp::all(frag::FF)],
        "last-fragment" => vec![BitOp::all(frag::LF)],
        "dont-fragment" => vec![BitOp::all(frag::DF)],
        "later-fragments" => vec![BitOp::all(frag::IS_F), BitOp::none(frag::FF).and()],
        _ => {
            return Err(format!(
                "fragment `{s}`: expected not-a-fragment, is-fragment, first-fragment, last-fragment, dont-fragment or later-fragments"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowspec::eval;

    #[test]
    fn values() {
        let v = parse_values("80, 443,1000-2000", 65535, "port").unwrap();
        assert!(eval(&v, |o| o.and, |o| o.test(1500)));
        assert!(!eval(&v, |o| o.and, |o| o.test(81)));
        let e = parse_values("70000", 65535, "destination port").unwrap_err();
        assert!(e.contains("destination port `70000`"), "{e}");
        assert!(parse_values("9-3", 65535, "port").is_err());
        assert!(parse_values("", 65535, "port").is_err());
    }

    #[test]
    fn words() {
        assert_eq!(parse_protocols("tcp,udp,47").unwrap().len(), 3);
        assert!(parse_protocols("quic").unwrap_err().contains("quic"));
        let f = parse_tcp_flags("S,SA").unwrap();
        assert!(eval(&f, |o| o.and, |o| o.test(0x12)));
        assert!(!eval(&f, |o| o.and, |o| o.test(0x10)));
        assert!(parse_tcp_flags("X").unwrap_err().contains("F S R P"));
        assert_eq!(parse_fragment("later-fragments").unwrap().len(), 2);
        assert!(parse_fragment("maybe").is_err());
    }
}
