//! Bounded heavy-hitter counting ([`TopK`]) with the Space-Saving algorithm
//! (Metwally, Agrawal, El Abbadi, 2005): at most `capacity` counters whatever
//! the number of distinct keys.
//!
//! Any key seen more than N / capacity times is guaranteed to be present, and
//! each counter's `count - error` is a guaranteed lower bound. Lookups scan
//! the counters linearly: with the small capacities used here (16 to 128) a
//! scan of a contiguous array beats a hash map and allocates nothing.

/// One counter of a [`TopK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter<K> {
    pub key: K,
    /// Estimated count (never below the true count).
    pub count: u64,
    /// Maximum overestimation: the true count is at least `count - error`.
    pub error: u64,
}

impl<K> Counter<K> {
    /// The count this key certainly reached.
    pub fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

/// Space-Saving top-k counter.
#[derive(Debug, Clone)]
pub struct TopK<K> {
    capacity: usize,
    counters: Vec<Counter<K>>,
}

impl<K: Copy + Eq> TopK<K> {
    /// Counts up to `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        TopK {
            capacity,
            counters: Vec::with_capacity(capacity),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counts one occurrence of `key`.
    #[inline]
    pub fn insert(&mut self, key: K) {
        self.insert_weighted(key, 1);
    }

    /// Counts `weight` occurrences of `key`.
    #[inline]
    pub fn insert_weighted(&mut self, key: K, weight: u64) {
        let mut min_i = 0;
        let mut min_c = u64::MAX;
        for (i, c) in self.counters.iter_mut().enumerate() {
            if c.key == key {
                c.count += weight;
                return;
            }
            if c.count < min_c {
                min_c = c.count;
                min_i = i;
            }
        }
        if self.counters.len() < self.capacity {
            self.counters.push(Counter {
                key,
                count: weight,
                error: 0,
            });
        } else if let Some(c) = self.counters.get_mut(min_i) {
            // Space-Saving: the newcomer inherits the smallest count as its
            // possible overestimate.
            *c = Counter {
                key,
                count: min_c + weight,
                error: min_c,
            };
        }
    }

    /// The count for `key`, if it has a counter.
    pub fn get(&self, key: K) -> Option<Counter<K>> {
        self.counters.iter().find(|c| c.key == key).copied()
    }

    /// Counters, largest estimated count first.
    pub fn top(&self) -> Vec<Counter<K>> {
        let mut v = self.counters.clone();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.guaranteed().cmp(&a.guaranteed()))
        });
        v
    }

    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    pub fn clear(&mut self) {
        self.counters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn exact_below_capacity() {
        let mut t = TopK::new(4);
        for k in [1, 2, 2, 3, 3, 3] {
            t.insert(k);
        }
        let top = t.top();
        assert_eq!(
            top[0],
            Counter {
                key: 3,
                count: 3,
                error: 0
            }
        );
        assert_eq!(top[1].key, 2);
        assert_eq!(t.get(1).map(|c| c.count), Some(1));
    }

    proptest! {
        /// Space-Saving guarantees: memory bounded, counts bracket the truth,
        /// and every key above N / capacity is present.
        #[test]
        fn space_saving_guarantees(keys in proptest::collection::vec(0u16..200, 0..3000), cap in 1usize..32) {
            let mut t = TopK::new(cap);
            let mut truth: HashMap<u16, u64> = HashMap::new();
            for &k in &keys {
                t.insert(k);
                *truth.entry(k).or_default() += 1;
            }
            prop_assert!(t.len() <= cap);
            for c in t.top() {
                let real = truth[&c.key];
                prop_assert!(c.count >= real && c.guaranteed() <= real);
            }
            let n = keys.len() as u64;
            for (k, v) in truth {
                if v * cap as u64 > n {
                    prop_assert!(t.get(k).is_some(), "heavy key {} ({} of {}) missing", k, v, n);
                }
            }
        }
    }
}
