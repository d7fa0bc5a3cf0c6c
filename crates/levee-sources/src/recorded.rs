//! [`RecordedSource`]: replays recorded [`RawSample`]s (a `Vec`, or JSON lines
//! of `RawSample` as `serde_json` writes them) for tests and `replay`.

use crate::error::SourceError;
use crate::source::CounterSource;
use levee_model::RawSample;
use std::collections::VecDeque;

/// Yields its samples in order, then [`SourceError::EndOfRecording`] forever.
#[derive(Debug, Clone, Default)]
pub struct RecordedSource {
    samples: VecDeque<RawSample>,
}

impl RecordedSource {
    pub fn new(samples: Vec<RawSample>) -> Self {
        RecordedSource {
            samples: samples.into(),
        }
    }

    /// Parses one `RawSample` JSON object per line; blank lines are skipped.
    /// All-or-nothing: the first bad line is reported with its 1-based number.
    pub fn from_json_lines(text: &str) -> Result<Self, SourceError> {
        let mut samples = VecDeque::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let sample = serde_json::from_str(line)
                .map_err(|error| SourceError::Recording { line: i + 1, error })?;
            samples.push_back(sample);
        }
        Ok(RecordedSource { samples })
    }

    /// Samples not yet replayed.
    pub fn remaining(&self) -> usize {
        self.samples.len()
    }
}

impl CounterSource for RecordedSource {
    fn sample(&mut self) -> Result<RawSample, SourceError> {
        self.samples.pop_front().ok_or(SourceError::EndOfRecording)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(mono_ms: u64) -> RawSample {
        RawSample {
            mono_ms,
            unix_ms: 1_700_000_000_000 + mono_ms as i64,
            ..RawSample::default()
        }
    }

    #[test]
    fn replays_in_order_then_ends() {
        let mut src = RecordedSource::new(vec![sample(0), sample(100)]);
        assert_eq!(src.remaining(), 2);
        assert_eq!(src.sample().unwrap().mono_ms, 0);
        assert_eq!(src.sample().unwrap().mono_ms, 100);
        assert!(matches!(src.sample(), Err(SourceError::EndOfRecording)));
        assert!(matches!(src.sample(), Err(SourceError::EndOfRecording)));
    }

    #[test]
    fn json_lines_round_trip() {
        let samples = [sample(0), sample(100)];
        let text: String = samples
            .iter()
            .map(|s| serde_json::to_string(s).unwrap() + "\n\n")
            .collect();
        let mut src = RecordedSource::from_json_lines(&text).unwrap();
        assert_eq!(src.sample().unwrap(), samples[0]);
        assert_eq!(src.sample().unwrap(), samples[1]);
    }

    #[test]
    fn bad_json_line_is_reported_with_its_number() {
        let good = serde_json::to_string(&sample(0)).unwrap();
        let text = format!("{good}\n{{\"mono_ms\": \"x\"}}\n");
        let e = RecordedSource::from_json_lines(&text).unwrap_err();
        assert!(matches!(e, SourceError::Recording { line: 2, .. }), "{e}");
    }
}
