//! Per-epoch training metrics, kept as JSON (the source of truth, reloaded on resume so a
//! resumed run extends the same history) and CSV (for spreadsheets and plotting scripts).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic_with;

/// Metrics of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Optimizer steps taken since the start of the run, at the end of this epoch.
    #[serde(default)]
    pub step: u64,
    /// Mean training loss over the epoch.
    #[serde(with = "finite_or_null")]
    pub train_loss: f64,
    /// Training accuracy in [0, 1].
    #[serde(with = "finite_or_null")]
    pub train_accuracy: f64,
    /// Mean test loss.
    #[serde(with = "finite_or_null")]
    pub test_loss: f64,
    /// Test accuracy in [0, 1].
    #[serde(with = "finite_or_null")]
    pub test_accuracy: f64,
    /// Learning rate at the last step of the epoch.
    #[serde(with = "finite_or_null")]
    pub lr: f64,
    /// Wall-clock seconds the epoch took (training and evaluation).
    #[serde(with = "finite_or_null")]
    pub seconds: f64,
    /// Mean number of spikes per test sample over all layers and time steps.
    #[serde(with = "finite_or_null")]
    pub spikes_per_sample: f64,
    /// Further named metrics (e.g. per-layer firing rates), written as extra CSV columns.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

/// Loss and accuracy of one training batch, for curves finer than one point per epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Position in epochs: 0.5 is halfway through the first epoch.
    pub epoch: f64,
    /// Batch loss.
    #[serde(with = "finite_or_null")]
    pub loss: f64,
    /// Batch accuracy.
    #[serde(with = "finite_or_null")]
    pub accuracy: f64,
}

/// The metrics log of a run, one record per epoch in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Records in epoch order.
    pub records: Vec<EpochRecord>,
    /// Every training batch, in order (JSON only; the CSV holds the per-epoch records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchRecord>,
}

/// The fixed CSV columns, in the order of [`EpochRecord`]'s fields.
const CSV_COLUMNS: [&str; 9] = [
    "epoch",
    "step",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "lr",
    "seconds",
    "spikes_per_sample",
];

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the record of a finished epoch.
    pub fn push(&mut self, record: EpochRecord) {
        self.records.push(record);
    }

    /// The last recorded epoch, if any.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.records.last()
    }

    /// Drops records after `epoch`, so a resume from an older checkpoint does not keep epochs
    /// that will be trained again.
    pub fn truncate_to_epoch(&mut self, epoch: usize) {
        self.records.retain(|r| r.epoch <= epoch);
        self.batches.retain(|b| b.epoch <= epoch as f64);
    }

    /// Writes the history as CSV (atomically); extra metrics become sorted trailing columns.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let extra: BTreeSet<&str> = self
            .records
            .iter()
            .flat_map(|r| r.extra.keys().map(String::as_str))
            .collect();
        write_atomic_with(path, |w| {
            let header: Vec<&str> = CSV_COLUMNS
                .iter()
                .copied()
                .chain(extra.iter().copied())
                .collect();
            writeln!(
                w,
                "{}",
                header
                    .iter()
                    .map(|h| csv_field(h))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            for r in &self.records {
                write!(
                    w,
                    "{},{},{},{},{},{},{},{},{}",
                    r.epoch,
                    r.step,
                    r.train_loss,
                    r.train_accuracy,
                    r.test_loss,
                    r.test_accuracy,
                    r.lr,
                    r.seconds,
                    r.spikes_per_sample
                )?;
                for key in &extra {
                    // A metric missing from some epochs is an empty cell, not a fake zero.
                    match r.extra.get(*key) {
                        Some(v) => write!(w, ",{v}")?,
                        None => write!(w, ",")?,
                    }
                }
                writeln!(w)?;
            }
            Ok(())
        })
    }

    /// Writes the history as pretty JSON (atomically); non-finite numbers become `null`.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic_with(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self)?;
            writeln!(w)
        })
    }

    /// Reads a history written by [`History::write_json`].
    pub fn load_json(path: impl AsRef<Path>) -> Result<History> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a training history: {e}")))
    }
}

/// Quotes a CSV field only when needed, since metric names are user-chosen.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// JSON has no NaN/inf; store them as `null` and read `null` back as NaN so a history with a
/// diverged or skipped metric still round-trips instead of failing to load on resume.
mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            step: 100 * epoch as u64,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: 0.5,
            test_loss: 0.25,
            test_accuracy: 0.75,
            lr: 1e-3,
            seconds: 1.5,
            spikes_per_sample: 123.0,
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn json_round_trip_and_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.json");
        let mut h = History::new();
        h.push(record(1));
        let mut r2 = record(2);
        r2.test_loss = f64::NAN;
        r2.extra.insert("rate.layer1".into(), 0.125);
        h.push(r2);
        h.write_json(&path).unwrap();

        let mut back = History::load_json(&path).unwrap();
        assert_eq!(back.records.len(), 2);
        assert_eq!(back.records[0], h.records[0]);
        assert!(back.records[1].test_loss.is_nan());
        assert_eq!(back.records[1].extra["rate.layer1"], 0.125);

        back.truncate_to_epoch(1);
        back.push(record(2));
        back.push(record(3));
        assert_eq!(back.last().unwrap().epoch, 3);
        assert_eq!(back.records.len(), 3);
    }

    #[test]
    fn csv_has_header_and_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        let mut h = History::new();
        h.push(record(1));
        let mut r2 = record(2);
        r2.extra.insert("rate,odd".into(), 0.5);
        h.push(r2);
        h.write_csv(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "epoch,step,train_loss,train_accuracy,test_loss,test_accuracy,lr,seconds,\
             spikes_per_sample,\"rate,odd\""
        );
        assert_eq!(lines[1], "1,100,1,0.5,0.25,0.75,0.001,1.5,123,");
        assert_eq!(lines[2], "2,200,0.5,0.5,0.25,0.75,0.001,1.5,123,0.5");
    }

    #[test]
    fn load_json_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{not json").unwrap();
        let msg = History::load_json(&path).unwrap_err().to_string();
        assert!(
            msg.contains("bad.json") && msg.contains("not a training history"),
            "{msg}"
        );
        let missing = dir.path().join("missing.json");
        assert!(matches!(
            History::load_json(&missing),
            Err(Error::Io { .. })
        ));
    }
}
