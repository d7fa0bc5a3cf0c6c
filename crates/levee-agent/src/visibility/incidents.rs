//! [`IncidentMemory`]: per open incident, the classification last reported
//! and the confirmation of a change of vector.
//!
//! Pure. A re-evaluation whose family differs from the reported one is a
//! *candidate*; [`CONFIRM_UPDATES`] consecutive re-evaluations agreeing on it
//! make it the reported family and yield [`Verdict::Changed`]. Until then
//! updates keep carrying the reported classification, so consumers
//! (mitigation, dashboards) never see a family flicker when a secondary
//! vector hovers around the multi-vector threshold.

use levee_model::{EventBody, IncidentInfo};
use std::collections::HashMap;

/// Re-evaluations that must agree before a new family is reported.
pub const CONFIRM_UPDATES: u32 = 2;

/// Something with an attack family name.
pub trait HasFamily {
    fn family(&self) -> &str;
}

/// The outcome of one re-evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The reported family stands (possibly refreshed).
    Same,
    /// A new family is now reported; it replaced `previous`.
    Changed { previous: String },
}

#[derive(Debug)]
struct Entry<T> {
    /// The reported classification (`None` until one was possible).
    stable: Option<T>,
    /// The incident's pcap file, if one was written.
    pcap: Option<String>,
    /// A differing family and how many consecutive updates agreed on it.
    candidate: Option<(String, u32)>,
}

/// The `incident_vector_changed` event of `info`, which now carries the
/// new classification, after `previous`.
pub fn vector_changed(info: &IncidentInfo, previous: String) -> EventBody {
    EventBody::IncidentVectorChanged {
        incident_id: info.incident_id.clone(),
        target: info.target.clone(),
        previous_family: previous,
        family: info.family.clone().unwrap_or_default(),
        confidence: info.confidence,
        fingerprint: info.fingerprint.clone(),
    }
}

/// The open incidents' classification memory.
#[derive(Debug)]
pub struct IncidentMemory<T> {
    open: HashMap<String, Entry<T>>,
}

impl<T> Default for IncidentMemory<T> {
    fn default() -> Self {
        IncidentMemory {
            open: HashMap::new(),
        }
    }
}

impl<T: HasFamily + Clone> IncidentMemory<T> {
    /// No incident is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A new incident with its first classification, if any.
    pub fn start(&mut self, id: &str, first: Option<T>, pcap: Option<String>) {
        self.open.insert(
            id.to_string(),
            Entry {
                stable: first,
                pcap,
                candidate: None,
            },
        );
    }

    /// A re-evaluation (`None` when there were no packets to look at).
    /// Unknown incidents (started before the sampler) are adopted.
    pub fn update(&mut self, id: &str, now: Option<T>) -> Verdict {
        let e = self.open.entry(id.to_string()).or_insert(Entry {
            stable: None,
            pcap: None,
            candidate: None,
        });
        let Some(now) = now else {
            return Verdict::Same;
        };
        let Some(stable) = &e.stable else {
            e.stable = Some(now);
            return Verdict::Same;
        };
        if stable.family() == now.family() {
            e.candidate = None;
            e.stable = Some(now);
            return Verdict::Same;
        }
        let streak = match &e.candidate {
            Some((f, n)) if f == now.family() => n + 1,
            _ => 1,
        };
        if streak >= CONFIRM_UPDATES {
            let previous = stable.family().to_string();
            e.candidate = None;
            e.stable = Some(now);
            Verdict::Changed { previous }
        } else {
            e.candidate = Some((now.family().to_string(), streak));
            Verdict::Same
        }
    }

    /// The reported classification and pcap of an open incident.
    pub fn current(&self, id: &str) -> Option<(&T, &Option<String>)> {
        let e = self.open.get(id)?;
        Some((e.stable.as_ref()?, &e.pcap))
    }

    /// Forgets a resolved incident; returns what was reported last.
    pub fn finish(&mut self, id: &str) -> Option<(T, Option<String>)> {
        let e = self.open.remove(id)?;
        Some((e.stable?, e.pcap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl HasFamily for &'static str {
        fn family(&self) -> &str {
            self
        }
    }

    #[test]
    fn a_change_needs_two_agreeing_updates() {
        let mut m = IncidentMemory::default();
        m.start("a", Some("syn_flood"), Some("x.pcap".into()));
        assert!(!m.is_empty());
        assert_eq!(m.update("a", Some("syn_flood")), Verdict::Same);
        // One stray window: nothing changes.
        assert_eq!(m.update("a", Some("multi_vector")), Verdict::Same);
        assert_eq!(m.current("a").unwrap().0, &"syn_flood");
        assert_eq!(m.update("a", Some("syn_flood")), Verdict::Same);
        // Two in a row: confirmed.
        assert_eq!(m.update("a", Some("multi_vector")), Verdict::Same);
        assert_eq!(
            m.update("a", Some("multi_vector")),
            Verdict::Changed {
                previous: "syn_flood".into()
            }
        );
        assert_eq!(m.current("a").unwrap().0, &"multi_vector");
        // An empty window changes nothing.
        assert_eq!(m.update("a", None), Verdict::Same);
        let (last, pcap) = m.finish("a").unwrap();
        assert_eq!(last, "multi_vector");
        assert_eq!(pcap.as_deref(), Some("x.pcap"));
        assert!(m.is_empty());
    }

    #[test]
    fn alternating_candidates_do_not_accumulate() {
        let mut m = IncidentMemory::default();
        m.start("a", Some("udp_flood"), None);
        for _ in 0..5 {
            assert_eq!(m.update("a", Some("dns_amplification")), Verdict::Same);
            assert_eq!(m.update("a", Some("ntp_amplification")), Verdict::Same);
        }
        assert_eq!(m.current("a").unwrap().0, &"udp_flood");
    }

    #[test]
    fn unclassified_start_adopts_the_first_classification() {
        let mut m = IncidentMemory::default();
        m.start("a", None, None);
        assert!(m.current("a").is_none());
        assert_eq!(m.update("a", Some("icmp_flood")), Verdict::Same);
        assert_eq!(m.current("a").unwrap().0, &"icmp_flood");
        // Unknown ids are adopted rather than dropped.
        assert_eq!(m.update("b", Some("syn_flood")), Verdict::Same);
        assert!(m.finish("b").is_some());
        assert!(m.finish("zzz").is_none());
    }
}
