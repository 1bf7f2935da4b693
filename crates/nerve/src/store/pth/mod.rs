//! PyTorch `.pth` / `.pt` state dicts, read without PyTorch and without running their pickle.
//!
//! `torch.save` (PyTorch ≥ 1.6) writes a zip archive: `<name>/data.pkl` (a pickle of the state
//! dict whose tensors point at storages by key), `<name>/data/<key>` (each storage's raw
//! little-endian bytes) and `<name>/byteorder`. [`pickle`] interprets only the opcodes and
//! globals a state dict needs and refuses anything else by name, so a file that would run code
//! in `torch.load` is an error here, never executed. Views (offsets, strides, transposes) are
//! materialised; f32, f16, bf16 and f64 storages become f32, integer storages become f32 too.
//!
//! ```no_run
//! let dict = nerve::store::pth::read_pth("model.pth".as_ref()).unwrap();
//! for (name, t) in dict.iter() {
//!     println!("{name} {:?} {}", t.shape, t.dtype.name());
//! }
//! ```

pub mod pickle;
mod value;

pub use value::{Global, StorageDtype, StorageRef, TensorRef, Value};

use std::io::{Read, Seek};
use std::path::Path;

use half::{bf16, f16};

use crate::error::{Error, Result};

/// One tensor of a state dict, materialised contiguous (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct PthTensor {
    /// The storage's element type in the file.
    pub dtype: StorageDtype,
    /// Sizes.
    pub shape: Vec<usize>,
    /// Values, row-major, converted to f32.
    pub values: Vec<f32>,
}

/// The tensors of a `.pth` file in the order the file lists them, with dotted names
/// (`blocks.0.att.key.weight`; a nested dict such as `{"model": state_dict}` gives `model.…`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    tensors: Vec<(String, PthTensor)>,
}

impl StateDict {
    /// The tensors, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PthTensor)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&PthTensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Removes and returns the tensor called `name`.
    pub fn take(&mut self, name: &str) -> Option<PthTensor> {
        let i = self.tensors.iter().position(|(n, _)| n == name)?;
        Some(self.tensors.remove(i).1)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the file held no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of values over all tensors.
    pub fn num_values(&self) -> usize {
        self.tensors.iter().map(|(_, t)| t.values.len()).sum()
    }
}

impl IntoIterator for StateDict {
    type Item = (String, PthTensor);
    type IntoIter = std::vec::IntoIter<(String, PthTensor)>;

    /// The tensors by value, in file order.
    fn into_iter(self) -> Self::IntoIter {
        self.tensors.into_iter()
    }
}

/// Reads the state dict saved by `torch.save` at `path`.
pub fn read_pth(path: &Path) -> Result<StateDict> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_archive(std::io::BufReader::new(file), path)
}

/// Reads a state dict from the bytes of a `.pth` file; `path` names it in errors.
pub fn parse_pth(bytes: &[u8], path: &Path) -> Result<StateDict> {
    read_archive(std::io::Cursor::new(bytes), path)
}

/// A view may repeat storage elements (stride 0) but not blow one small storage up without
/// bound: at most this many times the storage's own size, plus a little.
const MAX_EXPANSION: u64 = 16;
/// Nested dicts deeper than this are not a state dict (and may be a cycle).
const MAX_NESTING: usize = 32;

fn read_archive<R: Read + Seek>(mut reader: R, path: &Path) -> Result<StateDict> {
    let fail = |msg: String| Error::format(path, msg);
    let mut magic = [0u8; 4];
    let n = reader.read(&mut magic).map_err(|e| Error::io(path, e))?;
    reader.rewind().map_err(|e| Error::io(path, e))?;
    if n >= 2 && magic[0] == 0x80 && magic[1] <= 5 {
        return Err(fail(
            "legacy (non-zip) torch.save format from PyTorch < 1.6 is not supported: re-save it \
             with a recent PyTorch (torch.save(torch.load(f), f))"
                .into(),
        ));
    }
    if n < 4 || magic != *b"PK\x03\x04" {
        return Err(fail("not a PyTorch zip archive (no zip signature)".into()));
    }
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|e| fail(format!("not a readable zip archive: {e}")))?;
    let names = zip
        .file_names()
        .map(|n| n.map(|s| s.into_owned()))
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(|e| fail(format!("unreadable entry name: {e}")))?;
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .min_by_key(|n| n.len())
        .ok_or_else(|| {
            if names.iter().any(|n| n.ends_with("constants.pkl")) {
                fail("a TorchScript archive (torch.jit.save), not a torch.save state dict".into())
            } else {
                fail("zip archive without data.pkl: not written by torch.save".into())
            }
        })?
        .clone();
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if let Some(order) = read_entry(&mut zip, &format!("{prefix}byteorder"), 64, path)? {
        if order.trim_ascii() != b"little" {
            return Err(fail(format!(
                "byte order '{}' is not supported (little-endian only)",
                String::from_utf8_lossy(order.trim_ascii())
            )));
        }
    }
    let program = read_entry(&mut zip, &pkl, 1 << 30, path)?.unwrap_or_default();
    let refs = pickle::unpickle_with(&program, |root| {
        let mut refs = Vec::new();
        collect(root, "", 0, &mut refs).map(|()| refs)
    })
    .and_then(|r| r)
    .map_err(|e| fail(format!("{pkl}: {e}")))?;
    let mut tensors = Vec::with_capacity(refs.len());
    for (name, t) in refs {
        let entry = format!("{prefix}data/{}", t.storage.key);
        let tensor =
            materialise(&mut zip, &entry, &t, path).map_err(|e| prefix_tensor(e, &name))?;
        tensors.push((name, tensor));
    }
    Ok(StateDict { tensors })
}

fn prefix_tensor(e: Error, name: &str) -> Error {
    match e {
        Error::Format { path, msg } => Error::Format {
            path,
            msg: format!("tensor '{name}': {msg}"),
        },
        other => other,
    }
}

/// Reads a whole archive entry of at most `limit` bytes; `None` when it is absent.
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
    path: &Path,
) -> Result<Option<Vec<u8>>> {
    let mut entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(Error::format(path, format!("{name}: {e}"))),
    };
    if entry.size() > limit {
        return Err(Error::format(
            path,
            format!(
                "{name}: {} bytes, more than the {limit} expected",
                entry.size()
            ),
        ));
    }
    // The declared size is only a hint: a corrupt header must not reserve gigabytes.
    let mut buf = Vec::with_capacity(entry.size().min(1 << 26) as usize);
    entry
        .by_ref()
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| Error::format(path, format!("{name}: {e}")))?;
    Ok(Some(buf))
}

/// Every tensor under `value`, named by the dict keys leading to it.
fn collect(
    value: &Value,
    name: &str,
    depth: usize,
    out: &mut Vec<(String, TensorRef)>,
) -> std::result::Result<(), String> {
    if depth > MAX_NESTING {
        return Err(format!("dicts nested more than {MAX_NESTING} deep"));
    }
    match value {
        Value::Tensor(t) => out.push((name.to_string(), (**t).clone())),
        Value::Dict(items) => {
            for (k, v) in items.borrow().iter() {
                let key = match k {
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let full = if name.is_empty() {
                    key
                } else {
                    format!("{name}.{key}")
                };
                collect(v, &full, depth + 1, out)?;
            }
        }
        _ => {}
    }
    if depth == 0 && out.is_empty() {
        return Err("the pickle holds no tensors (not a state dict)".into());
    }
    Ok(())
}

/// Reads the storage behind `t` and copies its view out, row-major.
fn materialise<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    entry: &str,
    t: &TensorRef,
    path: &Path,
) -> Result<PthTensor> {
    let fail = |msg: String| Error::format(path, msg);
    let elem = t.storage.dtype.size() as u64;
    let storage_bytes = t
        .storage
        .numel
        .checked_mul(elem)
        .ok_or_else(|| fail(format!("storage of {} elements overflows", t.storage.numel)))?;
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| {
            n <= t
                .storage
                .numel
                .saturating_mul(MAX_EXPANSION)
                .saturating_add(1 << 16)
        })
        .ok_or_else(|| {
            fail(format!(
                "shape {:?} is far larger than its storage",
                t.shape
            ))
        })?;
    if numel > 0 {
        // The last element the view reaches must lie inside the storage.
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |acc, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            });
        if last.is_none_or(|l| l >= t.storage.numel) {
            return Err(fail(format!(
                "view (offset {}, shape {:?}, stride {:?}) reaches outside its storage of {} elements",
                t.offset, t.shape, t.stride, t.storage.numel
            )));
        }
    }
    let bytes = read_entry(zip, entry, storage_bytes, path)?
        .ok_or_else(|| fail(format!("storage {entry} is missing from the archive")))?;
    if (bytes.len() as u64) < storage_bytes {
        return Err(fail(format!(
            "storage {entry} has {} bytes, {} {} values need {storage_bytes}",
            bytes.len(),
            t.storage.numel,
            t.storage.dtype.name()
        )));
    }
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let mut values = Vec::with_capacity(numel as usize);
    let contiguous = row_major(&t.shape) == t.stride;
    if numel > 0 && contiguous {
        let start = t.offset as usize;
        values.extend((start..start + numel as usize).map(|i| element(&bytes, i, t.storage.dtype)));
    } else if numel > 0 {
        let mut index = vec![0u64; shape.len()];
        loop {
            let at = t.offset + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>();
            values.push(element(&bytes, at as usize, t.storage.dtype));
            // Odometer increment over the row-major index.
            let mut dim = shape.len();
            loop {
                if dim == 0 {
                    break;
                }
                dim -= 1;
                index[dim] += 1;
                if index[dim] < t.shape[dim] {
                    break;
                }
                index[dim] = 0;
            }
            if dim == 0 && index.iter().all(|&i| i == 0) {
                break;
            }
        }
    }
    Ok(PthTensor {
        dtype: t.storage.dtype,
        shape,
        values,
    })
}

fn row_major(shape: &[u64]) -> Vec<u64> {
    let mut stride = vec![1u64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        stride[d] = stride[d + 1].saturating_mul(shape[d + 1]);
    }
    stride
}

fn element(bytes: &[u8], i: usize, dtype: StorageDtype) -> f32 {
    let n = dtype.size();
    let b = &bytes[i * n..i * n + n];
    match dtype {
        StorageDtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        StorageDtype::F64 => {
            f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }
        StorageDtype::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
        StorageDtype::BF16 => bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        StorageDtype::I64 => {
            i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }
        StorageDtype::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
        StorageDtype::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
        StorageDtype::I8 => b[0] as i8 as f32,
        StorageDtype::U8 => b[0] as f32,
        StorageDtype::Bool => (b[0] != 0) as u8 as f32,
    }
}
