//! [`FeatureStore`]: traffic features of the IPs and prefixes that matter
//! now, for classifying their incidents with levee-packet's classifier.
//!
//! Keeping full features ([`levee_packet::Features`], tens of KiB) for every
//! IP of a /16 is out of the question, so only *watched* keys have them: a
//! key is watched from the moment its rate in the current window passes
//! [`WATCH_PPS`] (checked as each record arrives, so the rest of an export
//! burst that starts an attack is already inside), up to [`MAX_WATCHED`]
//! keys (a hotter key displaces the coldest), and for as long as it stays
//! hot or has an incident open (pinned).
//!
//! Windows of [`WINDOW_MS`] rotate like the packet sampler's: the live one
//! is classified when it holds enough records, else the previous one.
//! Features are weighted: a flow record counts its packets times the
//! sampling rate, a sampled packet its sampling rate.

use super::engine::Key;
use levee_packet::features::{hll, Class};
use levee_packet::meta::ip_key;
use levee_packet::{FeatureConfig, Features, PacketMeta};
use std::collections::{HashMap, HashSet};

/// Rate (packets/s, scaled) from which a key is watched.
pub const WATCH_PPS: f64 = 500.0;
/// Keys watched at once.
pub const MAX_WATCHED: usize = 64;
/// Length of a feature window.
pub const WINDOW_MS: i64 = 1_000;
/// Records the live window needs to be classified instead of the previous.
const MIN_RECORDS: u64 = 32;
/// A key no longer hot is dropped after this long (unless pinned).
const COOL_MS: i64 = 10_000;

/// Smaller than the pcap analyser's: up to 2 x 64 of these are kept.
pub fn store_feature_config() -> FeatureConfig {
    FeatureConfig {
        max_targets: 1,
        sample_size: 256,
        hll_precision: 10,
        ..FeatureConfig::default()
    }
}

#[derive(Debug)]
struct Watch {
    live: Features,
    live_records: u64,
    prev: Option<(Features, u64)>,
    /// Largest sampling rate among the live window's records.
    rate: u32,
    prev_rate: u32,
    pps: f64,
    hot_ms: i64,
}

/// The features a classification looks at.
#[derive(Debug)]
pub struct View<'a> {
    pub features: &'a Features,
    /// Records (or samples) behind them.
    pub records: u64,
    pub sampling_rate: u32,
}

/// Features of the watched keys.
#[derive(Debug)]
pub struct FeatureStore {
    cfg: FeatureConfig,
    live_start_ms: i64,
    watched: HashMap<Key, Watch, foldhash::fast::RandomState>,
    pinned: HashSet<Key>,
    spare: Vec<Features>,
    /// The unpinned watched key with the lowest rate, when the store is
    /// full: a newcomer must be twice as hot to displace it (so two keys
    /// of similar rates don't evict each other on every record).
    coldest: Option<(Key, f64)>,
}

impl FeatureStore {
    pub fn new(now_ms: i64) -> Self {
        FeatureStore {
            cfg: store_feature_config(),
            live_start_ms: now_ms,
            watched: HashMap::default(),
            pinned: HashSet::new(),
            spare: Vec::new(),
            coldest: None,
        }
    }

    /// The rate a key not watched needs to be considered.
    #[inline]
    pub fn admit_pps(&self) -> f64 {
        if self.watched.len() < MAX_WATCHED {
            WATCH_PPS
        } else {
            self.coldest
                .map_or(f64::INFINITY, |(_, pps)| (2.0 * pps).max(WATCH_PPS))
        }
    }

    fn find_coldest(&mut self) {
        self.coldest = self
            .watched
            .iter()
            .filter(|(key, _)| !self.pinned.contains(key))
            .min_by(|a, b| a.1.pps.total_cmp(&b.1.pps))
            .map(|(key, w)| (*key, w.pps));
    }

    pub fn watched(&self) -> usize {
        self.watched.len()
    }

    pub fn is_watched(&self, k: &Key) -> bool {
        self.watched.contains_key(k)
    }

    fn fresh(&mut self, k: &Key) -> Features {
        let seed = self.cfg.seed
            ^ hll::hash_key(match k {
                Key::Ip(ip) => ip_key(*ip),
                Key::Prefix(p) => ip_key(p.network()) ^ u128::from(p.prefix_len()),
            });
        match self.spare.pop() {
            Some(mut f) => {
                f.sample.reseed(seed);
                f
            }
            None => Features::new(&self.cfg, seed),
        }
    }

    /// Starts watching `k` if its rate `pps` earns it a place; returns
    /// whether `k` is watched.
    pub fn consider(&mut self, k: Key, pps: f64, now_ms: i64) -> bool {
        if let Some(w) = self.watched.get_mut(&k) {
            w.pps = w.pps.max(pps);
            w.hot_ms = now_ms;
            return true;
        }
        if pps < self.admit_pps() {
            return false;
        }
        if self.watched.len() >= MAX_WATCHED {
            match self.coldest.take() {
                Some((ck, _)) => self.drop_key(&ck),
                None => return false,
            }
        }
        self.start_watch(k, pps, now_ms);
        if self.watched.len() >= MAX_WATCHED {
            self.find_coldest();
        }
        true
    }

    fn start_watch(&mut self, k: Key, pps: f64, now_ms: i64) {
        let live = self.fresh(&k);
        self.watched.insert(
            k,
            Watch {
                live,
                live_records: 0,
                prev: None,
                rate: 1,
                prev_rate: 1,
                pps,
                hot_ms: now_ms,
            },
        );
    }

    fn drop_key(&mut self, k: &Key) {
        if let Some(mut w) = self.watched.remove(k) {
            w.live.clear();
            self.spare.push(w.live);
            if let Some((mut f, _)) = w.prev {
                f.clear();
                self.spare.push(f);
            }
        }
    }

    /// Adds `weight` packets like `m` to the watched keys among `keys`.
    pub fn observe(&mut self, now_ms: i64, keys: [Key; 2], m: &PacketMeta, weight: u64, rate: u32) {
        if self.watched.is_empty() {
            return;
        }
        let ts = u64::try_from(now_ms).unwrap_or(0).saturating_mul(1_000_000);
        let class = Class::of(m);
        let src_key = ip_key(m.src);
        let src_hash = hll::hash_key(src_key);
        for k in keys {
            if let Some(w) = self.watched.get_mut(&k) {
                w.live
                    .observe_weighted(ts, m, class, src_key, src_hash, weight);
                w.live_records += 1;
                w.rate = w.rate.max(rate);
            }
        }
    }

    /// Keeps `k` watched (an incident is open on it) until [`Self::unpin`].
    pub fn pin(&mut self, k: Key, now_ms: i64) {
        self.pinned.insert(k);
        if !self.watched.contains_key(&k) {
            // Not hot (yet): watch it from now on regardless of rate.
            self.start_watch(k, 0.0, now_ms);
        }
    }

    pub fn unpin(&mut self, k: &Key) {
        self.pinned.remove(k);
    }

    /// Called every tick with each key's current rate: rotates windows,
    /// updates rates, drops keys that cooled down.
    pub fn tick(&mut self, now_ms: i64, rates: &[(Key, f64)]) {
        for (k, pps) in rates {
            if let Some(w) = self.watched.get_mut(k) {
                w.pps = *pps;
                if *pps >= WATCH_PPS {
                    w.hot_ms = now_ms;
                }
            }
        }
        if now_ms - self.live_start_ms >= WINDOW_MS {
            self.live_start_ms = now_ms;
            let mut spare = std::mem::take(&mut self.spare);
            for w in self.watched.values_mut() {
                let mut next = match spare.pop() {
                    Some(f) => f,
                    None => Features::new(&self.cfg, self.cfg.seed),
                };
                std::mem::swap(&mut w.live, &mut next);
                if let Some((mut old, _)) = w.prev.replace((next, w.live_records)) {
                    old.clear();
                    spare.push(old);
                }
                w.live_records = 0;
                w.prev_rate = w.rate;
                w.rate = 1;
            }
            self.spare = spare;
        }
        let cold: Vec<Key> = self
            .watched
            .iter()
            .filter(|(k, w)| !self.pinned.contains(k) && now_ms - w.hot_ms > COOL_MS)
            .map(|(k, _)| *k)
            .collect();
        for k in cold {
            self.drop_key(&k);
        }
        self.find_coldest();
    }

    /// The window to classify `k` on: the live one when it holds enough
    /// records, else the previous one.
    pub fn view(&self, k: &Key) -> Option<View<'_>> {
        let w = self.watched.get(k)?;
        if w.live_records >= MIN_RECORDS {
            return Some(View {
                features: &w.live,
                records: w.live_records,
                sampling_rate: w.rate,
            });
        }
        match &w.prev {
            Some((f, n)) if *n > 0 => Some(View {
                features: f,
                records: *n,
                sampling_rate: w.prev_rate,
            }),
            _ if w.live_records > 0 => Some(View {
                features: &w.live,
                records: w.live_records,
                sampling_rate: w.rate,
            }),
            _ => None,
        }
    }
}
