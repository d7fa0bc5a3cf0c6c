//! The `[bgp]` configuration (agent) and a tenant's BGP settings (server):
//! serde types with `deny_unknown_fields`, rates as operators write them
//! (`"100Mbps"`, `"2Gbps"`, or bits per second), and `validate`, which
//! names every problem by key.

use crate::escalate::{Level, Thresholds};
use crate::rule::Community;
use ipnet::IpNet;
use levee_mitigate::config::duration_str;
use levee_packet::Family;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A rate in bits per second, written `"100Mbps"`, `"2.5Gbps"`, `"800kbps"`
/// or as a plain number of bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Bps(pub u64);

impl Bps {
    pub fn parse(s: &str) -> Result<Bps, String> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let body = lower
            .strip_suffix("bps")
            .or_else(|| lower.strip_suffix("bit/s"))
            .unwrap_or(&lower);
        let (num, mult) = match body.chars().last() {
            Some('k') => (&body[..body.len() - 1], 1e3),
            Some('m') => (&body[..body.len() - 1], 1e6),
            Some('g') => (&body[..body.len() - 1], 1e9),
            Some('t') => (&body[..body.len() - 1], 1e12),
            _ => (body, 1.0),
        };
        match num.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Bps((v * mult).round() as u64)),
            _ => Err(format!(
                "invalid rate {s:?}: write e.g. \"100Mbps\", \"2Gbps\" or bits per second"
            )),
        }
    }
}

impl std::fmt::Display for Bps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0 as f64;
        for (d, u) in [(1e12, "Tbps"), (1e9, "Gbps"), (1e6, "Mbps"), (1e3, "kbps")] {
            if v >= d {
                return write!(f, "{}{u}", (v / d * 1000.0).round() / 1000.0);
            }
        }
        write!(f, "{}bps", self.0)
    }
}

impl Serialize for Bps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Bps(n)),
            Raw::S(s) => Bps::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Escalation thresholds; each unset key falls back to the tenant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdOverrides {
    pub rate_limit: Option<Bps>,
    pub discard: Option<Bps>,
    pub rtbh: Option<Bps>,
    pub divert: Option<Bps>,
}

/// Level thresholds in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdConfig {
    /// Level 1: FlowSpec rate-limit.
    pub rate_limit: Bps,
    /// Level 2: FlowSpec discard.
    pub discard: Bps,
    /// Level 3: RTBH.
    pub rtbh: Bps,
    /// Level 4: scrubbing diversion.
    pub divert: Bps,
}

impl Default for ThresholdConfig {
    fn default() -> Self {
        ThresholdConfig {
            rate_limit: Bps(100_000_000),
            discard: Bps(500_000_000),
            rtbh: Bps(2_000_000_000),
            divert: Bps(5_000_000_000),
        }
    }
}

/// RTBH announcements.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtbhConfig {
    /// Next hop of black hole routes (the upstream's discard address);
    /// default 192.0.2.1 (IPv4) / 100::1 (IPv6, RFC 6666 discard prefix).
    pub next_hop: Option<IpAddr>,
    pub next_hop6: Option<IpAddr>,
    /// Communities added to 65535:666 (the upstream's own blackhole community).
    pub communities: Vec<Community>,
}

/// Where ROAs come from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpkiConfig {
    /// A VRP JSON file (rpki-client `-j`, stayrtr's input).
    pub roa_file: Option<PathBuf>,
    /// An RTR cache (RFC 8210), e.g. "127.0.0.1:8282" (stayrtr, routinator).
    pub rtr: Option<SocketAddr>,
    /// How often to reload the ROAs; default 10m.
    #[serde(with = "opt_duration")]
    pub refresh: Option<Duration>,
}

mod opt_duration {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration_str::serialize(d, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration_str::deserialize(d).map(Some)
    }
}

/// Which BGP speaker announces the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerKind {
    #[default]
    Gobgp,
    Exabgp,
    Bird,
    Frr,
}

/// Speaker adapter settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeakerConfig {
    pub kind: SpeakerKind,
    /// GoBGP: the `gobgp` CLI and gobgpd's gRPC API address.
    pub gobgp: PathBuf,
    pub gobgp_api: Option<SocketAddr>,
    /// ExaBGP: the named pipe its `process` reads commands from.
    pub exabgp_pipe: PathBuf,
    /// BIRD: `birdc`, its control socket, and the directory of the
    /// generated include files.
    pub birdc: PathBuf,
    pub bird_socket: Option<PathBuf>,
    pub bird_dir: PathBuf,
    /// FRR: `vtysh`, the directory of the daemons' vty sockets (vtysh's
    /// `--vty_socket`; default FRR's own, `/var/run/frr`) and the local AS
    /// of `router bgp`.
    pub vtysh: PathBuf,
    pub frr_vty_socket: Option<PathBuf>,
    pub frr_asn: Option<u32>,
    /// Run the speaker's CLI inside this network namespace (`ip netns exec`).
    pub netns: Option<String>,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            kind: SpeakerKind::Gobgp,
            gobgp: "gobgp".into(),
            gobgp_api: None,
            exabgp_pipe: "/run/levee/exabgp.cmd".into(),
            birdc: "birdc".into(),
            bird_socket: None,
            bird_dir: "/etc/bird/levee".into(),
            vtysh: "vtysh".into(),
            frr_vty_socket: None,
            frr_asn: None,
            netns: None,
        }
    }
}

/// `[bgp]`: network mitigation settings (one tenant's, on the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BgpConfig {
    /// Announce rules for incidents. Off by default.
    pub enabled: bool,
    /// The tenant's AS (origin of its prefixes; RPKI is checked for it).
    pub origin_as: u32,
    /// The tenant's own prefixes: nothing outside them is ever announced.
    pub prefixes: Vec<IpNet>,
    /// Rule lifetime, refreshed while the attack continues.
    #[serde(with = "duration_str")]
    pub ttl: Duration,
    /// Most rules live at once; more are refused with an event.
    pub max_rules: usize,
    /// Level 1's limit in bits per second; default: the level 1 threshold.
    pub rate_limit: Option<Bps>,
    /// Prefix length diverted to scrubbing (providers want /24, /48).
    pub divert_len_v4: u8,
    pub divert_len_v6: u8,
    /// The hash-chained audit log; default `<state_dir>/bgp-audit.jsonl`.
    pub audit_file: Option<PathBuf>,
    pub thresholds: ThresholdConfig,
    /// Per attack family overrides of the thresholds.
    pub profiles: BTreeMap<Family, ThresholdOverrides>,
    pub rtbh: RtbhConfig,
    pub rpki: RpkiConfig,
    pub speaker: SpeakerConfig,
    pub scrubbing: ScrubbingConfig,
}

/// `[bgp.scrubbing]`: level 4, diversion to a scrubbing provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrubbingConfig {
    /// A providers file (`[[providers]]`, see docs/providers.md).
    pub providers_file: Option<PathBuf>,
    /// The provider (its `name` in that file) that diverts the attacked
    /// prefix: Cloudflare Magic Transit, OVH VAC or AWS Shield. Without
    /// one, level 4 is refused with an event saying so.
    pub provider: Option<String>,
}

impl Default for BgpConfig {
    fn default() -> Self {
        BgpConfig {
            enabled: false,
            origin_as: 0,
            prefixes: Vec::new(),
            ttl: Duration::from_secs(300),
            max_rules: 200,
            rate_limit: None,
            divert_len_v4: 24,
            divert_len_v6: 48,
            audit_file: None,
            thresholds: ThresholdConfig::default(),
            profiles: BTreeMap::new(),
            rtbh: RtbhConfig::default(),
            rpki: RpkiConfig::default(),
            speaker: SpeakerConfig::default(),
            scrubbing: ScrubbingConfig::default(),
        }
    }
}

impl BgpConfig {
    /// Thresholds for an attack family (the profile's overrides, else the
    /// tenant's).
    pub fn thresholds_for(&self, family: Option<Family>) -> Thresholds {
        let t = self.thresholds;
        let o = family
            .and_then(|f| self.profiles.get(&f))
            .copied()
            .unwrap_or_default();
        Thresholds {
            levels: [
                (Level::RateLimit, o.rate_limit.unwrap_or(t.rate_limit).0),
                (Level::Discard, o.discard.unwrap_or(t.discard).0),
                (Level::Rtbh, o.rtbh.unwrap_or(t.rtbh).0),
                (Level::Divert, o.divert.unwrap_or(t.divert).0),
            ],
        }
    }

    /// Level 1's limit in bytes per second.
    pub fn rate_limit_bytes(&self) -> u64 {
        self.rate_limit.unwrap_or(self.thresholds.rate_limit).0 / 8
    }

    /// Every problem, each naming its key under `prefix` (e.g. `bgp`).
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut p = Vec::new();
        if !self.enabled {
            return p;
        }
        if self.origin_as == 0 {
            p.push(format!("{prefix}.origin_as: set the AS that originates your prefixes (RPKI is checked for it)"));
        }
        if self.prefixes.is_empty() {
            p.push(format!(
                "{prefix}.prefixes: list your own prefixes; nothing outside them is announced"
            ));
        }
        if self.max_rules == 0 {
            p.push(format!("{prefix}.max_rules: must be at least 1"));
        }
        if self.ttl < Duration::from_secs(1) || self.ttl > Duration::from_secs(7 * 86_400) {
            p.push(format!(
                "{prefix}.ttl: {} is outside 1s..7d",
                humantime::format_duration(self.ttl)
            ));
        }
        if self.rpki.roa_file.is_none() && self.rpki.rtr.is_none() {
            p.push(format!(
                "{prefix}.rpki: set roa_file (rpki-client JSON) or rtr (an RTR cache address); announcements are checked against ROAs"
            ));
        }
        if self.divert_len_v4 > 32 || self.divert_len_v6 > 128 {
            p.push(format!(
                "{prefix}.divert_len_v4/divert_len_v6: at most 32 / 128"
            ));
        }
        let mut check = |key: String, t: Thresholds| {
            let v: Vec<u64> = t.levels.iter().map(|l| l.1).collect();
            if v.windows(2).any(|w| w[0] > w[1]) {
                p.push(format!("{key}: thresholds must grow with the level (rate_limit <= discard <= rtbh <= divert)"));
            }
        };
        check(format!("{prefix}.thresholds"), self.thresholds_for(None));
        for f in self.profiles.keys() {
            check(
                format!("{prefix}.profiles.{f}"),
                self.thresholds_for(Some(*f)),
            );
        }
        if self.speaker.kind == SpeakerKind::Frr && self.speaker.frr_asn.is_none() {
            p.push(format!("{prefix}.speaker.frr_asn: the AS of FRR's `router bgp` (needed to export RTBH routes)"));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(Bps::parse("100Mbps"), Ok(Bps(100_000_000)));
        assert_eq!(Bps::parse("2.5Gbps"), Ok(Bps(2_500_000_000)));
        assert_eq!(Bps::parse("800k"), Ok(Bps(800_000)));
        assert_eq!(Bps::parse("12345"), Ok(Bps(12345)));
        assert!(Bps::parse("fast").unwrap_err().contains("100Mbps"));
        assert_eq!(Bps(2_000_000_000).to_string(), "2Gbps");
    }

    #[test]
    fn profiles_override_thresholds() {
        let c: BgpConfig = toml::from_str(
            "enabled = true\norigin_as = 64500\nprefixes = [\"203.0.113.0/24\"]\n[rpki]\nroa_file = \"r.json\"\n[profiles.syn_flood]\ndiscard = \"200Mbps\"\n",
        )
        .unwrap();
        assert!(c.validate("bgp").is_empty(), "{:?}", c.validate("bgp"));
        let t = c.thresholds_for(Some(Family::SynFlood));
        assert_eq!(t.levels[1], (Level::Discard, 200_000_000));
        assert_eq!(
            c.thresholds_for(None).levels[1],
            (Level::Discard, 500_000_000)
        );
        assert_eq!(c.rate_limit_bytes(), 12_500_000);
    }

    #[test]
    fn problems_name_keys() {
        let c: BgpConfig =
            toml::from_str("enabled = true\n[thresholds]\ndiscard = \"1Mbps\"\n").unwrap();
        let p = c.validate("bgp").join("\n");
        for k in [
            "bgp.origin_as",
            "bgp.prefixes",
            "bgp.rpki",
            "bgp.thresholds",
        ] {
            assert!(p.contains(k), "{k} in {p}");
        }
        let e = toml::from_str::<BgpConfig>("enabeld = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("enabeld"), "{e}");
    }
}
