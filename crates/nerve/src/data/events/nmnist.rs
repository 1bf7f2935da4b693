//! N-MNIST binary events: 5 bytes (40 bits) per event, big-endian bit fields.
//!
//! Byte 0 is x, byte 1 is y, bit 7 of byte 2 is polarity (1 = ON), and the remaining 23 bits
//! (byte 2 bits 0–6, bytes 3–4) are the timestamp in microseconds.

use std::path::Path;

use super::Events;
use crate::error::{Error, Result};

/// The N-MNIST sensor size `(width, height)`: the ATIS crop used for the data set.
pub const NMNIST_SENSOR: (u16, u16) = (34, 34);

/// Bytes per event.
const EVENT_BYTES: usize = 5;

/// The largest timestamp the 23-bit field can hold.
const MAX_T: i64 = (1 << 23) - 1;

/// Reads an N-MNIST `.bin` file.
pub fn read_nmnist(path: impl AsRef<Path>) -> Result<Events> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_nmnist(&bytes, path)
}

/// Decodes N-MNIST bytes; `path` only names the source in errors.
pub fn parse_nmnist(bytes: &[u8], path: &Path) -> Result<Events> {
    if !bytes.len().is_multiple_of(EVENT_BYTES) {
        return Err(Error::format(
            path,
            format!(
                "truncated N-MNIST file: {} bytes is not a multiple of {EVENT_BYTES}",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / EVENT_BYTES;
    let (mut x, mut y, mut t, mut p) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (w, h) = NMNIST_SENSOR;
    for (i, e) in bytes.chunks_exact(EVENT_BYTES).enumerate() {
        let (ex, ey) = (u16::from(e[0]), u16::from(e[1]));
        if ex >= w || ey >= h {
            // Checked here (not only in Events::new) so the error names the file.
            return Err(Error::format(
                path,
                format!("event {i} at ({ex}, {ey}) lies outside the {w}x{h} N-MNIST sensor"),
            ));
        }
        x.push(ex);
        y.push(ey);
        p.push(if e[2] & 0x80 != 0 { 1 } else { -1 });
        t.push((i64::from(e[2] & 0x7f) << 16) | (i64::from(e[3]) << 8) | i64::from(e[4]));
    }
    Events::new(x, y, t, p, NMNIST_SENSOR).map_err(|e| Error::format(path, e.to_string()))
}

/// Encodes events in the N-MNIST format, refusing any that the format cannot represent
/// (outside 34x34, timestamp outside `0..2^23`).
pub fn encode_nmnist(events: &Events) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(events.len() * EVENT_BYTES);
    let (w, h) = NMNIST_SENSOR;
    for i in 0..events.len() {
        let (x, y, t, p) = (events.x[i], events.y[i], events.t[i], events.p[i]);
        if x >= w || y >= h {
            return Err(Error::invalid(
                "N-MNIST events",
                format!("event {i} at ({x}, {y}) lies outside the {w}x{h} sensor"),
            ));
        }
        if !(0..=MAX_T).contains(&t) {
            return Err(Error::invalid(
                "N-MNIST events",
                format!("event {i} has timestamp {t} µs, outside the 23-bit range 0..={MAX_T}"),
            ));
        }
        let pol = if p > 0 { 0x80 } else { 0 };
        out.extend_from_slice(&[
            x as u8,
            y as u8,
            pol | ((t >> 16) as u8 & 0x7f),
            (t >> 8) as u8,
            t as u8,
        ]);
    }
    Ok(out)
}

/// Writes events as an N-MNIST `.bin` file, atomically.
pub fn write_nmnist(path: impl AsRef<Path>, events: &Events) -> Result<()> {
    let bytes = encode_nmnist(events)?;
    crate::fsutil::write_atomic(path, &bytes)
}
