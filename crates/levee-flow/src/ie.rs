//! Information elements: which NetFlow v9 field types / IPFIX information
//! elements (IANA registry "IPFIX Information Elements"; v9 types 1-127 are
//! the same numbers, RFC 3954 section 8) fill which part of a
//! [`crate::FlowRecord`], and the [`Act`] each template field is compiled to.
//!
//! Everything not listed is skipped by length. Enterprise-specific elements
//! (RFC 7011 section 3.2, PEN != 0) are skipped too: no vendor element is
//! needed for detection.

/// What to do with one field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Skip,
    SrcV4,
    DstV4,
    SrcV6,
    DstV6,
    SrcPort,
    DstPort,
    Protocol,
    TcpFlags,
    Tos,
    /// octetDeltaCount (1).
    Bytes,
    /// packetDeltaCount (2).
    Packets,
    /// octetTotalCount (85): used when no delta count is present.
    BytesTotal,
    /// packetTotalCount (86).
    PacketsTotal,
    InIf,
    OutIf,
    IpVersion,
    /// flowStartSysUpTime (22) / flowEndSysUpTime (21): ms since boot.
    StartUptime,
    EndUptime,
    StartSeconds,
    EndSeconds,
    StartMillis,
    EndMillis,
    /// samplingInterval (34, RFC 7270 deprecated but what v9 sends).
    SamplingInterval,
    /// samplerRandomInterval (50): "1 out of N" of a random sampler.
    SamplerRandomInterval,
    /// samplerId (48) / v9 FLOW_SAMPLER_ID.
    SamplerId,
    /// selectorId (302, RFC 5477).
    SelectorId,
    /// samplingPacketInterval (305) / samplingPacketSpace (306): systematic
    /// count-based sampling (RFC 5476 section 6.5.2.1).
    PacketInterval,
    PacketSpace,
    /// samplingSize (309) / samplingPopulation (310): random n-out-of-N.
    SamplingSize,
    SamplingPopulation,
}

/// The act for an IANA (enterprise 0) element id.
pub fn act_of(id: u16) -> Act {
    match id {
        1 => Act::Bytes,
        2 => Act::Packets,
        4 => Act::Protocol,
        5 => Act::Tos,
        6 => Act::TcpFlags,
        7 | 180 | 182 => Act::SrcPort,
        8 => Act::SrcV4,
        10 => Act::InIf,
        11 | 181 | 183 => Act::DstPort,
        12 => Act::DstV4,
        14 => Act::OutIf,
        21 => Act::EndUptime,
        22 => Act::StartUptime,
        27 => Act::SrcV6,
        28 => Act::DstV6,
        34 => Act::SamplingInterval,
        48 => Act::SamplerId,
        50 => Act::SamplerRandomInterval,
        60 => Act::IpVersion,
        85 => Act::BytesTotal,
        86 => Act::PacketsTotal,
        150 => Act::StartSeconds,
        151 => Act::EndSeconds,
        152 => Act::StartMillis,
        153 => Act::EndMillis,
        302 => Act::SelectorId,
        305 => Act::PacketInterval,
        306 => Act::PacketSpace,
        309 => Act::SamplingSize,
        310 => Act::SamplingPopulation,
        _ => Act::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_elements_are_mapped() {
        assert_eq!(act_of(8), Act::SrcV4);
        assert_eq!(act_of(28), Act::DstV6);
        assert_eq!(act_of(2), Act::Packets);
        assert_eq!(act_of(182), Act::SrcPort);
        assert_eq!(act_of(9999), Act::Skip);
    }
}
