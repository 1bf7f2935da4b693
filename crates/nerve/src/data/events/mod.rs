//! Event-camera (and tactile) recordings: one struct-of-arrays event type, [`Events`], and
//! what reads, makes and reshapes it:
//!
//! - readers, behind [`read_events`], for N-MNIST `.bin` ([`nmnist`], also written), Prophesee
//!   `.dat` / N-CARS ([`prophesee`], also written), ST-MNIST `.mat` ([`stmnist`]), AEDAT 2.0
//!   and 3.1 ([`aedat`]) and AEDAT 4.0 ([`aedat4`], also written);
//! - [`dataset`]: labelled data sets in N-MNIST's folder layout, binned into frames;
//! - [`emulator`]: a v2e-style event camera turning frames into events, fed by [`video`]
//!   (video input) and used by [`saccade`] (emulated N-MNIST);
//! - [`transforms`]: Tonic-style filters, augmentations and dense representations.
//!
//! Polarity is always stored as `+1` (ON, brightness increase) or `-1` (OFF), whatever the
//! file's own encoding, so downstream code never has to know where the events came from.

pub mod aedat;
pub mod aedat4;
pub mod dataset;
pub mod emulator;
pub mod nmnist;
pub mod prophesee;
pub mod saccade;
pub mod stmnist;
pub mod transforms;
pub mod video;

use std::path::Path;

use crate::error::{Error, Result};

pub use aedat::{detect_aedat, parse_aedat, parse_aedat2, parse_aedat3, read_aedat, DVS128_SENSOR};
pub use aedat4::{
    encode_aedat4, parse_aedat4, parse_aedat4_header, read_aedat4, write_aedat4, Aedat4Compression,
};
pub use nmnist::{encode_nmnist, parse_nmnist, read_nmnist, write_nmnist, NMNIST_SENSOR};
pub use prophesee::{encode_prophesee, parse_prophesee, read_prophesee, write_prophesee};
pub use stmnist::{parse_stmnist, read_stmnist, STMNIST_SENSOR};

/// A sequence of events from one sensor, stored as parallel arrays (one entry per event).
///
/// The fields are public for cheap access; [`Events::new`] checks the invariants (equal
/// lengths, coordinates inside the sensor, polarity `±1`) and every reader goes through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// Column of each event, `0..sensor.0`.
    pub x: Vec<u16>,
    /// Row of each event, `0..sensor.1`.
    pub y: Vec<u16>,
    /// Timestamp of each event in microseconds.
    pub t: Vec<i64>,
    /// Polarity of each event: `+1` (ON) or `-1` (OFF).
    pub p: Vec<i8>,
    /// Sensor size as `(width, height)` in pixels.
    pub sensor: (u16, u16),
}

impl Events {
    /// Builds an event set, refusing what [`Events::validate`] refuses.
    pub fn new(
        x: Vec<u16>,
        y: Vec<u16>,
        t: Vec<i64>,
        p: Vec<i8>,
        sensor: (u16, u16),
    ) -> Result<Self> {
        let events = Events { x, y, t, p, sensor };
        events.validate()?;
        Ok(events)
    }

    /// Checks the invariants (arrays of equal length, every pixel inside the sensor, polarity
    /// `±1`) and returns the time span as [`Events::time_span`] does. The fields are public, so
    /// code taking an `Events` it did not build checks it here rather than trusting it.
    pub fn validate(&self) -> Result<Option<(i64, i64)>> {
        let n = self.x.len();
        if self.y.len() != n || self.t.len() != n || self.p.len() != n {
            return Err(Error::invalid(
                "events",
                format!(
                    "arrays differ in length: x {}, y {}, t {}, p {}",
                    n,
                    self.y.len(),
                    self.t.len(),
                    self.p.len()
                ),
            ));
        }
        let (w, h) = self.sensor;
        let mut span: Option<(i64, i64)> = None;
        for i in 0..n {
            let (x, y, t, p) = (self.x[i], self.y[i], self.t[i], self.p[i]);
            if x >= w || y >= h {
                return Err(Error::invalid(
                    "events",
                    format!("event {i} at ({x}, {y}) lies outside the {w}x{h} sensor"),
                ));
            }
            if p != 1 && p != -1 {
                return Err(Error::invalid(
                    "events",
                    format!("event {i} has polarity {p}, expected +1 or -1"),
                ));
            }
            span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        }
        Ok(span)
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// Earliest and latest timestamp (µs), or `None` without events; files need not be sorted.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        let min = *self.t.iter().min()?;
        let max = *self.t.iter().max()?;
        Some((min, max))
    }

    /// Number of `(ON, OFF)` events.
    pub fn polarity_counts(&self) -> (usize, usize) {
        let on = self.p.iter().filter(|&&p| p > 0).count();
        (on, self.len() - on)
    }
}

/// The on-disk event formats this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// N-MNIST / N-Caltech101 40-bit binary events (`.bin`).
    NMnist,
    /// Prophesee `.dat` with 8-byte CD events (N-CARS).
    PropheseeDat,
    /// ST-MNIST tactile events in a MATLAB v5 `.mat` file (variable `spiketrain`).
    StMnist,
    /// AEDAT 2.0 (jAER) with DVS128 addresses.
    Aedat2,
    /// AEDAT 3.1 (cAER) polarity packets.
    Aedat3,
    /// AEDAT 4.0 (DV): flatbuffer packets, uncompressed or LZ4.
    Aedat4,
}

/// Reads an event file, detecting its format from the extension (`.bin`, `.dat`, `.mat`) or,
/// failing that, from the content (a `%` header means Prophesee). A `#!AER-DAT` first line
/// means AEDAT (2.0, 3.1 or 4.0) whatever the extension.
pub fn read_events(path: impl AsRef<Path>) -> Result<(EventFormat, Events)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_events(&bytes, path)
}

/// Decodes an event file's bytes as [`read_events`] does, detecting the format from `path`'s
/// extension and the content; `path` also names the source in errors.
pub fn parse_events(bytes: &[u8], path: &Path) -> Result<(EventFormat, Events)> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let format = match ext.as_deref() {
        _ if bytes.starts_with(b"#!AER-DAT") => detect_aedat(bytes, path)?,
        Some("mat") => EventFormat::StMnist,
        Some("bin") => EventFormat::NMnist,
        Some("dat") => EventFormat::PropheseeDat,
        _ if bytes.first() == Some(&b'%') => EventFormat::PropheseeDat,
        _ if bytes.starts_with(b"MATLAB 5.0 MAT-file") => EventFormat::StMnist,
        _ => return Err(Error::format(
            path,
            "unknown event format: expected a .bin (N-MNIST), .dat (Prophesee), .mat (ST-MNIST) \
                 or AEDAT file",
        )),
    };
    let events = match format {
        EventFormat::NMnist => parse_nmnist(bytes, path)?,
        EventFormat::PropheseeDat => parse_prophesee(bytes, path)?,
        EventFormat::StMnist => parse_stmnist(bytes, path)?,
        EventFormat::Aedat2 => parse_aedat2(bytes, path)?,
        EventFormat::Aedat3 => parse_aedat3(bytes, path)?,
        EventFormat::Aedat4 => parse_aedat4(bytes, path)?,
    };
    Ok((format, events))
}
