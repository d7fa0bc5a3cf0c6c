//! Incident ids: UUIDv7 (time-ordered) whose random part comes from a seeded
//! generator, so a replay with the same seed reproduces the same ids.

use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct IdGen {
    state: u64,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        IdGen { state: seed }
    }

    /// splitmix64: tiny, well-distributed, and needs no crate.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_id(&mut self, unix_ms: i64) -> Uuid {
        let mut rand = [0u8; 10];
        rand[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        rand[8..].copy_from_slice(&self.next_u64().to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(unix_ms.max(0) as u64, &rand).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids_and_v7() {
        let mut a = IdGen::new(42);
        let mut b = IdGen::new(42);
        let ia = a.next_id(1_795_225_450_123);
        assert_eq!(ia, b.next_id(1_795_225_450_123));
        assert_eq!(ia.get_version_num(), 7);
        assert_ne!(a.next_id(1), IdGen::new(43).next_id(1));
    }
}
