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
/// The sensor size comes from the header's `Width`/`Height` when both are present, otherwise
/// from the largest coordinates seen plus one (N-CARS headers carry no size).
pub fn parse_prophesee(bytes: &[u8], path: &Path) -> Result<Events> {
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
    // Coordinates are at most 0x3fff, so max + 1 always fits in u16.
    let w = width.unwrap_or_else(|| x.iter().max().map_or(0, |m| m + 1));
    let h = height.unwrap_or_else(|| y.iter().max().map_or(0, |m| m + 1));
    Events::new(x, y, t, p, (w, h)).map_err(|e| Error::format(path, e.to_string()))
}
