//! [`FeatureWindows`]: the sampled packets of one interface, cut into feature
//! windows, plus the calm window classification compares an attack with.
//!
//! Pure: the capture thread feeds packets, the agent loop calls
//! [`FeatureWindows::rotate`] with its own clock and says whether an incident
//! is open. No sockets, no clock, no threads.
//!
//! Why this shape:
//! - Two extractors are swapped at every rotation (`live` and `prev`), so the
//!   window just finished stays readable: an incident confirmed a few ms after
//!   a rotation is classified on the previous window when the live one is
//!   still too thin ([`WindowConfig::min_packets`]).
//! - The calm baseline lags one window behind: a window that ends quietly
//!   becomes *pending*, and only the next quiet rotation promotes it. The
//!   window in which an attack began (before the detector confirmed it) is
//!   thus never taken for calm traffic; an incident discards the pending one.
//! - Only the interface's features and those of its heaviest destinations are
//!   kept for the calm window (a few tens of KiB), not a whole extractor.

use levee_packet::features::DecodeErrors;
use levee_packet::{DecodeError, Extractor, FeatureConfig, Features, PacketMeta};
use std::net::IpAddr;

/// Window parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowConfig {
    /// Window length, ns.
    pub window_ns: u64,
    /// Sampled packets the live window needs before it is classified instead
    /// of the previous one.
    pub min_packets: u64,
    /// Destinations whose calm features are kept.
    pub calm_targets: usize,
    pub features: FeatureConfig,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            window_ns: 1_000_000_000,
            min_packets: 64,
            calm_targets: 4,
            features: agent_feature_config(),
        }
    }
}

/// Smaller than the pcap analyser's defaults: an agent keeps two extractors
/// per interface and must stay within its memory budget (about 0.5 MiB each).
pub fn agent_feature_config() -> FeatureConfig {
    FeatureConfig {
        max_targets: 8,
        sample_size: 512,
        ..FeatureConfig::default()
    }
}

/// Features of a quiet window: the interface's and its heaviest destinations'.
#[derive(Debug, Clone)]
pub struct CalmWindow {
    pub interface: Features,
    pub targets: Vec<(IpAddr, Features)>,
}

impl CalmWindow {
    fn of(x: &Extractor, n: usize) -> CalmWindow {
        let mut targets: Vec<(IpAddr, Features)> =
            x.targets().map(|(ip, f)| (ip, f.clone())).collect();
        targets.sort_by_key(|(_, f)| std::cmp::Reverse(f.packets));
        targets.truncate(n);
        CalmWindow {
            interface: x.interface().clone(),
            targets,
        }
    }

    /// The calm features of `victim` when it was among the heaviest
    /// destinations, else the interface's.
    pub fn for_victim(&self, victim: Option<IpAddr>) -> &Features {
        victim
            .and_then(|v| self.targets.iter().find(|(ip, _)| *ip == v))
            .map_or(&self.interface, |(_, f)| f)
    }
}

/// The window chosen for classification.
#[derive(Debug)]
pub struct View<'a> {
    /// Features of the victim (when one destination has most of the packets)
    /// or of the whole interface.
    pub features: &'a Features,
    pub victim: Option<IpAddr>,
    /// Sampled packets of the whole window (all destinations).
    pub sampled_packets: u64,
    /// Estimated packets on the wire in the window (sampled x rate).
    pub scaled_packets: u64,
    /// Whether this is the live window (else the one before it).
    pub live: bool,
}

#[derive(Debug)]
struct Window {
    x: Extractor,
    start_ns: u64,
    scaled: u64,
}

/// One interface's feature windows.
#[derive(Debug)]
pub struct FeatureWindows {
    cfg: WindowConfig,
    live: Window,
    prev: Option<Window>,
    pending_calm: Option<CalmWindow>,
    calm: Option<CalmWindow>,
}

impl FeatureWindows {
    /// Windows starting at `now_ns`.
    pub fn new(cfg: WindowConfig, now_ns: u64) -> Self {
        let live = Window {
            x: Extractor::new(cfg.features.clone()),
            start_ns: now_ns,
            scaled: 0,
        };
        FeatureWindows {
            cfg,
            live,
            prev: None,
            pending_calm: None,
            calm: None,
        }
    }

    /// Adds one decoded sampled packet; `rate` is the sampling rate it was
    /// taken at.
    #[inline]
    pub fn observe(&mut self, ts_ns: u64, meta: &PacketMeta, rate: u32) {
        self.live.x.observe(ts_ns, meta);
        self.live.scaled = self.live.scaled.saturating_add(u64::from(rate.max(1)));
    }

    /// Counts a frame that did not decode.
    pub fn count_error(&mut self, e: &DecodeError) {
        self.live.x.count_error(e);
    }

    /// Decode failures in the live window.
    pub fn decode_errors(&self) -> &DecodeErrors {
        self.live.x.decode_errors()
    }

    /// Ends the live window if it is `window_ns` old. `quiet` says no
    /// incident is open (the window may become the calm baseline). Returns
    /// whether a rotation happened.
    pub fn rotate(&mut self, now_ns: u64, quiet: bool) -> bool {
        if now_ns.saturating_sub(self.live.start_ns) < self.cfg.window_ns {
            return false;
        }
        if quiet {
            let finished = CalmWindow::of(&self.live.x, self.cfg.calm_targets);
            if let Some(p) = self.pending_calm.replace(finished) {
                self.calm = Some(p);
            }
        } else {
            self.pending_calm = None;
        }
        let mut next = match self.prev.take() {
            Some(mut w) => {
                w.x.reset();
                w
            }
            None => Window {
                x: Extractor::new(self.cfg.features.clone()),
                start_ns: now_ns,
                scaled: 0,
            },
        };
        next.start_ns = now_ns;
        next.scaled = 0;
        self.prev = Some(std::mem::replace(&mut self.live, next));
        true
    }

    /// An incident just started: the pending calm window may hold the
    /// attack's first packets, so it is dropped.
    pub fn incident_started(&mut self) {
        self.pending_calm = None;
    }

    /// The calm baseline, if one quiet window has been promoted.
    pub fn calm(&self) -> Option<&CalmWindow> {
        self.calm.as_ref()
    }

    /// Sampled packets in the live window.
    pub fn live_packets(&self) -> u64 {
        self.live.x.interface().packets
    }

    /// The window to classify: the live one once it has `min_packets`, else
    /// the previous one if that has more; `None` when both are empty.
    pub fn view(&self) -> Option<View<'_>> {
        let live_n = self.live.x.interface().packets;
        let (w, live) = match &self.prev {
            Some(p) if live_n < self.cfg.min_packets && p.x.interface().packets > live_n => {
                (p, false)
            }
            _ => (&self.live, true),
        };
        let iface = w.x.interface();
        if iface.packets == 0 {
            return None;
        }
        // One destination with most of the packets is the victim: classify
        // its traffic alone, as `levee pcap analyze` does.
        let victim =
            w.x.top_target()
                .filter(|(_, f)| f.packets * 2 >= iface.packets);
        Some(View {
            features: victim.map_or(iface, |(_, f)| f),
            victim: victim.map(|(ip, _)| ip),
            sampled_packets: iface.packets,
            scaled_packets: w.scaled,
            live,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_packet::meta::{PayloadHead, TcpFlags, Transport};
    use levee_packet::Family;
    use std::net::Ipv4Addr;

    const S: u64 = 1_000_000_000;

    fn pkt(src: u32, dst: u32, protocol: u8, flags: u8, dport: u16) -> PacketMeta {
        let transport = if protocol == 6 {
            Transport::Tcp {
                src_port: 40_000 + (src % 20_000) as u16,
                dst_port: dport,
                flags: TcpFlags(flags),
            }
        } else {
            Transport::Udp {
                src_port: 40_000 + (src % 20_000) as u16,
                dst_port: dport,
            }
        };
        PacketMeta {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            protocol,
            transport,
            ip_len: 60,
            ttl: 64,
            fragment: None,
            payload_len: 0,
            payload_head: PayloadHead::default(),
            vlan: None,
        }
    }

    fn feed(w: &mut FeatureWindows, from_ns: u64, n: u64, f: impl Fn(u64) -> PacketMeta) {
        for i in 0..n {
            w.observe(from_ns + i, &f(i), 1);
        }
    }

    const VICTIM: u32 = 0x0a00_0002;

    #[test]
    fn calm_lags_one_window_and_incidents_discard_pending() {
        let mut w = FeatureWindows::new(WindowConfig::default(), 0);
        // Window 1 (calm): UDP to 53.
        feed(&mut w, 0, 100, |i| {
            pkt(0x0b00_0000 + i as u32, VICTIM, 17, 0, 53)
        });
        assert!(w.rotate(S, true));
        assert!(w.calm().is_none(), "the first quiet window is only pending");
        // Window 2 (calm): promoted window 1.
        feed(&mut w, S, 100, |i| {
            pkt(0x0b00_0000 + i as u32, VICTIM, 17, 0, 53)
        });
        assert!(!w.rotate(S + S / 2, true), "not a window old yet");
        assert!(w.rotate(2 * S, true));
        assert_eq!(w.calm().unwrap().interface.packets, 100);
        // Window 3: an attack starts; the incident drops the pending window 2.
        feed(&mut w, 2 * S, 300, |i| {
            pkt(0x0c00_0000 + i as u32, VICTIM, 6, 0x02, 80)
        });
        w.incident_started();
        assert!(w.rotate(3 * S, false));
        assert!(w.rotate(4 * S, true));
        // Window 4 became pending; the calm one is still window 1.
        let calm = w.calm().unwrap();
        assert_eq!(calm.interface.packets, 100);
        // A destination is tracked from its `admit_after`-th packet on.
        let admitted = 100 - (agent_feature_config().admit_after - 1);
        let victim = Some(IpAddr::V4(Ipv4Addr::from(VICTIM)));
        assert_eq!(calm.for_victim(victim).packets, admitted);
        assert_eq!(
            calm.for_victim(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
                .packets,
            100
        );
    }

    #[test]
    fn thin_live_window_falls_back_to_previous() {
        let mut w = FeatureWindows::new(WindowConfig::default(), 0);
        assert!(w.view().is_none());
        feed(&mut w, 0, 500, |i| {
            pkt(i as u32 * 7919, VICTIM, 6, 0x02, 80)
        });
        assert!(w.rotate(S, false));
        feed(&mut w, S, 10, |i| pkt(i as u32 * 7919, VICTIM, 6, 0x02, 80));
        let v = w.view().unwrap();
        assert!(!v.live);
        assert_eq!(v.sampled_packets, 500);
        assert_eq!(v.victim, Some(IpAddr::V4(Ipv4Addr::from(VICTIM))));
        feed(&mut w, S + 10, 100, |i| {
            pkt(i as u32 * 7919, VICTIM, 6, 0x02, 80)
        });
        let v = w.view().unwrap();
        assert!(v.live);
        assert_eq!(v.sampled_packets, 110);
    }

    #[test]
    fn scaled_counts_follow_the_sampling_rate() {
        let mut w = FeatureWindows::new(WindowConfig::default(), 0);
        for i in 0..100u64 {
            w.observe(
                i,
                &pkt(i as u32, VICTIM, 17, 0, 53),
                if i < 50 { 1 } else { 10 },
            );
        }
        let v = w.view().unwrap();
        assert_eq!(v.sampled_packets, 100);
        assert_eq!(v.scaled_packets, 50 + 500);
    }

    #[test]
    fn spread_traffic_has_no_victim() {
        let mut w = FeatureWindows::new(WindowConfig::default(), 0);
        feed(&mut w, 0, 400, |i| {
            pkt(0x0b00_0001, 0x0a00_0000 + (i % 4) as u32, 17, 0, 53)
        });
        let v = w.view().unwrap();
        assert_eq!(v.victim, None);
        assert_eq!(v.features.packets, 400);
        let c = levee_packet::classify(v.features, None, &Default::default()).unwrap();
        assert_ne!(c.family, Family::TrafficSpike);
    }
}
