//! Attack family names ([`Family`], the BRIEF's fixed snake_case list plus
//! `traffic_spike` for benign load) and the finer [`Variant`] some vectors add.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of traffic an incident is. Serialises to the BRIEF's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    SynFlood,
    AckFlood,
    RstFlood,
    TcpFlagAbuse,
    UdpFlood,
    IcmpFlood,
    IpFragmentFlood,
    DnsAmplification,
    NtpAmplification,
    MemcachedAmplification,
    SsdpAmplification,
    CldapAmplification,
    SnmpAmplification,
    ChargenAmplification,
    UdpReflectionOther,
    IpProtocolFlood,
    /// In the BRIEF's list, but needs HTTP visibility: never produced from
    /// packet headers by this crate.
    HttpFlood,
    MultiVector,
    /// Legitimate load above the baseline: no mitigation.
    TrafficSpike,
}

impl Family {
    pub const ALL: [Family; 19] = [
        Family::SynFlood,
        Family::AckFlood,
        Family::RstFlood,
        Family::TcpFlagAbuse,
        Family::UdpFlood,
        Family::IcmpFlood,
        Family::IpFragmentFlood,
        Family::DnsAmplification,
        Family::NtpAmplification,
        Family::MemcachedAmplification,
        Family::SsdpAmplification,
        Family::CldapAmplification,
        Family::SnmpAmplification,
        Family::ChargenAmplification,
        Family::UdpReflectionOther,
        Family::IpProtocolFlood,
        Family::HttpFlood,
        Family::MultiVector,
        Family::TrafficSpike,
    ];

    /// The snake_case name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::SynFlood => "syn_flood",
            Family::AckFlood => "ack_flood",
            Family::RstFlood => "rst_flood",
            Family::TcpFlagAbuse => "tcp_flag_abuse",
            Family::UdpFlood => "udp_flood",
            Family::IcmpFlood => "icmp_flood",
            Family::IpFragmentFlood => "ip_fragment_flood",
            Family::DnsAmplification => "dns_amplification",
            Family::NtpAmplification => "ntp_amplification",
            Family::MemcachedAmplification => "memcached_amplification",
            Family::SsdpAmplification => "ssdp_amplification",
            Family::CldapAmplification => "cldap_amplification",
            Family::SnmpAmplification => "snmp_amplification",
            Family::ChargenAmplification => "chargen_amplification",
            Family::UdpReflectionOther => "udp_reflection_other",
            Family::IpProtocolFlood => "ip_protocol_flood",
            Family::HttpFlood => "http_flood",
            Family::MultiVector => "multi_vector",
            Family::TrafficSpike => "traffic_spike",
        }
    }

    /// Is this an attack (anything but `traffic_spike`)?
    pub fn is_attack(self) -> bool {
        self != Family::TrafficSpike
    }

    /// Reflection families: the sources are real servers answering requests
    /// forged with the victim's address.
    pub fn is_reflection(self) -> bool {
        matches!(
            self,
            Family::DnsAmplification
                | Family::NtpAmplification
                | Family::MemcachedAmplification
                | Family::SsdpAmplification
                | Family::CldapAmplification
                | Family::SnmpAmplification
                | Family::ChargenAmplification
                | Family::UdpReflectionOther
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finer name for vectors the BRIEF's fixed list folds into a broader family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// SYN-ACKs the victim never asked for: servers answering SYNs forged with
    /// the victim's address. Family `tcp_flag_abuse` (see the crate docs).
    SynAckReflection,
    /// FIN+ACK segments outside any connection. Family `tcp_flag_abuse`.
    FinFlood,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::SynAckReflection => "syn_ack_reflection",
            Variant::FinFlood => "fin_flood",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for f in Family::ALL {
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
        for v in [Variant::SynAckReflection, Variant::FinFlood] {
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
    }
}
