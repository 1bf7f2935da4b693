//! AEDAT event files from jAER / cAER: versions 2.0 and 3.1 here; 4.0 (DV) in
//! [`super::aedat4`], reached through the same [`read_aedat`] / [`parse_aedat`].
//!
//! - **AEDAT 2.0**: header lines starting with `#` (the first is `#!AER-DAT2.0`), then
//!   big-endian 8-byte records of a u32 address and a u32 timestamp (µs). Addresses are decoded
//!   as a **DVS128** camera (128×128): `x = 127 - ((a >> 1) & 0x7F)`, `y = (a >> 8) & 0x7F`,
//!   polarity `a & 1` (1 = ON). DAVIS cameras use other address layouts, so a file whose
//!   `# AEChip:` header line names a chip other than the DVS128 is refused when it holds
//!   events rather than decoded wrongly. The sensor size is the chip's ([`chip_sensor`]:
//!   DVS128, DAVIS240, DAVIS346, DAVIS640), 0×0 (unknown) for a chip not in that list, and
//!   the DVS128's when there is no `AEChip` line.
//! - **AEDAT 3.1**: header lines until `#!END-HEADER`, then packets, each a 28-byte
//!   little-endian header (u16 type, u16 source, u32 event size, u32 timestamp offset, u32
//!   timestamp overflow, u32 capacity, u32 number, u32 valid) and `size · capacity` bytes of
//!   events. Polarity events (type 1, 8 bytes: u32 data with bit 0 valid, bit 1 polarity,
//!   bits 2–16 y, bits 17–31 x; i32 timestamp) are read, invalid ones dropped, other packet
//!   types skipped. `t = (overflow << 31) | timestamp`.

use std::path::Path;

use super::{EventFormat, Events};
use crate::error::{Error, Result};

/// DVS128 sensor size, that of every AEDAT 2.0 file with events.
pub const DVS128_SENSOR: (u16, u16) = (128, 128);

/// Sensor sizes of the DAVIS chip classes an `AEChip` line may name, by the start of the class
/// name (lower case), as jAER's `DAVIS240BaseCamera`, `Davis346BaseCamera` and `Davis640`
/// classes define them.
const DAVIS_SENSORS: [(&str, (u16, u16)); 3] = [
    ("davis240", (240, 180)),
    ("davis346", (346, 260)),
    ("davis640", (640, 480)),
];

/// Bytes of an AEDAT 3.1 packet header.
const PACKET_HEADER: usize = 28;
/// AEDAT 3.1 event type of polarity events.
const POLARITY_EVENT: u16 = 1;

/// Reads an AEDAT 2.0, 3.1 or 4.0 file, choosing the version from its first line.
pub fn read_aedat(path: impl AsRef<Path>) -> Result<Events> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_aedat(&bytes, path)
}

/// Decodes AEDAT 2.0, 3.1 or 4.0 bytes; `path` only names the source in errors.
pub fn parse_aedat(bytes: &[u8], path: &Path) -> Result<Events> {
    match detect_aedat(bytes, path)? {
        EventFormat::Aedat3 => parse_aedat3(bytes, path),
        EventFormat::Aedat4 => super::aedat4::parse_aedat4(bytes, path),
        _ => parse_aedat2(bytes, path),
    }
}

/// The AEDAT version named by the first line: [`EventFormat::Aedat2`],
/// [`EventFormat::Aedat3`] or [`EventFormat::Aedat4`]; an error for other versions or a
/// non-AEDAT file.
pub fn detect_aedat(bytes: &[u8], path: &Path) -> Result<EventFormat> {
    if bytes.starts_with(b"#!AER-DAT2.0") {
        Ok(EventFormat::Aedat2)
    } else if bytes.starts_with(b"#!AER-DAT3.1") {
        Ok(EventFormat::Aedat3)
    } else if bytes.starts_with(b"#!AER-DAT4.0") {
        Ok(EventFormat::Aedat4)
    } else if bytes.starts_with(b"#!AER-DAT") {
        let line: String = String::from_utf8_lossy(&bytes[..bytes.len().min(20)])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        Err(Error::format(
            path,
            format!("unsupported AEDAT version '{line}': only 2.0, 3.1 and 4.0 are read"),
        ))
    } else {
        Err(Error::format(
            path,
            "not an AEDAT file: missing '#!AER-DAT' first line",
        ))
    }
}

/// Splits off the `#` header lines, returning them (without `#` and line ends) and the byte
/// offset of the data. With `end` set, the header must close with that line.
fn header(bytes: &[u8], path: &Path, end: Option<&str>) -> Result<(Vec<String>, usize)> {
    let mut lines = Vec::new();
    let mut pos = 0;
    // AEDAT 2.0 has no end marker: a first record whose top byte is '#' would be read as a
    // header line, an ambiguity of the format itself that jAER shares.
    while bytes.get(pos) == Some(&b'#') {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            return Err(Error::format(
                path,
                "truncated header: no newline after '#' line",
            ));
        };
        let line = String::from_utf8_lossy(&bytes[pos + 1..pos + nl]);
        let line = line.trim_end_matches('\r').to_string();
        pos += nl + 1;
        if end.is_some_and(|e| line == e) {
            return Ok((lines, pos));
        }
        lines.push(line);
    }
    match end {
        Some(e) => Err(Error::format(
            path,
            format!("truncated header: no '#{e}' line"),
        )),
        None => Ok((lines, pos)),
    }
}

/// Decodes AEDAT 2.0 bytes as DVS128 events; see the module docs.
pub fn parse_aedat2(bytes: &[u8], path: &Path) -> Result<Events> {
    let (lines, pos) = header(bytes, path, None)?;
    let body = &bytes[pos..];
    if !body.len().is_multiple_of(8) {
        return Err(Error::format(
            path,
            format!(
                "truncated file: trailing partial record of {} bytes",
                body.len() % 8
            ),
        ));
    }
    let chip = chip_line(&lines);
    let sensor = match chip {
        Some(chip) if !body.is_empty() && !is_dvs128(chip) => {
            return Err(Error::format(
                path,
                format!("AEDAT 2.0 from chip '{chip}': only DVS128 addresses are supported"),
            ));
        }
        Some(chip) if body.is_empty() => chip_sensor(chip).unwrap_or((0, 0)),
        _ => DVS128_SENSOR,
    };
    let n = body.len() / 8;
    let (mut x, mut y, mut t, mut p) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in body.chunks_exact(8) {
        let addr = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let ts = u32::from_be_bytes([r[4], r[5], r[6], r[7]]);
        x.push(127 - ((addr >> 1) & 0x7f) as u16);
        y.push(((addr >> 8) & 0x7f) as u16);
        t.push(i64::from(ts));
        p.push(if addr & 1 == 1 { 1 } else { -1 });
    }
    Events::new(x, y, t, p, sensor).map_err(|e| Error::format(path, e.to_string()))
}

/// The value of the first `AEChip:` header line, trimmed.
fn chip_line(lines: &[String]) -> Option<&str> {
    lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("AEChip:"))
        .map(str::trim)
}

/// Whether an `AEChip` value names a DVS128, the one address layout this reader decodes.
fn is_dvs128(chip: &str) -> bool {
    chip.to_ascii_lowercase().contains("dvs128")
}

/// The chip named by an AEDAT 2.0 file's `# AEChip:` header line (e.g.
/// `eu.seebetter.ini.chips.davis.Davis346red`), or `None` without one or for another format.
pub fn aedat2_chip(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(b"#!AER-DAT2.0") {
        return None;
    }
    let (lines, _) = header(bytes, Path::new(""), None).ok()?;
    chip_line(&lines).map(str::to_string)
}

/// The sensor size `(width, height)` of a jAER chip class, full (`ch.unizh.ini.jaer.chip.
/// retina.DVS128`) or short (`Davis346red`): DVS128 128×128, DAVIS240A/B/C 240×180, every
/// DAVIS346 variant 346×260, DAVIS640 640×480; `None` for other chips.
pub fn chip_sensor(chip: &str) -> Option<(u16, u16)> {
    if is_dvs128(chip) {
        return Some(DVS128_SENSOR);
    }
    let name = chip.split_whitespace().next().unwrap_or_default();
    let class = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    DAVIS_SENSORS
        .iter()
        .find(|(prefix, _)| class.starts_with(prefix))
        .map(|&(_, size)| size)
}

/// The sensor size an AEDAT 3.1 header declares (`sizeX` and `sizeY`), or `None` when it
/// gives none (the reader then uses the span of the events) or for another format.
pub fn aedat3_header_sensor(bytes: &[u8]) -> Option<(u16, u16)> {
    if !bytes.starts_with(b"#!AER-DAT3.1") {
        return None;
    }
    let (lines, _) = header(bytes, Path::new(""), Some("!END-HEADER")).ok()?;
    declared_size(&lines)
}

/// `sizeX` and `sizeY` from AEDAT 3.1 header lines, when both are present.
fn declared_size(lines: &[String]) -> Option<(u16, u16)> {
    header_number(lines, "sizex").zip(header_number(lines, "sizey"))
}

/// The first number after `key` (case-insensitive) on any header line, e.g. `sizeX` in
/// `dvsSizeX" type="short">240<` or `sizeX: 240`.
fn header_number(lines: &[String], key: &str) -> Option<u16> {
    lines.iter().find_map(|l| {
        let lower = l.to_ascii_lowercase();
        let rest = &lower[lower.find(key)? + key.len()..];
        let digits: String = rest
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// Decodes AEDAT 3.1 bytes, keeping valid polarity events; see the module docs.
///
/// The sensor size comes from the header's `sizeX`/`sizeY` when both are present, otherwise
/// from the largest coordinates seen plus one.
pub fn parse_aedat3(bytes: &[u8], path: &Path) -> Result<Events> {
    let (lines, mut pos) = header(bytes, path, Some("!END-HEADER"))?;
    let declared = declared_size(&lines);
    let (mut x, mut y, mut t, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    while pos < bytes.len() {
        let Some(h) = bytes.get(pos..pos + PACKET_HEADER) else {
            return Err(Error::format(
                path,
                format!("truncated packet header at byte {pos}"),
            ));
        };
        let kind = u16::from_le_bytes([h[0], h[1]]);
        let (size, overflow) = (u32_at(h, 4) as usize, u32_at(h, 12));
        let (capacity, number) = (u32_at(h, 16) as usize, u32_at(h, 20) as usize);
        let start = pos + PACKET_HEADER;
        let Some(payload) = size
            .checked_mul(capacity)
            .and_then(|n| start.checked_add(n))
            .and_then(|end| bytes.get(start..end))
        else {
            return Err(Error::format(
                path,
                format!(
                    "truncated packet at byte {pos}: {capacity} events of {size} bytes \
                     overrun the file"
                ),
            ));
        };
        pos = start + payload.len();
        if kind != POLARITY_EVENT {
            continue;
        }
        if size != 8 || number > capacity {
            return Err(Error::format(
                path,
                format!(
                    "bad polarity packet at byte {}: event size {size} (expected 8), \
                     {number} events in capacity {capacity}",
                    start - PACKET_HEADER
                ),
            ));
        }
        for r in payload.chunks_exact(8).take(number) {
            let data = u32_at(r, 0);
            let ts = i32::from_le_bytes([r[4], r[5], r[6], r[7]]);
            if data & 1 == 0 {
                continue;
            }
            if ts < 0 {
                return Err(Error::format(
                    path,
                    format!("polarity event with negative timestamp {ts}"),
                ));
            }
            x.push((data >> 17) as u16);
            y.push(((data >> 2) & 0x7fff) as u16);
            t.push((i64::from(overflow) << 31) | i64::from(ts));
            p.push(if data & 2 != 0 { 1 } else { -1 });
        }
    }
    // Coordinates are at most 0x7fff, so max + 1 always fits in u16.
    let sensor = declared.unwrap_or_else(|| {
        (
            x.iter().max().map_or(0, |m| m + 1),
            y.iter().max().map_or(0, |m| m + 1),
        )
    });
    Events::new(x, y, t, p, sensor).map_err(|e| Error::format(path, e.to_string()))
}
