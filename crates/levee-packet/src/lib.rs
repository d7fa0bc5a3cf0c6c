//! Levee's packet visibility core: what the packets of an attack say.
//!
//! Pure and synchronous: no sockets, no clock, no threads. The AF_PACKET
//! sampler, the agent wiring and the `levee pcap` command feed it bytes.
//!
//! Pipeline, one module per stage:
//! - [`mod@decode`]: one raw frame (Ethernet with 802.1Q/QinQ, MPLS, PPPoE; Linux
//!   cooked; loopback; raw IP) -> [`PacketMeta`], never panicking, no
//!   allocation.
//! - [`features`]: packets of a window -> bounded per-target and per-interface
//!   [`features::Features`]: protocol, TCP flag, length and TTL histograms,
//!   fragment share, top sources and ports (Space-Saving), distinct sources
//!   (HyperLogLog), source entropy, and a uniform packet sample.
//! - [`mod@classify`]: features of the attack window (optionally with a baseline
//!   window) -> [`Classification`]: family, confidence, fingerprint, spoofing
//!   estimate.
//! - [`pcap`]: pcap / pcapng files -> frames; [`mod@analyze`]: a file ->
//!   [`Analysis`] (`levee pcap analyze --json`).
//!
//! # Families
//!
//! The BRIEF's fixed list, plus `traffic_spike` for benign load. Rules are in
//! [`mod@classify`] (how vectors are weighed, multi-vector at two vectors of 20%
//! or more each) and [`classify::vectors`] (how packets become vectors).
//! Amplification families are UDP from the service's well-known source port
//! (DNS 53, NTP 123, memcached 11211, SSDP 1900, CLDAP 389, SNMP 161, chargen
//! 19); later IP fragments join the amplification vector whose first
//! fragments they follow. Confidence drops when the payload is not a response
//! of that service.
//!
//! **SYN-ACK reflection** (servers answering SYNs forged with the victim's
//! address, so the victim receives SYN-ACKs it never asked for) is reported as
//! `tcp_flag_abuse` with `variant: syn_ack_reflection`. It is not a
//! `syn_flood`: no SYN reaches the victim, SYN cookies do nothing, and the
//! sources are real servers. What it is, for the victim, is a flood of a flag
//! combination that is invalid outside a handshake the victim started, which
//! is what `tcp_flag_abuse` covers (xmas, null, stray FIN-ACK too), and the
//! mitigation is the same kind: drop the flag combination (the fingerprint's
//! `tcp_flags: ["SA"]` with its source ports), or conntrack's invalid state.
//!
//! **Benign spikes** (`traffic_spike`, no fingerprint, no mitigation): when no
//! attack vector carries 20% of the packets or bytes and established-flow TCP
//! weighs at least as much as any other vector. Established-flow TCP is
//! ACK / PSH-ACK / FIN-ACK traffic organised in flows (over the window, at
//! most one distinct source + source port per two packets), plus the SYNs and
//! SYN-ACKs of handshakes that complete (from sources that also send such
//! flows). A bulk transfer (iperf3) or many HTTP requests (wrk, with or
//! without keep-alive) look like that; spoofed or port-hopping ACK floods
//! don't (one packet per "flow"), nor do SYN floods (their sources never
//! complete a handshake). Limitation: an ACK flood from one host that keeps
//! one source port looks like a flow.
//!
//! **Fingerprints**: the narrowest header match covering at least 95% of the
//! vector's sampled packets; match semantics in [`classify::fingerprint`].
//! **Spoofing**: rule in [`classify::spoofing`].

pub mod analyze;
pub mod classify;
pub mod decode;
pub mod error;
pub mod features;
pub mod meta;
pub mod pcap;

pub use analyze::{
    analyze, analyze_bytes, analyze_path, top_sources, Analysis, AnalyzeConfig, Talker,
};
pub use classify::{
    classify, Classification, ClassifyConfig, Family, Fingerprint, SpoofingEstimate, Variant,
};
pub use decode::{decode, LinkType};
pub use error::{DecodeError, PcapError};
pub use features::{Extractor, FeatureConfig, Features};
pub use meta::{Fragment, IpProtocol, PacketMeta, TcpFlags, Transport};
