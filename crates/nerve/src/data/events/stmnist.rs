//! ST-MNIST tactile recordings: MATLAB v5 `.mat` files holding one variable `spiketrain`.
//!
//! `spiketrain` is a 101×N matrix: rows 0–99 are the taxels of a 10×10 tactile sensor, each
//! column one time bin whose taxel entries are `+1` (ON), `-1` (OFF) or `0`, and row 100 is
//! the bin's timestamp in seconds. Every non-zero taxel entry is one event at address `a`
//! (the row), `x = a % 10`, `y = a / 10`, `t = round(seconds · 1e6)` µs.
//!
//! The MAT v5 reader here is deliberately small: it finds one named numeric matrix, looking
//! inside zlib-compressed (`miCOMPRESSED`) elements, and converts any numeric storage type to
//! `f64` (MATLAB may store a double matrix with a narrower integer type).

use std::io::Read;
use std::path::Path;

use super::Events;
use crate::error::{Error, Result};

/// ST-MNIST sensor size `(width, height)`: a 10×10 taxel grid.
pub const STMNIST_SENSOR: (u16, u16) = (10, 10);

/// The variable ST-MNIST files store their events in.
const VARIABLE: &str = "spiketrain";
/// Rows of `spiketrain`: 100 taxels plus the timestamp row.
const ROWS: usize = 101;
/// MAT v5 data types used below.
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
/// Decompressed elements larger than this are refused, so a tiny corrupt file cannot
/// allocate without bound.
const MAX_INFLATED: u64 = 1 << 30;

/// Reads an ST-MNIST `.mat` file.
pub fn read_stmnist(path: impl AsRef<Path>) -> Result<Events> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_stmnist(&bytes, path)
}

/// Decodes ST-MNIST `.mat` bytes; `path` only names the source in errors.
///
/// Events come out column by column (time order), taxels in row order within a column.
pub fn parse_stmnist(bytes: &[u8], path: &Path) -> Result<Events> {
    let bad = |msg: String| Error::format(path, format!("variable '{VARIABLE}': {msg}"));
    let (dims, data) = mat_find_matrix(bytes, path, VARIABLE)?;
    if dims.len() != 2 || dims[0] != ROWS {
        return Err(bad(format!(
            "expected a {ROWS}xN matrix, got {}",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        )));
    }
    let cols = dims[1];
    let (mut x, mut y, mut t, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // MAT files store matrices column-major, so column `c` is `data[c * ROWS..][..ROWS]`.
    for (c, col) in data.chunks_exact(ROWS).take(cols).enumerate() {
        let secs = col[ROWS - 1];
        let us = (secs * 1e6).round();
        if !us.is_finite() || us.abs() > 9.0e18 {
            return Err(bad(format!("column {c} has timestamp {secs} s")));
        }
        for (a, &v) in col[..ROWS - 1].iter().enumerate() {
            if v.is_nan() {
                return Err(bad(format!("column {c}, row {a} is NaN")));
            }
            if v != 0.0 {
                x.push((a % 10) as u16);
                y.push((a / 10) as u16);
                t.push(us as i64);
                p.push(if v > 0.0 { 1 } else { -1 });
            }
        }
    }
    Events::new(x, y, t, p, STMNIST_SENSOR).map_err(|e| Error::format(path, e.to_string()))
}

/// Byte order of a MAT file, from the header's endian indicator.
#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    /// Decodes `n`-byte numbers of MAT type `ty` to `f64`, or `None` for a non-numeric type.
    fn numbers(self, ty: u32, b: &[u8]) -> Option<Vec<f64>> {
        macro_rules! conv {
            ($t:ty, $n:expr) => {
                b.chunks_exact($n)
                    .map(|c| {
                        let a: [u8; $n] = c.try_into().expect("chunks_exact yields whole numbers");
                        (match self {
                            Endian::Little => <$t>::from_le_bytes(a),
                            Endian::Big => <$t>::from_be_bytes(a),
                        }) as f64
                    })
                    .collect()
            };
        }
        Some(match ty {
            1 => conv!(i8, 1),
            2 => conv!(u8, 1),
            3 => conv!(i16, 2),
            4 => conv!(u16, 2),
            5 => conv!(i32, 4),
            6 => conv!(u32, 4),
            7 => conv!(f32, 4),
            9 => conv!(f64, 8),
            12 => conv!(i64, 8),
            13 => conv!(u64, 8),
            _ => return None,
        })
    }
}

/// Byte size of one number of MAT type `ty`.
fn type_size(ty: u32) -> Option<usize> {
    Some(match ty {
        1 | 2 => 1,
        3 | 4 => 2,
        5..=7 => 4,
        9 | 12 | 13 => 8,
        _ => return None,
    })
}

/// One data element: its type, its payload, and where the next element starts.
fn element<'a>(
    bytes: &'a [u8],
    pos: usize,
    e: Endian,
    path: &Path,
) -> Result<(u32, &'a [u8], usize)> {
    let truncated = || Error::format(path, format!("truncated data element at byte {pos}"));
    let tag = bytes.get(pos..pos + 8).ok_or_else(truncated)?;
    let first = e.u32(tag);
    if first >> 16 != 0 {
        // Small element: size in the upper half, type in the lower, payload in 4 bytes.
        let n = (first >> 16) as usize;
        if n > 4 {
            return Err(Error::format(
                path,
                format!("small data element at byte {pos} claims {n} bytes"),
            ));
        }
        return Ok((first & 0xffff, &tag[4..4 + n], pos + 8));
    }
    let n = e.u32(&tag[4..]) as usize;
    let start = pos + 8;
    let payload = start
        .checked_add(n)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(truncated)?;
    // Compressed elements are not padded; all others are padded to 8 bytes.
    let next = if first == MI_COMPRESSED {
        start + n
    } else {
        start + n.div_ceil(8) * 8
    };
    Ok((first, payload, next))
}

/// Finds numeric matrix `name` in a MAT v5 file, returning its dims and column-major values.
fn mat_find_matrix(bytes: &[u8], path: &Path, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
    if bytes.len() < 128 || !bytes.starts_with(b"MATLAB 5.0 MAT-file") {
        return Err(Error::format(
            path,
            "not a MATLAB v5 .mat file (missing 128-byte 'MATLAB 5.0 MAT-file' header)",
        ));
    }
    let e = match &bytes[126..128] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        other => {
            return Err(Error::format(
                path,
                format!("bad MAT endian indicator {other:?}"),
            ))
        }
    };
    let mut pos = 128;
    while pos < bytes.len() {
        let (ty, payload, next) = element(bytes, pos, e, path)?;
        pos = next;
        let inflated;
        let (ty, payload) = if ty == MI_COMPRESSED {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(payload)
                .take(MAX_INFLATED)
                .read_to_end(&mut out)
                .map_err(|err| Error::format(path, format!("corrupt compressed element: {err}")))?;
            inflated = out;
            let (ty, inner, _) = element(&inflated, 0, e, path)?;
            (ty, inner)
        } else {
            (ty, payload)
        };
        if ty != MI_MATRIX {
            continue;
        }
        if let Some(found) = matrix(payload, e, path, name)? {
            return Ok(found);
        }
    }
    Err(Error::format(path, format!("no variable '{name}'")))
}

/// Decodes an `miMATRIX` payload if it is the variable `name`; `None` for other variables.
fn matrix(m: &[u8], e: Endian, path: &Path, name: &str) -> Result<Option<(Vec<usize>, Vec<f64>)>> {
    let bad = |msg: &str| Error::format(path, format!("variable '{name}': {msg}"));
    let (_, flags, pos) = element(m, 0, e, path)?;
    let (_, dims_raw, pos) = element(m, pos, e, path)?;
    let (_, name_raw, pos) = element(m, pos, e, path)?;
    if name_raw != name.as_bytes() {
        return Ok(None);
    }
    if flags.len() < 4 {
        return Err(bad("truncated array flags"));
    }
    let flags = e.u32(flags);
    let class = flags & 0xff;
    // Classes 6..=15 are double, single and the integer types; others are cells, structs,
    // chars, sparse matrices and objects.
    if !(6..=15).contains(&class) {
        return Err(bad(&format!("not a numeric matrix (MATLAB class {class})")));
    }
    if flags & 0x0800 != 0 {
        return Err(bad("complex matrices are not supported"));
    }
    let dims: Vec<usize> = dims_raw
        .chunks_exact(4)
        .map(|c| e.u32(c) as i32)
        .map(|d| usize::try_from(d).map_err(|_| bad(&format!("negative dimension {d}"))))
        .collect::<Result<_>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("dimensions overflow"))?;
    let (ty, real, _) = element(m, pos, e, path)?;
    let size = type_size(ty).ok_or_else(|| bad(&format!("non-numeric data type {ty}")))?;
    if real.len() != count.saturating_mul(size) {
        return Err(bad(&format!(
            "holds {} bytes, dimensions need {count} values of {size} bytes",
            real.len()
        )));
    }
    let data = e
        .numbers(ty, real)
        .ok_or_else(|| bad(&format!("non-numeric data type {ty}")))?;
    Ok(Some((dims, data)))
}
