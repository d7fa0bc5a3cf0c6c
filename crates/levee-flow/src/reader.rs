//! [`Reader`]: a bounds-checked big-endian cursor over a byte slice.
//!
//! Every read of network input in this crate goes through it, so an
//! out-of-range read is a [`DecodeError::Truncated`] naming the structure,
//! never a panic.

use crate::error::DecodeError;

#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A cursor over `data`; `what` names the structure in errors.
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, pos: 0, what }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    fn short(&self, n: usize) -> DecodeError {
        DecodeError::Truncated {
            what: self.what,
            needed: self.pos.saturating_add(n),
            available: self.data.len(),
        }
    }

    /// The next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.short(n));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    #[inline]
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    #[inline]
    pub fn array4(&mut self) -> Result<[u8; 4], DecodeError> {
        let b = self.bytes(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    #[inline]
    pub fn array16(&mut self) -> Result<[u8; 16], DecodeError> {
        let b = self.bytes(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(a)
    }
}

/// An unsigned big-endian integer of 1 to 8 bytes (IPFIX reduced-size
/// encoding, RFC 7011 section 6.2); longer inputs keep their last 8 bytes.
#[inline]
pub fn be_uint(b: &[u8]) -> u64 {
    let b = if b.len() > 8 { &b[b.len() - 8..] } else { b };
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_truncation() {
        let d = [0, 5, 0, 0, 0, 7, 1];
        let mut r = Reader::new(&d, "test header");
        assert_eq!(r.u16().unwrap(), 5);
        assert_eq!(r.u32().unwrap(), 7);
        let e = r.u16().unwrap_err();
        assert_eq!(
            e,
            DecodeError::Truncated {
                what: "test header",
                needed: 8,
                available: 7
            }
        );
        assert_eq!(r.u8().unwrap(), 1);
        assert!(r.is_empty());
    }

    #[test]
    fn reduced_size_integers() {
        assert_eq!(be_uint(&[]), 0);
        assert_eq!(be_uint(&[1, 0]), 256);
        assert_eq!(be_uint(&[9, 0, 0, 1, 0, 0, 0, 0, 2]), 0x0100_0000_0002);
    }
}
