//! The compact baseline window of per-IP and per-prefix targets
//! ([`CompactWindow`]): the same sliding window of per-second values and the
//! same nearest-rank p99 as [`crate::window::BaselineWindow`], for several
//! metrics at once, in 12 bits per value.
//!
//! Why: flow mode keeps a baseline for every IP of the monitored networks.
//! A /16 is 65,536 IPs x 6 metrics x 300 seconds; as `f64` that is 943 MB,
//! as 12-bit codes 177 MB (the budget is 256 MB).
//!
//! Values are stored as logarithmic codes ([`encode`]): 0 is exactly 0;
//! codes 1..=4095 cover 0.01 to 1e14 in steps of 0.9%, so a stored value is
//! within 0.45% of the original. The order of codes is the order of values,
//! so the p99 of the codes is the code of the p99.
//!
//! All metrics of a target complete their seconds together (they come from
//! the same ticks), so one ring holds `lanes` values per second.

/// Smallest non-zero value represented (code 1).
const V0: f64 = 0.01;
/// Largest code.
pub const MAX_CODE: u16 = 4095;
/// ln of the ratio between consecutive codes: 1e16 range over 4094 steps.
const LN_STEP: f64 = 36.841_361_487_904_734 / 4094.0; // ln(1e14 / 0.01) / 4094

/// The code of a value (non-finite and negative values are 0).
#[inline]
pub fn encode(v: f64) -> u16 {
    if !(v.is_finite() && v > 0.0) {
        return 0;
    }
    let c = 1.0 + ((v / V0).ln() / LN_STEP).round();
    c.clamp(1.0, f64::from(MAX_CODE)) as u16
}

/// The value a code stands for.
#[inline]
pub fn decode(code: u16) -> f64 {
    if code == 0 {
        0.0
    } else {
        V0 * (f64::from(code.min(MAX_CODE) - 1) * LN_STEP).exp()
    }
}

/// A ring of `capacity` seconds x `lanes` values, 12 bits each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactWindow {
    lanes: usize,
    capacity: usize,
    /// Packed codes: value i occupies bits 12i..12i+12.
    bits: Box<[u8]>,
    /// Index of the oldest second.
    head: usize,
    len: usize,
    /// Seconds ever accepted (the warm-up counter), restored ones included.
    total: u64,
}

impl CompactWindow {
    /// A window already holding `zeros` seconds of zeros (at most
    /// `capacity`) and counting `total` seconds learnt.
    pub fn new(lanes: usize, capacity: usize, zeros: usize, total: u64) -> Self {
        let capacity = capacity.max(1);
        let n = lanes * capacity;
        CompactWindow {
            lanes,
            capacity,
            bits: vec![0u8; (n * 3).div_ceil(2)].into_boxed_slice(),
            head: 0,
            len: zeros.min(capacity),
            total: total.max(zeros.min(capacity) as u64),
        }
    }

    /// Bytes of heap memory held.
    pub fn heap_bytes(&self) -> usize {
        self.bits.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn lanes(&self) -> usize {
        self.lanes
    }

    #[inline]
    fn get_raw(&self, i: usize) -> u16 {
        let bit = i * 12;
        let byte = bit / 8;
        let pair =
            u16::from(self.bits[byte]) | (u16::from(*self.bits.get(byte + 1).unwrap_or(&0)) << 8);
        (pair >> (bit % 8)) & 0x0fff
    }

    #[inline]
    fn set_raw(&mut self, i: usize, code: u16) {
        let bit = i * 12;
        let byte = bit / 8;
        let shift = bit % 8;
        let mask: u16 = 0x0fff << shift;
        let code = (code & 0x0fff) << shift;
        let lo = (u16::from(self.bits[byte]) & !mask) | code;
        self.bits[byte] = lo as u8;
        if let Some(b) = self.bits.get_mut(byte + 1) {
            *b = (((u16::from(*b) << 8) & !mask | code) >> 8) as u8;
        }
    }

    /// Code of lane `lane` of the `age`-th oldest second held.
    #[inline]
    pub fn code(&self, age: usize, lane: usize) -> u16 {
        let slot = (self.head + age) % self.capacity;
        self.get_raw(slot * self.lanes + lane)
    }

    /// Appends one second (one code per lane), dropping the oldest when full.
    pub fn push(&mut self, codes: &[u16]) {
        let slot = if self.len == self.capacity {
            let s = self.head;
            self.head = (self.head + 1) % self.capacity;
            s
        } else {
            let s = (self.head + self.len) % self.capacity;
            self.len += 1;
            s
        };
        for lane in 0..self.lanes {
            let c = codes.get(lane).copied().unwrap_or(0);
            self.set_raw(slot * self.lanes + lane, c);
        }
        self.total += 1;
    }

    /// Nearest-rank percentile `q` (0..=1) of one lane, as a code; `None`
    /// when empty. `scratch` is reused between calls.
    pub fn percentile_code(&self, lane: usize, q: f64, scratch: &mut Vec<u16>) -> Option<u16> {
        if self.len == 0 {
            return None;
        }
        scratch.clear();
        scratch.extend((0..self.len).map(|age| self.code(age, lane)));
        let rank = ((q * self.len as f64).ceil() as usize).clamp(1, self.len);
        let (_, nth, _) = scratch.select_nth_unstable(rank - 1);
        Some(*nth)
    }

    /// Nearest-rank percentile `q` of every lane at once, into `out` (one
    /// code per lane; 0 when empty). The rank is near the top for a p99, so
    /// one pass keeps the largest few codes of each lane in a small sorted
    /// buffer instead of sorting the window; larger ranks fall back to
    /// [`CompactWindow::percentile_code`].
    pub fn percentile_codes(&self, q: f64, out: &mut [u16], scratch: &mut Vec<u16>) {
        const SMALL: usize = 16;
        if self.len == 0 {
            out.iter_mut().for_each(|c| *c = 0);
            return;
        }
        let rank = ((q * self.len as f64).ceil() as usize).clamp(1, self.len);
        // The rank-th smallest is the k-th largest.
        let k = self.len - rank + 1;
        let lanes = self.lanes.min(out.len());
        if k > SMALL {
            for (lane, o) in out.iter_mut().enumerate().take(lanes) {
                *o = self.percentile_code(lane, q, scratch).unwrap_or(0);
            }
            return;
        }
        // tops[lane] holds the k largest codes seen, descending.
        scratch.clear();
        scratch.resize(lanes * k, 0);
        let mut filled = 0usize;
        for age in 0..self.len {
            for lane in 0..lanes {
                let c = self.code(age, lane);
                let top = &mut scratch[lane * k..(lane + 1) * k];
                let n = filled.min(k);
                if n == k && c <= top[k - 1] {
                    continue;
                }
                // Insert c keeping the order, dropping the smallest when full.
                let mut i = if n < k { n } else { k - 1 };
                while i > 0 && top[i - 1] < c {
                    top[i] = top[i - 1];
                    i -= 1;
                }
                top[i] = c;
            }
            filled += 1;
        }
        for (lane, o) in out.iter_mut().enumerate().take(lanes) {
            *o = scratch[lane * k + k - 1];
        }
    }

    /// The codes, oldest second first, lane by lane within a second.
    pub fn codes(&self) -> Vec<u16> {
        let mut v = Vec::with_capacity(self.len * self.lanes);
        for age in 0..self.len {
            for lane in 0..self.lanes {
                v.push(self.code(age, lane));
            }
        }
        v
    }

    /// Rebuilds a window from [`CompactWindow::codes`], keeping the newest
    /// `capacity` seconds.
    pub fn restore(lanes: usize, capacity: usize, codes: &[u16], total: u64) -> Self {
        let mut w = CompactWindow::new(lanes, capacity, 0, 0);
        if let Some(seconds) = codes.len().checked_div(lanes) {
            let skip = seconds.saturating_sub(w.capacity);
            for s in skip..seconds {
                w.push(&codes[s * lanes..(s + 1) * lanes]);
            }
        }
        w.total = total.max(w.len as u64);
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_monotone_and_precise() {
        assert_eq!(encode(0.0), 0);
        assert_eq!(encode(-3.0), 0);
        assert_eq!(encode(f64::NAN), 0);
        assert_eq!(decode(0), 0.0);
        let mut last = 0;
        for v in [
            0.01, 0.5, 1.0, 2.0, 999.0, 2_000.0, 150_000.0, 2e7, 1e9, 1e12, 9e13,
        ] {
            let c = encode(v);
            assert!(c > last, "{v}");
            last = c;
            let back = decode(c);
            assert!((back - v).abs() / v < 0.0046, "{v} -> {c} -> {back}");
        }
        assert_eq!(encode(1e20), MAX_CODE);
    }

    #[test]
    fn ring_packs_slides_and_ranks() {
        let mut w = CompactWindow::new(3, 5, 0, 0);
        assert_eq!(w.heap_bytes(), 23, "15 values x 12 bits");
        for s in 0..8u16 {
            w.push(&[s, 4095 - s, 100 + s]);
        }
        assert_eq!((w.len(), w.total()), (5, 8));
        assert_eq!(w.code(0, 0), 3, "oldest kept second");
        assert_eq!(w.code(4, 1), 4095 - 7);
        assert_eq!(w.code(2, 2), 105);
        let mut scratch = Vec::new();
        assert_eq!(w.percentile_code(0, 0.99, &mut scratch), Some(7));
        assert_eq!(w.percentile_code(1, 0.5, &mut scratch), Some(4095 - 5));
        let mut all = [0u16; 3];
        w.percentile_codes(0.99, &mut all, &mut scratch);
        assert_eq!(all, [7, 4095 - 3, 107]);
        let r = CompactWindow::restore(3, 4, &w.codes(), w.total());
        assert_eq!((r.len(), r.total(), r.code(0, 0)), (4, 8, 4));
    }

    /// The one-pass top-k agrees with sorting, whatever the data and rank.
    #[test]
    fn fast_percentiles_match_sorting() {
        let mut seed = 0x1234_5678u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut scratch = Vec::new();
        for cap in [1usize, 2, 10, 300, 1000] {
            let mut w = CompactWindow::new(6, cap, 0, 0);
            for fill in 0..cap + 3 {
                let row: Vec<u16> = (0..6)
                    .map(|l| if l == 5 { 0 } else { (rnd() % 4096) as u16 })
                    .collect();
                w.push(&row);
                for q in [0.99, 0.95, 0.5, 1.0] {
                    let mut fast = [0u16; 6];
                    w.percentile_codes(q, &mut fast, &mut scratch);
                    for (lane, f) in fast.iter().enumerate() {
                        let mut s2 = Vec::new();
                        assert_eq!(
                            Some(*f),
                            w.percentile_code(lane, q, &mut s2),
                            "cap {cap} fill {fill} q {q} lane {lane}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn prefilled_zeros_count_for_warm_up() {
        let w = CompactWindow::new(6, 300, 1000, 1000);
        assert_eq!((w.len(), w.total()), (300, 1000));
        let mut scratch = Vec::new();
        assert_eq!(w.percentile_code(5, 0.99, &mut scratch), Some(0));
    }
}
