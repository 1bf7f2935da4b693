//! IDX files, the format of MNIST and Fashion-MNIST: reading (raw or gzip) and writing.
//!
//! An IDX file is a big-endian header `0x00 0x00 <dtype> <ndims>`, then `ndims` u32 sizes,
//! then the elements in row-major order. Only unsigned bytes (dtype 0x08) are supported,
//! which is all the MNIST family uses.

use std::io::{Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::{Error, Result};

/// The first two bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The IDX element-type code for unsigned bytes, the only one supported.
pub const DTYPE_U8: u8 = 0x08;

/// An n-dimensional array of unsigned bytes read from or written to an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, outermost first (e.g. `[N, rows, cols]` for images).
    pub dims: Vec<usize>,
    /// The elements in row-major order; its length is the product of `dims`.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Builds an array, checking that `data` holds exactly the product of `dims` elements.
    pub fn new(dims: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        if dims.is_empty() || dims.len() > usize::from(u8::MAX) {
            return Err(Error::invalid(
                "IDX dimensions",
                format!("expected 1 to 255 dimensions, got {}", dims.len()),
            ));
        }
        let expected = element_count(&dims).ok_or_else(|| {
            Error::invalid(
                "IDX dimensions",
                format!("{dims:?} overflow the address space"),
            )
        })?;
        if data.len() != expected {
            return Err(Error::invalid(
                "IDX data",
                format!(
                    "dimensions {dims:?} need {expected} bytes, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Self { dims, data })
    }
}

/// Reads an IDX file, gzip-compressed or raw (detected from its first bytes).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_idx(&bytes, path)
}

/// Parses IDX bytes, gzip-compressed or raw; `origin` names the source in error messages.
pub fn parse_idx(bytes: &[u8], origin: &Path) -> Result<IdxArray> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let raw = gunzip(bytes, origin)?;
        parse_raw_idx(&raw, origin)
    } else {
        parse_raw_idx(bytes, origin)
    }
}

/// Decompresses a whole gzip stream (all members), naming `origin` on failure.
fn gunzip(bytes: &[u8], origin: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "truncated gzip stream"
            } else {
                "corrupt gzip stream"
            };
            Error::format(
                origin,
                format!("{what} after {} decompressed bytes: {e}", out.len()),
            )
        })?;
    Ok(out)
}

/// Parses uncompressed IDX bytes.
fn parse_raw_idx(bytes: &[u8], origin: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::format(
            origin,
            format!(
                "truncated IDX header: expected at least 4 bytes, found {}",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            origin,
            format!(
                "not an IDX file: magic number 0x{:02x}{:02x}{:02x}{:02x} does not start with 0x0000",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    let dtype = bytes[2];
    if dtype != DTYPE_U8 {
        let msg = match dtype_name(dtype) {
            Some(name) => format!(
                "unsupported IDX element type 0x{dtype:02x} ({name}); only 0x08 (unsigned byte) is supported"
            ),
            None => format!("unknown IDX element type 0x{dtype:02x}; only 0x08 (unsigned byte) is supported"),
        };
        return Err(Error::format(origin, msg));
    }
    let ndims = usize::from(bytes[3]);
    if ndims == 0 {
        return Err(Error::format(origin, "IDX file declares 0 dimensions"));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(Error::format(
            origin,
            format!(
                "truncated IDX header: expected {header_len} bytes for {ndims} dimensions, found {}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = element_count(&dims)
        .ok_or_else(|| Error::format(origin, format!("IDX dimensions {dims:?} are too large")))?;
    let payload = &bytes[header_len..];
    if payload.len() < expected {
        return Err(Error::format(
            origin,
            format!(
                "truncated IDX file: expected {expected} bytes of data, found {}",
                payload.len()
            ),
        ));
    }
    if payload.len() > expected {
        return Err(Error::format(
            origin,
            format!(
                "trailing data in IDX file: expected {expected} bytes of data for dimensions {dims:?}, found {}",
                payload.len()
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: payload.to_vec(),
    })
}

/// The product of `dims`, or `None` on overflow.
fn element_count(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The name of an IDX element type other than unsigned byte.
fn dtype_name(dtype: u8) -> Option<&'static str> {
    match dtype {
        0x09 => Some("signed byte"),
        0x0B => Some("16-bit integer"),
        0x0C => Some("32-bit integer"),
        0x0D => Some("32-bit float"),
        0x0E => Some("64-bit float"),
        _ => None,
    }
}

/// Encodes an array as IDX bytes, gzip-compressed when `gzip` is true.
pub fn encode_idx(array: &IdxArray, gzip: bool) -> Result<Vec<u8>> {
    // Re-validate: the fields are public, so the array may have been changed after `new`.
    let array = IdxArray::new(array.dims.clone(), array.data.clone())?;
    let mut raw = Vec::with_capacity(4 + 4 * array.dims.len() + array.data.len());
    // `new` bounds the number of dimensions by 255, so the cast is exact.
    raw.extend_from_slice(&[0, 0, DTYPE_U8, array.dims.len() as u8]);
    for &d in &array.dims {
        let d = u32::try_from(d).map_err(|_| {
            Error::invalid(
                "IDX dimensions",
                format!("size {d} does not fit in 32 bits"),
            )
        })?;
        raw.extend_from_slice(&d.to_be_bytes());
    }
    raw.extend_from_slice(&array.data);
    if !gzip {
        return Ok(raw);
    }
    // GzEncoder writes mtime 0 and no file name, so the output is byte-reproducible.
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&raw)
        .and_then(|_| enc.finish())
        .map_err(|e| Error::invalid("IDX data", format!("gzip compression failed: {e}")))
}

/// Writes an array as an IDX file, gzip-compressed when `gzip` is true.
pub fn write_idx(path: &Path, array: &IdxArray, gzip: bool) -> Result<()> {
    let bytes = encode_idx(array, gzip)?;
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> &'static Path {
        Path::new("test.idx")
    }

    fn sample() -> IdxArray {
        IdxArray::new(vec![2, 3, 2], (0..12).collect()).unwrap()
    }

    #[test]
    fn round_trips_raw_and_gzip() {
        for gzip in [false, true] {
            let bytes = encode_idx(&sample(), gzip).unwrap();
            assert_eq!(bytes.starts_with(&GZIP_MAGIC), gzip);
            assert_eq!(parse_idx(&bytes, origin()).unwrap(), sample());
        }
    }

    #[test]
    fn raw_header_is_big_endian() {
        let bytes = encode_idx(&IdxArray::new(vec![1], vec![7]).unwrap(), false).unwrap();
        assert_eq!(bytes, [0, 0, 8, 1, 0, 0, 0, 1, 7]);
    }

    #[test]
    fn truncated_payload_is_reported() {
        let bytes = encode_idx(&sample(), false).unwrap();
        let err = parse_idx(&bytes[..bytes.len() - 5], origin())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.idx: truncated IDX file: expected 12 bytes of data, found 7"),
            "{err}"
        );
    }

    #[test]
    fn truncated_header_is_reported() {
        let err = parse_idx(&[0, 0, 8, 3, 0, 0], origin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated IDX header"), "{err}");
        let err = parse_idx(&[0, 0], origin()).unwrap_err().to_string();
        assert!(err.contains("truncated IDX header"), "{err}");
    }

    #[test]
    fn trailing_data_is_reported() {
        let mut bytes = encode_idx(&sample(), false).unwrap();
        bytes.push(0);
        let err = parse_idx(&bytes, origin()).unwrap_err().to_string();
        assert!(err.contains("trailing data"), "{err}");
    }

    #[test]
    fn bad_magic_and_dtypes_are_reported() {
        let err = parse_idx(b"PK\x03\x04rest", origin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an IDX file"), "{err}");
        let err = parse_idx(&[0, 0, 0x0D, 1, 0, 0, 0, 0], origin())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unsupported IDX element type 0x0d (32-bit float)"),
            "{err}"
        );
        let err = parse_idx(&[0, 0, 0x42, 1, 0, 0, 0, 0], origin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown IDX element type 0x42"), "{err}");
        let err = parse_idx(&[0, 0, 8, 0], origin()).unwrap_err().to_string();
        assert!(err.contains("0 dimensions"), "{err}");
    }

    #[test]
    fn huge_dimensions_do_not_allocate_or_panic() {
        let mut bytes = vec![0, 0, 8, 4];
        for _ in 0..4 {
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        let err = parse_idx(&bytes, origin()).unwrap_err().to_string();
        assert!(
            err.contains("too large") || err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_and_truncated_gzip_are_reported() {
        let gz = encode_idx(&sample(), true).unwrap();
        let err = parse_idx(&gz[..gz.len() / 2], origin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.idx: truncated gzip stream"), "{err}");
        let mut bad = gz.clone();
        for b in &mut bad[10..gz.len() - 8] {
            *b ^= 0x5a;
        }
        let err = parse_idx(&bad, origin()).unwrap_err().to_string();
        assert!(
            err.contains("test.idx: corrupt gzip stream") || err.contains("truncated gzip"),
            "{err}"
        );
    }

    #[test]
    fn new_rejects_inconsistent_arrays() {
        assert!(IdxArray::new(vec![2, 2], vec![0; 3]).is_err());
        assert!(IdxArray::new(vec![], vec![]).is_err());
        assert!(IdxArray::new(vec![0, 28, 28], vec![]).is_ok());
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_idx(Path::new("/nonexistent/nerve/x.idx"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/nerve/x.idx"), "{err}");
    }
}
