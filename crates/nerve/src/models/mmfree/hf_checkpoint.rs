//! Reads and writes MatMul-free LM checkpoints in the Hugging Face layout: `config.json` plus
//! either `model.safetensors` or shards listed in `model.safetensors.index.json`.
//!
//! Tensors stored as BF16, F16 or F32 are converted to `f32`. Files are memory-mapped, so a
//! 1.5 GB bf16 checkpoint is read from disk once, straight into the `f32` buffers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::config::MmFreeConfig;
use super::weights::{tensor_specs, HostTensor, MmFreeWeights};
use crate::error::{Error, Result};
use crate::fsutil::{write_atomic, write_atomic_with};

/// The configuration file of a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
/// The single-file weights of a checkpoint directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The index of a sharded checkpoint (`weight_map`: tensor name → shard file).
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Storage dtype for [`save_dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    /// 32-bit floats: exact.
    F32,
    /// bfloat16 (round to nearest even), as the published checkpoints.
    Bf16,
}

impl SaveDtype {
    fn dtype(self) -> Dtype {
        match self {
            SaveDtype::F32 => Dtype::F32,
            SaveDtype::Bf16 => Dtype::BF16,
        }
    }

    fn bytes(self) -> usize {
        match self {
            SaveDtype::F32 => 4,
            SaveDtype::Bf16 => 2,
        }
    }

    fn torch_name(self) -> &'static str {
        match self {
            SaveDtype::F32 => "float32",
            SaveDtype::Bf16 => "bfloat16",
        }
    }
}

/// The index file's content (other keys, such as `metadata`, are ignored).
#[derive(Deserialize)]
struct Index {
    weight_map: BTreeMap<String, String>,
}

/// safetensors' own limit on a header's length.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// How many tensors, at most, the file listing them can name: a safetensors header spends more
/// than 40 bytes per tensor (`"a":{"dtype":"U8","shape":[],"data_offsets":[0,0]}`), an index's
/// weight map more than 8 (`"a":"b",`). `None` when the file is too short to declare a header
/// (loading then says it is truncated).
fn listing_room(path: &Path, index: bool) -> Result<Option<u64>> {
    if index {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        return Ok(Some(len / 8));
    }
    let mut head = [0u8; 8];
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    match std::io::Read::read_exact(&mut file, &mut head) {
        Ok(()) => Ok(Some(u64::from_le_bytes(head).min(MAX_HEADER_BYTES) / 40)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// How many tensors `config` implies, counted from a one-layer model instead of listing every
/// layer (`None` on overflow).
fn implied_tensor_count(config: &MmFreeConfig) -> Option<usize> {
    let mut probe = config.clone();
    probe.num_hidden_layers = 0;
    let fixed = tensor_specs(&probe).len();
    probe.num_hidden_layers = 1;
    let per_layer = tensor_specs(&probe).len() - fixed;
    per_layer
        .checked_mul(config.num_hidden_layers)?
        .checked_add(fixed)
}

/// Loads the checkpoint in `dir`: `config.json` and `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json`. Every error names the file, and the tensor where one is at
/// fault (missing, misshapen, of an unsupported dtype, or not part of the model).
pub fn load_dir(dir: &Path) -> Result<MmFreeWeights> {
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        return Err(ckpt(
            &config_path,
            "not found: a MatMul-free LM checkpoint directory holds config.json and \
             model.safetensors (or model.safetensors.index.json with its shards)",
        ));
    }
    let config = MmFreeConfig::load(&config_path)?;

    // Where each tensor is stored, and the file that said so (for error messages).
    let single = dir.join(MODEL_FILE);
    let index_path = dir.join(INDEX_FILE);
    let (locations, listed_in): (BTreeMap<String, PathBuf>, PathBuf) = if single.is_file() {
        (BTreeMap::new(), single.clone())
    } else if index_path.is_file() {
        let text = std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
        let index: Index = serde_json::from_str(&text).map_err(|e| {
            ckpt(
                &index_path,
                format!("not a safetensors index (expected a weight_map object): {e}"),
            )
        })?;
        let mut locations = BTreeMap::new();
        for (name, file) in index.weight_map {
            // A shard name is a plain file name in the same directory; refuse anything that
            // could point elsewhere.
            let plain = Path::new(&file).file_name().map(|f| f == file.as_str());
            if plain != Some(true) {
                return Err(ckpt(
                    &index_path,
                    format!("tensor '{name}' maps to '{file}', which is not a file name"),
                ));
            }
            locations.insert(name, dir.join(file));
        }
        (locations, index_path.clone())
    } else {
        return Err(ckpt(
            &single,
            format!("not found, and no {INDEX_FILE} for a sharded checkpoint either"),
        ));
    };

    // A corrupt config.json can claim billions of layers: before listing the tensors it implies,
    // check that the JSON that lists the stored tensors is long enough to hold that many.
    if let Some(room) = listing_room(&listed_in, !locations.is_empty())? {
        if implied_tensor_count(&config).is_none_or(|n| n as u64 > room) {
            return Err(ckpt(
                &config_path,
                format!(
                    "num_hidden_layers {} implies more tensors than {} can list",
                    config.num_hidden_layers,
                    listed_in.display()
                ),
            ));
        }
    }

    let specs = tensor_specs(&config);
    let known: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    // Files to open, each with the tensors expected in it.
    let mut files: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    if locations.is_empty() {
        files.insert(single.clone(), Vec::new());
    } else {
        if let Some(extra) = locations.keys().find(|n| !known.contains(n.as_str())) {
            return Err(ckpt(
                &listed_in,
                format!("tensor '{extra}' is not part of an HGRNBit model"),
            ));
        }
        for spec in &specs {
            let file = locations
                .get(&spec.name)
                .ok_or_else(|| ckpt(&listed_in, format!("tensor '{}' is missing", spec.name)))?;
            files.entry(file.clone()).or_default().push(&spec.name);
        }
    }

    let mut tensors = BTreeMap::new();
    for (path, expected) in &files {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && path != &single {
                ckpt(path, format!("shard listed in {INDEX_FILE} is missing"))
            } else {
                Error::io(path, e)
            }
        })?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < 8 {
            // Mapping an empty file fails with an OS error that would not say what is wrong.
            return Err(ckpt(
                path,
                format!("not a valid safetensors file (truncated or corrupt): {len} bytes"),
            ));
        }
        // SAFETY: the map is only read while this function runs; like every mmap-based
        // loader, we accept that another process truncating the file meanwhile is undefined.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&map).map_err(|e| {
            ckpt(
                path,
                format!("not a valid safetensors file (truncated or corrupt): {e}"),
            )
        })?;
        let names: Vec<String> = if locations.is_empty() {
            // Single file: every tensor in it must belong to the model.
            let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
            names.sort();
            if let Some(extra) = names.iter().find(|n| !known.contains(n.as_str())) {
                return Err(ckpt(
                    path,
                    format!("tensor '{extra}' is not part of an HGRNBit model"),
                ));
            }
            names
        } else {
            expected.iter().map(|s| s.to_string()).collect()
        };
        for name in names {
            let view = st.tensor(&name).map_err(|_| {
                ckpt(
                    path,
                    format!("tensor '{name}' is listed in {INDEX_FILE} but not in this file"),
                )
            })?;
            let data = to_f32(path, &name, view.dtype(), view.data())?;
            tensors.insert(
                name,
                HostTensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
    }

    // Single file: find what is missing or misshapen, in spec order, naming the file.
    for spec in &specs {
        let path = locations.get(&spec.name).unwrap_or(&single);
        match tensors.get(&spec.name) {
            None => {
                return Err(ckpt(path, format!("tensor '{}' is missing", spec.name)));
            }
            Some(t) if t.shape != spec.shape => {
                return Err(ckpt(
                    path,
                    format!(
                        "tensor '{}' has shape {:?}, the config needs {:?}",
                        spec.name, t.shape, spec.shape
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    MmFreeWeights::new(config, tensors)
}

/// Converts little-endian BF16, F16 or F32 bytes to `f32`, in parallel.
fn to_f32(path: &Path, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    const CHUNK: usize = 1 << 16;
    fn convert<const W: usize>(bytes: &[u8], f: impl Fn([u8; W]) -> f32 + Sync) -> Vec<f32> {
        let mut out = vec![0f32; bytes.len() / W];
        out.par_chunks_mut(CHUNK)
            .zip(bytes.par_chunks(CHUNK * W))
            .for_each(|(o, b)| {
                for (v, c) in o.iter_mut().zip(b.chunks_exact(W)) {
                    *v = f(c.try_into().expect("chunk of W bytes"));
                }
            });
        out
    }
    Ok(match dtype {
        Dtype::F32 => convert::<4>(bytes, f32::from_le_bytes),
        Dtype::BF16 => convert::<2>(bytes, |b| {
            half::bf16::from_bits(u16::from_le_bytes(b)).to_f32()
        }),
        Dtype::F16 => convert::<2>(bytes, |b| {
            half::f16::from_bits(u16::from_le_bytes(b)).to_f32()
        }),
        other => {
            return Err(ckpt(
                path,
                format!(
                    "tensor '{name}' has dtype {other:?}; only BF16, F16 and F32 are supported"
                ),
            ))
        }
    })
}

/// Writes `weights` to `dir` in the Hugging Face layout: `config.json` (with `torch_dtype` set to
/// `dtype`) and `model.safetensors`, or, when the tensor data exceeds `max_shard_bytes`,
/// `model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json`.
///
/// Each file is written atomically; the files of the other layout left by an earlier save are
/// removed afterwards, so [`load_dir`] never mixes two saves.
pub fn save_dir(
    weights: &MmFreeWeights,
    dir: &Path,
    dtype: SaveDtype,
    max_shard_bytes: Option<usize>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let specs = tensor_specs(&weights.config);
    let mut named: Vec<(&str, &HostTensor)> = Vec::with_capacity(specs.len());
    for spec in &specs {
        let t = weights.get(&spec.name)?;
        if t.shape != spec.shape || t.data.len() != spec.shape.iter().product::<usize>() {
            return Err(Error::Shape {
                what: format!("tensor {}", spec.name),
                expected: format!("{:?}", spec.shape),
                got: format!("{:?} with {} values", t.shape, t.data.len()),
            });
        }
        named.push((&spec.name, t));
    }

    let total: usize = named.iter().map(|(_, t)| t.len() * dtype.bytes()).sum();
    let old_index = read_old_index(dir);
    let single = dir.join(MODEL_FILE);
    let index_path = dir.join(INDEX_FILE);
    let mut written: BTreeSet<PathBuf> = BTreeSet::new();
    match max_shard_bytes {
        Some(limit) if total > limit => {
            // Greedy split in spec order; a tensor larger than the limit gets a shard alone.
            let mut shards: Vec<Vec<(&str, &HostTensor)>> = vec![Vec::new()];
            let mut size = 0;
            for (name, t) in named {
                let bytes = t.len() * dtype.bytes();
                let last = shards.last_mut().expect("one shard");
                if !last.is_empty() && size + bytes > limit {
                    shards.push(Vec::new());
                    size = 0;
                }
                shards.last_mut().expect("one shard").push((name, t));
                size += bytes;
            }
            let n = shards.len();
            let mut weight_map = serde_json::Map::new();
            for (i, shard) in shards.iter().enumerate() {
                let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
                let path = dir.join(&file);
                write_safetensors(&path, shard, dtype)?;
                for (name, _) in shard {
                    weight_map.insert(name.to_string(), file.clone().into());
                }
                written.insert(path);
            }
            let index = serde_json::json!({
                "metadata": { "total_size": total },
                "weight_map": weight_map,
            });
            let text = serde_json::to_string_pretty(&index).expect("index serialises");
            // The index goes last: it is what makes the new set of shards the checkpoint.
            write_atomic(&index_path, text.as_bytes())?;
            written.insert(index_path.clone());
        }
        _ => {
            write_safetensors(&single, &named, dtype)?;
            written.insert(single.clone());
        }
    }

    let mut config = weights.config.clone();
    config.torch_dtype = Some(dtype.torch_name().to_string());
    config.save(dir.join(CONFIG_FILE))?;

    // Remove the other layout's leftovers (an old index would shadow nothing, but old shards
    // or a stale single file waste space and confuse other tools).
    let mut stale: Vec<PathBuf> = old_index
        .into_iter()
        .flat_map(|files| files.into_iter().map(|f| dir.join(f)))
        .collect();
    stale.push(single);
    stale.push(index_path);
    for path in stale {
        if !written.contains(&path) && path.is_file() {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// Shard file names of an existing index in `dir`, if it is readable.
fn read_old_index(dir: &Path) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(dir.join(INDEX_FILE)).ok()?;
    let index: Index = serde_json::from_str(&text).ok()?;
    Some(
        index
            .weight_map
            .into_values()
            .filter(|f| Path::new(f).file_name().map(|n| n == f.as_str()) == Some(true))
            .collect(),
    )
}

/// Writes one safetensors file (header metadata `{"format": "pt"}`, as PyTorch-made files have),
/// converting to `dtype` while streaming, so no second copy of the weights is held.
fn write_safetensors(path: &Path, tensors: &[(&str, &HostTensor)], dtype: SaveDtype) -> Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
    let mut offset = 0usize;
    for (name, t) in tensors {
        let len = t.len() * dtype.bytes();
        header.insert(
            name.to_string(),
            serde_json::json!({
                "dtype": format!("{:?}", dtype.dtype()),
                "shape": t.shape,
                "data_offsets": [offset, offset + len],
            }),
        );
        offset += len;
    }
    let mut header = serde_json::to_vec(&header).expect("header serialises");
    // The data section starts 8-byte aligned, as the safetensors writer does it.
    header.resize(header.len().div_ceil(8) * 8, b' ');
    write_atomic_with(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for (_, t) in tensors {
            for chunk in t.data.chunks(1 << 14) {
                buf.clear();
                match dtype {
                    SaveDtype::F32 => chunk
                        .iter()
                        .for_each(|v| buf.extend_from_slice(&v.to_le_bytes())),
                    SaveDtype::Bf16 => chunk.iter().for_each(|v| {
                        buf.extend_from_slice(&half::bf16::from_f32(*v).to_bits().to_le_bytes())
                    }),
                }
                w.write_all(&buf)?;
            }
        }
        Ok(())
    })
}

/// Shorthand for [`Error::Checkpoint`].
fn ckpt(path: &Path, msg: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}
