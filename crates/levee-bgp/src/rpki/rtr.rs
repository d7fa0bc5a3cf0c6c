//! A small RPKI-to-Router client (RFC 8210 version 1, falling back to
//! RFC 6810 version 0 when the cache says so): the PDU codec is pure
//! (`decode_pdu` over bytes, property-tested), the client does one Reset
//! Query over a blocking TCP stream and returns the full VRP set.
//!
//! Why not the `rpki` crate's RTR client: it is async (tokio) and built to
//! keep a long-lived session feeding a target trait; Levee needs a snapshot
//! on start and on refresh from a plain thread, which is ~200 lines here.
//! Router Key and ASPA PDUs (BGPsec, 8210bis) are skipped by length.

use super::{Roa, RoaSet};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// One PDU (the ones a client receives, plus the queries it sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    SerialNotify {
        version: u8,
        session: u16,
        serial: u32,
    },
    SerialQuery {
        version: u8,
        session: u16,
        serial: u32,
    },
    ResetQuery {
        version: u8,
    },
    CacheResponse {
        version: u8,
        session: u16,
    },
    /// IPv4 or IPv6 prefix; `announce` false means withdraw.
    Prefix {
        version: u8,
        announce: bool,
        roa: Roa,
    },
    EndOfData {
        version: u8,
        session: u16,
        serial: u32,
    },
    CacheReset {
        version: u8,
    },
    ErrorReport {
        version: u8,
        code: u16,
        text: String,
    },
    /// A PDU type this client does not use (Router Key, ASPA, ...).
    Other {
        version: u8,
        ty: u8,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RtrError {
    #[error("RTR PDU: {0}")]
    Malformed(String),
    #[error("RTR cache {addr}: {source} (check [bgp.rpki] rtr address and that the cache runs)")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("RTR cache {addr} reported error {code}: {text}")]
    Report {
        addr: String,
        code: u16,
        text: String,
    },
    #[error("RTR cache {addr}: unexpected {pdu:?} during a reset query")]
    Unexpected { addr: String, pdu: Box<Pdu> },
}

const HDR: usize = 8;

/// Decodes one PDU from the start of `buf`: `Ok(None)` when more bytes are
/// needed, else the PDU and its length.
pub fn decode_pdu(buf: &[u8]) -> Result<Option<(Pdu, usize)>, RtrError> {
    if buf.len() < HDR {
        return Ok(None);
    }
    let version = buf[0];
    let ty = buf[1];
    let field = u16::from_be_bytes([buf[2], buf[3]]);
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let bad = |m: String| RtrError::Malformed(format!("type {ty} version {version}: {m}"));
    if len < HDR {
        return Err(bad(format!("length {len} is shorter than the header")));
    }
    if len > 1 << 20 {
        return Err(bad(format!("length {len} is implausible")));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let b = &buf[..len];
    let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let want = |n: usize| -> Result<(), RtrError> {
        if len == n {
            Ok(())
        } else {
            Err(bad(format!("length {len}, expected {n}")))
        }
    };
    let pdu = match ty {
        0 | 1 => {
            want(12)?;
            let serial = u32_at(8);
            if ty == 0 {
                Pdu::SerialNotify {
                    version,
                    session: field,
                    serial,
                }
            } else {
                Pdu::SerialQuery {
                    version,
                    session: field,
                    serial,
                }
            }
        }
        2 => {
            want(8)?;
            Pdu::ResetQuery { version }
        }
        3 => {
            want(8)?;
            Pdu::CacheResponse {
                version,
                session: field,
            }
        }
        4 | 6 => {
            let v6 = ty == 6;
            want(if v6 { 32 } else { 20 })?;
            let flags = b[8];
            let plen = b[9];
            let max_len = b[10];
            let (prefix, asn) = if v6 {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[12..28]);
                let n = Ipv6Net::new(Ipv6Addr::from(a), plen)
                    .map_err(|_| bad(format!("IPv6 prefix length {plen}")))?;
                (IpNet::V6(n), u32_at(28))
            } else {
                let n = Ipv4Net::new(Ipv4Addr::new(b[12], b[13], b[14], b[15]), plen)
                    .map_err(|_| bad(format!("IPv4 prefix length {plen}")))?;
                (IpNet::V4(n), u32_at(16))
            };
            if max_len < plen || max_len > prefix.max_prefix_len() {
                return Err(bad(format!("max length {max_len} for a /{plen}")));
            }
            Pdu::Prefix {
                version,
                announce: flags & 1 == 1,
                roa: Roa {
                    prefix: prefix.trunc(),
                    max_len,
                    asn,
                },
            }
        }
        7 => {
            // Version 0: serial only; version 1: + refresh, retry, expire.
            want(if version == 0 { 12 } else { 24 })?;
            Pdu::EndOfData {
                version,
                session: field,
                serial: u32_at(8),
            }
        }
        8 => {
            want(8)?;
            Pdu::CacheReset { version }
        }
        10 => {
            if len < 16 {
                return Err(bad(format!("error report length {len}")));
            }
            let enc = u32_at(8) as usize;
            let text_at = 12 + enc;
            if text_at + 4 > len {
                return Err(bad(format!(
                    "encapsulated PDU length {enc} overruns the report"
                )));
            }
            let tlen = u32_at(text_at) as usize;
            if text_at + 4 + tlen != len {
                return Err(bad(format!(
                    "error text length {tlen} does not fill the report"
                )));
            }
            Pdu::ErrorReport {
                version,
                code: field,
                text: String::from_utf8_lossy(&b[text_at + 4..]).into_owned(),
            }
        }
        _ => Pdu::Other { version, ty },
    };
    Ok(Some((pdu, len)))
}

/// The bytes of a PDU this client sends (queries) or a cache sends (used by
/// tests and the fake cache).
pub fn encode_pdu(p: &Pdu) -> Vec<u8> {
    let hdr = |v: u8, ty: u8, field: u16, len: u32| {
        let mut o = vec![v, ty];
        o.extend_from_slice(&field.to_be_bytes());
        o.extend_from_slice(&len.to_be_bytes());
        o
    };
    match p {
        Pdu::SerialNotify {
            version,
            session,
            serial,
        }
        | Pdu::SerialQuery {
            version,
            session,
            serial,
        } => {
            let ty = if matches!(p, Pdu::SerialNotify { .. }) {
                0
            } else {
                1
            };
            let mut o = hdr(*version, ty, *session, 12);
            o.extend_from_slice(&serial.to_be_bytes());
            o
        }
        Pdu::ResetQuery { version } => hdr(*version, 2, 0, 8),
        Pdu::CacheResponse { version, session } => hdr(*version, 3, *session, 8),
        Pdu::Prefix {
            version,
            announce,
            roa,
        } => {
            let v6 = roa.prefix.addr().is_ipv6();
            let mut o = hdr(
                *version,
                if v6 { 6 } else { 4 },
                0,
                if v6 { 32 } else { 20 },
            );
            o.extend_from_slice(&[u8::from(*announce), roa.prefix.prefix_len(), roa.max_len, 0]);
            match roa.prefix {
                IpNet::V4(n) => o.extend_from_slice(&n.network().octets()),
                IpNet::V6(n) => o.extend_from_slice(&n.network().octets()),
            }
            o.extend_from_slice(&roa.asn.to_be_bytes());
            o
        }
        Pdu::EndOfData {
            version,
            session,
            serial,
        } => {
            let mut o = hdr(*version, 7, *session, if *version == 0 { 12 } else { 24 });
            o.extend_from_slice(&serial.to_be_bytes());
            if *version > 0 {
                for v in [3600u32, 600, 7200] {
                    o.extend_from_slice(&v.to_be_bytes());
                }
            }
            o
        }
        Pdu::CacheReset { version } => hdr(*version, 8, 0, 8),
        Pdu::ErrorReport {
            version,
            code,
            text,
        } => {
            let mut o = hdr(*version, 10, *code, 16 + text.len() as u32);
            o.extend_from_slice(&0u32.to_be_bytes());
            o.extend_from_slice(&(text.len() as u32).to_be_bytes());
            o.extend_from_slice(text.as_bytes());
            o
        }
        Pdu::Other { version, ty } => hdr(*version, *ty, 0, 8),
    }
}

/// A full VRP snapshot from a cache.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub roas: RoaSet,
    pub version: u8,
    pub session: u16,
    pub serial: u32,
}

/// Error code "Unsupported Protocol Version" (RFC 8210 §12).
const UNSUPPORTED_VERSION: u16 = 4;

/// Connects to `addr`, sends a Reset Query and collects every VRP until
/// End of Data. Tries version 1, then 0 if the cache only speaks 0.
pub fn fetch(addr: SocketAddr, timeout: Duration) -> Result<Snapshot, RtrError> {
    match fetch_version(addr, timeout, 1) {
        Err(RtrError::Report { code, .. }) if code == UNSUPPORTED_VERSION => {
            fetch_version(addr, timeout, 0)
        }
        other => other,
    }
}

fn fetch_version(addr: SocketAddr, timeout: Duration, version: u8) -> Result<Snapshot, RtrError> {
    let a = addr.to_string();
    let io = |source| RtrError::Io {
        addr: a.clone(),
        source,
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.write_all(&encode_pdu(&Pdu::ResetQuery { version }))
        .map_err(io)?;
    let mut buf: Vec<u8> = Vec::new();
    let mut roas = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut session = None;
    loop {
        while let Some((pdu, n)) = decode_pdu(&buf)? {
            buf.drain(..n);
            match pdu {
                Pdu::CacheResponse { session: s, .. } => session = Some(s),
                Pdu::Prefix {
                    announce: true,
                    roa,
                    ..
                } => roas.push(roa),
                Pdu::Prefix {
                    announce: false,
                    roa,
                    ..
                } => roas.retain(|r| *r != roa),
                Pdu::EndOfData {
                    version,
                    session: s,
                    serial,
                } => {
                    return Ok(Snapshot {
                        roas: RoaSet::new(roas),
                        version,
                        session: session.unwrap_or(s),
                        serial,
                    })
                }
                Pdu::ErrorReport { code, text, .. } => {
                    return Err(RtrError::Report {
                        addr: a,
                        code,
                        text,
                    })
                }
                Pdu::SerialNotify { .. } | Pdu::Other { .. } => {}
                other => {
                    return Err(RtrError::Unexpected {
                        addr: a,
                        pdu: Box::new(other),
                    })
                }
            }
        }
        let n = s.read(&mut chunk).map_err(io)?;
        if n == 0 {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the cache closed the connection before End of Data",
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::TcpListener;

    fn roa(p: &str, m: u8, asn: u32) -> Roa {
        Roa {
            prefix: p.parse().unwrap(),
            max_len: m,
            asn,
        }
    }

    #[test]
    fn prefix_pdu_bytes() {
        // RFC 8210 §5.6: IPv4 Prefix PDU, 20 bytes.
        let b = encode_pdu(&Pdu::Prefix {
            version: 1,
            announce: true,
            roa: roa("203.0.113.0/24", 24, 64500),
        });
        assert_eq!(
            b,
            [1, 4, 0, 0, 0, 0, 0, 20, 1, 24, 24, 0, 203, 0, 113, 0, 0, 0, 0xfb, 0xf4]
        );
        assert_eq!(decode_pdu(&b[..19]).unwrap(), None);
        let (p, n) = decode_pdu(&b).unwrap().unwrap();
        assert_eq!(n, 20);
        assert!(matches!(p, Pdu::Prefix { announce: true, .. }));
    }

    #[test]
    fn malformed_pdus_are_named() {
        let mut b = encode_pdu(&Pdu::Prefix {
            version: 1,
            announce: true,
            roa: roa("10.0.0.0/8", 8, 1),
        });
        b[10] = 4; // max length below the prefix length
        assert!(decode_pdu(&b)
            .unwrap_err()
            .to_string()
            .contains("max length 4"));
        let short = [1u8, 4, 0, 0, 0, 0, 0, 4];
        assert!(decode_pdu(&short)
            .unwrap_err()
            .to_string()
            .contains("shorter than the header"));
    }

    /// A scripted cache on 127.0.0.1: one connection, answers a Reset Query.
    fn fake_cache(answer: Vec<Pdu>, refuse_v1: bool) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let Ok((mut c, _)) = l.accept() else { return };
                let mut q = [0u8; 8];
                if c.read_exact(&mut q).is_err() {
                    return;
                }
                if q[0] == 1 && refuse_v1 {
                    let e = Pdu::ErrorReport {
                        version: 0,
                        code: 4,
                        text: "only v0".into(),
                    };
                    let _ = c.write_all(&encode_pdu(&e));
                    continue;
                }
                for p in &answer {
                    let _ = c.write_all(&encode_pdu(p));
                }
                return;
            }
        });
        addr
    }

    #[test]
    fn reset_query_collects_vrps() {
        let addr = fake_cache(
            vec![
                Pdu::CacheResponse {
                    version: 1,
                    session: 7,
                },
                Pdu::Prefix {
                    version: 1,
                    announce: true,
                    roa: roa("203.0.113.0/24", 24, 64500),
                },
                Pdu::Other { version: 1, ty: 9 },
                Pdu::Prefix {
                    version: 1,
                    announce: true,
                    roa: roa("2001:db8::/32", 48, 64500),
                },
                Pdu::EndOfData {
                    version: 1,
                    session: 7,
                    serial: 42,
                },
            ],
            false,
        );
        let s = fetch(addr, Duration::from_secs(5)).unwrap();
        assert_eq!(
            (s.version, s.session, s.serial, s.roas.len()),
            (1, 7, 42, 2)
        );
    }

    #[test]
    fn falls_back_to_version_0() {
        let addr = fake_cache(
            vec![
                Pdu::CacheResponse {
                    version: 0,
                    session: 1,
                },
                Pdu::Prefix {
                    version: 0,
                    announce: true,
                    roa: roa("203.0.113.0/24", 24, 64500),
                },
                Pdu::EndOfData {
                    version: 0,
                    session: 1,
                    serial: 3,
                },
            ],
            true,
        );
        let s = fetch(addr, Duration::from_secs(5)).unwrap();
        assert_eq!((s.version, s.roas.len()), (0, 1));
    }

    fn arb_pdu() -> impl Strategy<Value = Pdu> {
        let v4 = (
            any::<u32>(),
            0u8..=32,
            0u8..=32,
            any::<u32>(),
            any::<bool>(),
        )
            .prop_map(|(a, l, m, asn, ann)| {
                let l2 = l.max(m);
                Pdu::Prefix {
                    version: 1,
                    announce: ann,
                    roa: Roa {
                        prefix: IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()),
                        max_len: l2,
                        asn,
                    },
                }
            });
        prop_oneof![
            v4,
            (any::<u16>(), any::<u32>()).prop_map(|(s, n)| Pdu::EndOfData {
                version: 1,
                session: s,
                serial: n
            }),
            (any::<u16>(), any::<u32>()).prop_map(|(s, n)| Pdu::SerialNotify {
                version: 1,
                session: s,
                serial: n
            }),
            any::<u16>().prop_map(|s| Pdu::CacheResponse {
                version: 1,
                session: s
            }),
            (any::<u16>(), "[a-z ]{0,20}").prop_map(|(c, t)| Pdu::ErrorReport {
                version: 1,
                code: c,
                text: t
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(p in arb_pdu()) {
            let b = encode_pdu(&p);
            let (q, n) = decode_pdu(&b).unwrap().unwrap();
            prop_assert_eq!(n, b.len());
            prop_assert_eq!(q, p);
        }

        /// Arbitrary bytes: never a panic, never a length past the buffer.
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(Some((_, n))) = decode_pdu(&data) {
                prop_assert!(n <= data.len() && n >= HDR);
            }
        }

        /// A stream cut anywhere asks for more bytes instead of failing.
        #[test]
        fn partial_reads(p in arb_pdu(), cut in 0usize..40) {
            let b = encode_pdu(&p);
            let cut = cut.min(b.len() - 1);
            prop_assert_eq!(decode_pdu(&b[..cut]).unwrap(), None);
        }
    }
}
