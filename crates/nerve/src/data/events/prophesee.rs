//! Prophesee `.dat` files with 8-byte CD events, the format of N-CARS.
//!
//! Layout: ASCII header lines starting with `%` (e.g. `% Width 120`, `% Height 100`), then one
//! byte event type and one byte event size (must be 8), then little-endian records of a u32
//! timestamp (µs) and a u32 with x in bits 0–13, y in bits 14–27 and polarity (0/1) in bits
//! 28–31.

use std::path::Path;

use super::Events;
use crate::error::{Error, Result};

/// Bytes per CD event record.
const EVENT_BYTES: usize = 8;

/// Reads a Prophesee `.dat` file.
pub fn read_prophesee(path: impl AsRef<Path>) -> Result<Events> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_prophesee(&bytes, path)
}

/// Decodes Prophesee `.dat` bytes; `path` only names the source in errors.
///
/// The sensor size comes from the header's `Width`/`Height` when both are present. Without
/// them (N-CARS headers carry no size) the true sensor size is unknown and the events' span,
/// the largest coordinates seen plus one, stands in for it; [`header_sensor`] tells the two
/// cases apart.
pub fn parse_prophesee(bytes: &[u8], path: &Path) -> Result<Events> {
    let (width, height, pos) = parse_header(bytes, path)?;
    let Some(&[_event_type, event_size]) = bytes.get(pos..pos + 2) else {
        return Err(Error::format(
            path,
            "truncated file: missing event type and size bytes",
        ));
    };
    if usize::from(event_size) != EVENT_BYTES {
        return Err(Error::format(
            path,
            format!(
                "event size {event_size} bytes, only {EVENT_BYTES}-byte CD events are supported"
            ),
        ));
    }
    let body = &bytes[pos + 2..];
    if !body.len().is_multiple_of(EVENT_BYTES) {
        return Err(Error::format(
            path,
            format!(
                "truncated file: trailing partial record of {} bytes",
                body.len() % EVENT_BYTES
            ),
        ));
    }
    let n = body.len() / EVENT_BYTES;
    let (mut x, mut y, mut t, mut p) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (i, r) in body.chunks_exact(EVENT_BYTES).enumerate() {
        let ts = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        let data = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        let pol = data >> 28;
        if pol > 1 {
            return Err(Error::format(
                path,
                format!("event {i} has polarity {pol}, expected 0 or 1"),
            ));
        }
        x.push((data & 0x3fff) as u16);
        y.push(((data >> 14) & 0x3fff) as u16);
        t.push(i64::from(ts));
        p.push(if pol == 1 { 1 } else { -1 });
    }
    // Coordinates are at most 0x3fff, so max + 1 always fits in u16. A missing dimension
    // falls back to the span of the events (see the doc comment).
    let w = width.unwrap_or_else(|| x.iter().max().map_or(0, |m| m + 1));
    let h = height.unwrap_or_else(|| y.iter().max().map_or(0, |m| m + 1));
    Events::new(x, y, t, p, (w, h)).map_err(|e| Error::format(path, e.to_string()))
}

/// The sensor size `(width, height)` a `.dat` header declares, or `None` when it lacks
/// `Width` or `Height` (or is not a valid header), in which case [`parse_prophesee`] reports
/// the span of the events instead.
pub fn header_sensor(bytes: &[u8]) -> Option<(u16, u16)> {
    let (width, height, _) = parse_header(bytes, Path::new("")).ok()?;
    width.zip(height)
}

/// Reads the `%` header lines: the declared width and height, and the offset after them.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Option<u16>, Option<u16>, usize)> {
    let mut pos = 0;
    let (mut width, mut height) = (None, None);
    while bytes.get(pos) == Some(&b'%') {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            return Err(Error::format(
                path,
                "truncated header: no newline after '%' line",
            ));
        };
        let line = String::from_utf8_lossy(&bytes[pos + 1..pos + nl]);
        let mut words = line.split_whitespace();
        let key = words.next();
        if matches!(key, Some("Width") | Some("Height")) {
            let value: u16 = words.next().and_then(|v| v.parse().ok()).ok_or_else(|| {
                Error::format(path, format!("bad header line '%{}'", line.trim_end()))
            })?;
            if key == Some("Width") {
                width = Some(value);
            } else {
                height = Some(value);
            }
        }
        pos += nl + 1;
    }
    Ok((width, height, pos))
}

/// Encodes events as a Prophesee `.dat` file with the sensor size in its header, so any
/// sensor fits (N-MNIST's format only holds 34×34). Times must lie in 0..2³² µs.
pub fn encode_prophesee(events: &Events) -> Result<Vec<u8>> {
    let header = format!(
        "% Data file containing CD events.\n% Version 2\n% Width {}\n% Height {}\n",
        events.sensor.0, events.sensor.1
    );
    let mut bytes = Vec::with_capacity(header.len() + 2 + events.len() * EVENT_BYTES);
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0, EVENT_BYTES as u8]);
    for i in 0..events.len() {
        let t = u32::try_from(events.t[i]).map_err(|_| {
            Error::invalid(
                "events",
                format!(
                    "time {} µs of event {i} does not fit a .dat file (0..2^32)",
                    events.t[i]
                ),
            )
        })?;
        if events.x[i] >= 1 << 14 || events.y[i] >= 1 << 14 {
            return Err(Error::invalid(
                "events",
                format!("coordinates of event {i} exceed the 14 bits of a .dat file"),
            ));
        }
        let p = u32::from(events.p[i] > 0);
        let data = u32::from(events.x[i]) | (u32::from(events.y[i]) << 14) | (p << 28);
        bytes.extend_from_slice(&t.to_le_bytes());
        bytes.extend_from_slice(&data.to_le_bytes());
    }
    Ok(bytes)
}

/// Writes events to a Prophesee `.dat` file, atomically.
pub fn write_prophesee(path: impl AsRef<Path>, events: &Events) -> Result<()> {
    crate::fsutil::write_atomic(path, &encode_prophesee(events)?)
}
