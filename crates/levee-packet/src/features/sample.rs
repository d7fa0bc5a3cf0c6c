//! A uniform, bounded sample of a window's packets ([`Reservoir`] of
//! [`Sample`]s): what fingerprints are fitted to and measured on, and where the
//! classifier looks for per-vector source and TTL structure.
//!
//! Reservoir sampling with Vitter/Li's "Algorithm L": after the reservoir fills,
//! it computes how many packets to skip before the next replacement, so the
//! per-packet cost is one comparison. The random generator is seeded, so the
//! same packets in the same order always give the same sample (replays are
//! reproducible).

use super::class::Class;
use crate::meta::{PacketMeta, Transport};

/// Whether a sampled packet was a fragment, and which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragKind {
    Whole,
    /// Offset 0 with more fragments: carries the transport header.
    First,
    /// Offset > 0: no transport header.
    Tail,
}

/// What the classifier keeps of one sampled packet (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Source address as an [`crate::meta::ip_key`].
    pub src: u128,
    pub ip_len: u16,
    /// Ports, meaningful when `has_ports`.
    pub src_port: u16,
    pub dst_port: u16,
    pub class: Class,
    pub protocol: u8,
    /// TCP flag byte, meaningful when `protocol` is TCP and `has_ports`.
    pub tcp_flags: u8,
    pub ttl: u8,
    /// ICMP type, meaningful when `has_icmp`.
    pub icmp_type: u8,
    pub frag: FragKind,
    pub has_ports: bool,
    pub has_icmp: bool,
    pub ipv6: bool,
}

impl Sample {
    pub fn new(m: &PacketMeta, class: Class, src_key: u128) -> Sample {
        let (src_port, dst_port, tcp_flags, has_ports) = match m.transport {
            Transport::Tcp {
                src_port,
                dst_port,
                flags,
            } => (src_port, dst_port, flags.0, true),
            Transport::Udp { src_port, dst_port } => (src_port, dst_port, 0, true),
            _ => (0, 0, 0, false),
        };
        let (icmp_type, has_icmp) = match m.transport {
            Transport::Icmp { kind, .. } => (kind, true),
            _ => (0, false),
        };
        let frag = match m.fragment {
            None => FragKind::Whole,
            Some(f) if f.offset == 0 => FragKind::First,
            Some(_) => FragKind::Tail,
        };
        Sample {
            src: src_key,
            ip_len: m.ip_len,
            src_port,
            dst_port,
            class,
            protocol: m.protocol,
            tcp_flags,
            ttl: m.ttl,
            icmp_type,
            frag,
            has_ports,
            has_icmp,
            ipv6: m.is_ipv6(),
        }
    }
}

/// xorshift64*: tiny, fast, and good enough to pick reservoir slots.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // A zero state would stay zero forever.
        Rng(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1), never 0 (it feeds `ln`).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// A uniform random sample of at most `capacity` items from a stream.
#[derive(Debug, Clone)]
pub struct Reservoir<T> {
    capacity: usize,
    items: Vec<T>,
    seen: u64,
    /// 1-based index of the next item to keep once the reservoir is full.
    next: u64,
    w: f64,
    rng: Rng,
    seed: u64,
}

impl<T: Copy> Reservoir<T> {
    pub fn new(capacity: usize, seed: u64) -> Self {
        Reservoir {
            capacity,
            items: Vec::with_capacity(capacity),
            seen: 0,
            next: 0,
            w: 1.0,
            rng: Rng::new(seed),
            seed,
        }
    }

    /// Offers the next stream item; `make` runs only when the item is kept,
    /// which for long streams is rarely.
    #[inline]
    pub fn offer(&mut self, make: impl FnOnce() -> T) {
        self.seen += 1;
        if self.items.len() < self.capacity {
            self.items.push(make());
            if self.items.len() == self.capacity {
                self.w = (self.rng.unit().ln() / self.capacity as f64).exp();
                self.schedule();
            }
        } else if self.seen == self.next && self.capacity > 0 {
            let slot = (self.rng.next_u64() % self.capacity as u64) as usize;
            if let Some(s) = self.items.get_mut(slot) {
                *s = make();
            }
            self.w *= (self.rng.unit().ln() / self.capacity as f64).exp();
            self.schedule();
        }
    }

    fn schedule(&mut self) {
        let skip = (self.rng.unit().ln() / (1.0 - self.w).ln()).floor();
        // w underflows after astronomically long streams; stop sampling then
        // rather than overflow.
        let skip = if skip.is_finite() && skip < 1e18 {
            skip as u64
        } else {
            u64::MAX / 2
        };
        self.next = self.seen.saturating_add(skip).saturating_add(1);
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Stream items offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the reservoir and restarts it with another seed, keeping the
    /// allocation.
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.clear();
    }

    /// Empties the reservoir and restarts the generator from its seed.
    pub fn clear(&mut self) {
        self.items.clear();
        self.seen = 0;
        self.next = 0;
        self.w = 1.0;
        self.rng = Rng::new(self.seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_stays_compact() {
        // 1024 samples per target must stay at 32 KiB.
        assert!(std::mem::size_of::<Sample>() <= 32);
    }

    #[test]
    fn keeps_everything_below_capacity() {
        let mut r = Reservoir::new(10, 1);
        for i in 0..7u32 {
            r.offer(|| i);
        }
        assert_eq!(r.items(), &[0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn sample_is_roughly_uniform() {
        // 100k items into 1000 slots: each tenth of the stream should hold
        // about 100 of them.
        let mut r = Reservoir::new(1000, 7);
        for i in 0..100_000u32 {
            r.offer(|| i);
        }
        assert_eq!(r.items().len(), 1000);
        let mut deciles = [0u32; 10];
        for &i in r.items() {
            deciles[(i / 10_000) as usize] += 1;
        }
        for d in deciles {
            assert!((60..=140).contains(&d), "{deciles:?}");
        }
    }

    #[test]
    fn same_seed_same_sample() {
        let run = || {
            let mut r = Reservoir::new(50, 99);
            for i in 0..10_000u32 {
                r.offer(|| i);
            }
            r.items().to_vec()
        };
        assert_eq!(run(), run());
    }
}
