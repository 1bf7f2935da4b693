//! Training checkpoints: model weights in a safetensors file (readable by any safetensors tool,
//! with the run's metadata in its header) plus the optimizer state in a burnpack sidecar, so a
//! run can resume exactly where it stopped.
//!
//! Layout for `runs/x.safetensors`:
//! - `runs/x.safetensors`: every parameter under its module path (`conv1.weight`, ...), and the
//!   header metadata `nerve.format`, `nerve.arch`, `nerve.epoch`, `nerve.step`, `nerve.seed`,
//!   `nerve.config` (JSON) and `nerve.save_id`.
//! - `runs/x.optim.bpk` ([`optimizer_path`]): Burn's own optimizer record (burnpack), with the
//!   parameter path of every state entry and the same `nerve.save_id`.
//!
//! Burn keys optimizer state by `ParamId`, which is random per process and which safetensors
//! does not store, so the sidecar records which parameter *path* each id belonged to and
//! [`load_optimizer`] re-keys the state onto the ids of the model it is given.
//!
//! The sidecar is written before the model file, both atomically; the shared `save_id` lets
//! [`load_optimizer`] refuse a sidecar left over from a different save (e.g. a crash between
//! the two writes, or a later weights-only [`save_model`]).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::burn_pack::{self, Reader, Writer};
use burn::store::{ModuleSnapshot, ModuleStore, SafetensorsStore};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Value of the `nerve.format` header key this version writes and reads.
pub const FORMAT: &str = "nerve-checkpoint-v1";

/// Value of the `nerve.format` key in the optimizer sidecar.
const OPTIM_FORMAT: &str = "nerve-optimizer-v1";

/// Header keys; kept in one place because the file format depends on them.
const KEY_FORMAT: &str = "nerve.format";
const KEY_ARCH: &str = "nerve.arch";
const KEY_EPOCH: &str = "nerve.epoch";
const KEY_STEP: &str = "nerve.step";
const KEY_SEED: &str = "nerve.seed";
const KEY_CONFIG: &str = "nerve.config";
const KEY_SAVE_ID: &str = "nerve.save_id";
const KEY_PARAM_PATHS: &str = "nerve.param_paths";

/// The safetensors crate's own header limit; anything larger is not a real checkpoint.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// What a checkpoint records besides the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Architecture description; loading refuses a model with a different one.
    pub arch: String,
    /// Epochs completed when the checkpoint was written.
    pub epoch: usize,
    /// Optimizer steps taken when the checkpoint was written.
    pub step: u64,
    /// The run configuration, as JSON, so a resumed run can reuse or check it.
    pub config: serde_json::Value,
    /// RNG seed/state to continue from, so data order and dropout resume reproducibly.
    pub seed: u64,
}

/// The optimizer sidecar of the checkpoint at `path` (`x.safetensors` -> `x.optim.bpk`).
pub fn optimizer_path(path: impl AsRef<Path>) -> PathBuf {
    path.as_ref().with_extension("optim.bpk")
}

/// Saves `model`'s weights to `path` and `optim`'s state to [`optimizer_path`]`(path)`.
pub fn save<M: Module>(
    path: impl AsRef<Path>,
    model: &M,
    optim: &ModuleOptimizer,
    meta: &CheckpointMeta,
) -> Result<()> {
    let path = path.as_ref();
    let save_id = new_save_id();
    let sidecar = optimizer_path(path);
    let optim_bytes = optimizer_bytes(&sidecar, model, optim, meta, &save_id)?;
    let model_bytes = model_bytes(path, model, meta, &save_id)?;
    // Sidecar first: a crash in between leaves the old model file with a sidecar whose save id
    // does not match, which load_optimizer detects, never a new model with stale moments.
    write_atomic(&sidecar, &optim_bytes)?;
    write_atomic(path, &model_bytes)
}

/// Saves only the weights (e.g. a final or best model); any existing sidecar stops matching.
pub fn save_model<M: Module>(
    path: impl AsRef<Path>,
    model: &M,
    meta: &CheckpointMeta,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = model_bytes(path, model, meta, &new_save_id())?;
    write_atomic(path, &bytes)
}

/// Reads the metadata of the checkpoint at `path` from its header alone (no tensor data).
pub fn load_meta(path: impl AsRef<Path>) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    meta_from_header(path, &read_header_file(path)?)
}

/// Loads the checkpoint at `path` into `model`, refusing a different architecture or any
/// missing, extra or differently shaped tensor.
pub fn load<M: Module>(
    path: impl AsRef<Path>,
    model: M,
    expected_arch: &str,
) -> Result<(M, CheckpointMeta)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let header = parse_header(path, &bytes)?;
    let meta = meta_from_header(path, &header)?;
    if meta.arch != expected_arch {
        return Err(ckpt(
            path,
            format!("built for '{}', this model is '{expected_arch}'", meta.arch),
        ));
    }

    let model = load_tensors(path, model, bytes)?;
    Ok((model, meta))
}

/// Loads the tensors of the safetensors file `bytes` into `model` by name, refusing any
/// missing, extra or differently shaped tensor before anything is applied; `path` names the
/// source in errors.
pub fn load_tensors<M: Module>(path: &Path, model: M, bytes: Vec<u8>) -> Result<M> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let stored: Vec<burn_pack::Tensor> = store
        .get_all_tensors()
        .map_err(wrap(
            path,
            "not a valid safetensors file (truncated or corrupt)",
        ))?
        .values()
        .cloned()
        .collect();
    check_tensors(path, &model, &stored)?;

    let mut model = model;
    let result = model.apply(stored, None, None, false);
    if let Some(err) = result.errors.first() {
        let more = result.errors.len() - 1;
        let suffix = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        return Err(ckpt(
            path,
            format!("{}{suffix}", one_line(&err.to_string())),
        ));
    }
    Ok(model)
}

/// Restores into `optim` (freshly built with the run's optimizer config) the state saved with
/// the checkpoint at `path`, re-keyed onto `model`'s parameters (the model returned by [`load`]).
pub fn load_optimizer<M: Module>(
    path: impl AsRef<Path>,
    optim: ModuleOptimizer,
    model: &M,
) -> Result<ModuleOptimizer> {
    let path = path.as_ref();
    let model_header = read_header_file(path)?;
    let model_meta = meta_from_header(path, &model_header)?;
    let sidecar = optimizer_path(path);
    let bytes = std::fs::read(&sidecar).map_err(|e| Error::io(&sidecar, e))?;
    let reader = Reader::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(wrap(&sidecar, "not an optimizer state file"))?;
    let info = reader.metadata().clone();
    let scalars = reader.scalars().clone();
    if info.get(KEY_FORMAT).map(String::as_str) != Some(OPTIM_FORMAT) {
        return Err(ckpt(
            &sidecar,
            format!("not a Nerve optimizer state (no {KEY_FORMAT}={OPTIM_FORMAT})"),
        ));
    }
    if info.get(KEY_SAVE_ID) != model_header.get(KEY_SAVE_ID) {
        let step = info.get(KEY_STEP).map_or("?", String::as_str);
        return Err(ckpt(
            &sidecar,
            format!(
                "optimizer state is from a different save (step {step}) than {} (step {}); \
                 it cannot resume that model",
                path.display(),
                model_meta.step
            ),
        ));
    }
    let saved_paths: BTreeMap<String, String> = info
        .get(KEY_PARAM_PATHS)
        .map(|s| serde_json::from_str(s))
        .transpose()
        .map_err(|e| ckpt(&sidecar, format!("bad {KEY_PARAM_PATHS}: {e}")))?
        .unwrap_or_default();

    // Old id -> new id, through the parameter path both sides agree on.
    let new_ids: HashMap<String, u64> = model
        .collect(None, None, false)
        .into_iter()
        .filter_map(|t| t.param_id.map(|id| (t.name, id)))
        .collect();
    let mut remap: HashMap<u64, u64> = HashMap::new();
    for (old, name) in &saved_paths {
        let old: u64 = old.parse().map_err(|_| {
            ckpt(
                &sidecar,
                format!("bad parameter id '{old}' in {KEY_PARAM_PATHS}"),
            )
        })?;
        let new = new_ids.get(name).ok_or_else(|| {
            ckpt(
                &sidecar,
                format!("optimizer state for '{name}' matches no parameter of the model"),
            )
        })?;
        remap.insert(old, *new);
    }
    // Burn's record keys are "{param_id}" or "{param_id}.{field...}".
    let rekey = |key: &str| -> Option<(u64, String)> {
        let (id, rest) = match key.split_once('.') {
            Some((id, rest)) => (id, Some(rest)),
            None => (key, None),
        };
        let new = *remap.get(&id.parse::<u64>().ok()?)?;
        let key = match rest {
            Some(rest) => format!("{new}.{rest}"),
            None => new.to_string(),
        };
        Some((new, key))
    };

    let tensors = reader
        .into_tensors()
        .map_err(wrap(&sidecar, "corrupt optimizer state"))?;
    let mut rekeyed = Vec::with_capacity(tensors.len());
    for t in tensors {
        let (name, dtype, shape, _, data) = t
            .into_parts()
            .map_err(wrap(&sidecar, "corrupt optimizer state"))?;
        // State of parameters the saved model did not have cannot be placed; drop it.
        if let Some((id, name)) = rekey(&name) {
            rekeyed.push(burn_pack::Tensor::new(name, dtype, shape, Some(id), data));
        }
    }
    let mut writer = Writer::new(rekeyed);
    for (key, value) in &scalars {
        if let Some((_, key)) = rekey(key) {
            writer = writer.with_scalar(&key, *value);
        }
    }
    for (key, value) in &info {
        // Numeric keys are Burn's own id -> path entries; ours (nerve.*) are not passed on.
        if let Some((_, key)) = rekey(key) {
            writer = writer.with_metadata(&key, value);
        }
    }
    let bytes = writer
        .into_bytes()
        .map_err(wrap(&sidecar, "cannot rebuild optimizer state"))?;
    let record = OptimizerRecord::from_bytes(bytes)
        .map_err(wrap(&sidecar, "cannot rebuild optimizer state"))?;
    Ok(optim.load_record(record))
}

/// Serializes the weights plus header metadata to safetensors bytes in memory.
fn model_bytes<M: Module>(
    path: &Path,
    model: &M,
    meta: &CheckpointMeta,
    save_id: &str,
) -> Result<Vec<u8>> {
    let config = serde_json::to_string(&meta.config)
        .map_err(|e| ckpt(path, format!("cannot serialize the run config: {e}")))?;
    let mut store = SafetensorsStore::from_bytes(None)
        .metadata(KEY_FORMAT, FORMAT)
        .metadata(KEY_ARCH, meta.arch.as_str())
        .metadata(KEY_EPOCH, meta.epoch.to_string())
        .metadata(KEY_STEP, meta.step.to_string())
        .metadata(KEY_SEED, meta.seed.to_string())
        .metadata(KEY_CONFIG, config)
        .metadata(KEY_SAVE_ID, save_id);
    // In memory rather than burn-store's own file writer, so the model and the sidecar go
    // through the same atomic write and a failure can be reported with our path.
    store
        .collect_from(model)
        .map_err(wrap(path, "cannot serialize the model"))?;
    store
        .get_bytes()
        .map_err(wrap(path, "cannot serialize the model"))
}

/// Serializes the optimizer record (burnpack) with the id -> path map and the save id.
fn optimizer_bytes<M: Module>(
    sidecar: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    meta: &CheckpointMeta,
    save_id: &str,
) -> Result<Vec<u8>> {
    const WHAT: &str = "cannot serialize the optimizer state";
    let record = optim
        .to_record()
        .into_bytes()
        .map_err(wrap(sidecar, WHAT))?;
    // Re-open Burn's record to add our keys; its layout stays exactly what load_record expects.
    let reader = Reader::from_bytes(record).map_err(wrap(sidecar, WHAT))?;
    let info = reader.metadata().clone();
    let scalars = reader.scalars().clone();
    let tensors = reader.into_tensors().map_err(wrap(sidecar, WHAT))?;
    let param_paths: BTreeMap<String, String> = model
        .collect(None, None, false)
        .into_iter()
        .filter_map(|t| t.param_id.map(|id| (id.to_string(), t.name)))
        .collect();

    // State keyed by an id this model does not have could never be restored; refuse now
    // rather than let a resumed run silently restart its optimizer.
    let state_ids = tensors
        .iter()
        .filter_map(|t| t.param_id.map(|id| id.to_string()))
        .chain(
            scalars
                .keys()
                .filter_map(|k| k.split('.').next().map(str::to_string)),
        );
    for id in state_ids {
        if !param_paths.contains_key(&id) {
            let name = info.get(&id).map_or("?", String::as_str);
            return Err(ckpt(
                sidecar,
                format!(
                    "the optimizer holds state for parameter '{name}' (id {id}), which is not \
                     in the model being saved; pass the model this optimizer stepped"
                ),
            ));
        }
    }

    let param_paths = serde_json::to_string(&param_paths).map_err(wrap(sidecar, WHAT))?;
    let mut writer = Writer::new(tensors)
        .with_metadata(KEY_FORMAT, OPTIM_FORMAT)
        .with_metadata(KEY_SAVE_ID, save_id)
        .with_metadata(KEY_STEP, &meta.step.to_string())
        .with_metadata(KEY_PARAM_PATHS, &param_paths);
    for (key, value) in &info {
        writer = writer.with_metadata(key, value);
    }
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    Ok(writer.into_bytes().map_err(wrap(sidecar, WHAT))?.to_vec())
}

/// Compares the stored tensors with the model's parameters by name and shape before anything is
/// applied, so a mismatch is reported in our words and the model is never half-loaded.
fn check_tensors<M: Module>(path: &Path, model: &M, stored: &[burn_pack::Tensor]) -> Result<()> {
    let in_file: BTreeMap<&str, &[usize]> = stored
        .iter()
        .map(|t| (t.name.as_str(), &t.shape[..]))
        .collect();
    let wanted = model.collect(None, None, false);
    let mut problems = Vec::new();
    for t in &wanted {
        match in_file.get(t.name.as_str()) {
            None => problems.push(format!("tensor '{}' is missing", t.name)),
            Some(shape) if *shape != &t.shape[..] => problems.push(format!(
                "tensor '{}' has shape {}, model expects {}",
                t.name,
                fmt_shape(shape),
                fmt_shape(&t.shape)
            )),
            Some(_) => {}
        }
    }
    let wanted_names: std::collections::HashSet<&str> =
        wanted.iter().map(|t| t.name.as_str()).collect();
    for name in in_file.keys().filter(|n| !wanted_names.contains(*n)) {
        problems.push(format!("tensor '{name}' matches no parameter of the model"));
    }
    match problems.len() {
        0 => Ok(()),
        n => {
            const SHOWN: usize = 3;
            let mut msg = problems[..n.min(SHOWN)].join("; ");
            if n > SHOWN {
                msg.push_str(&format!(" (and {} more)", n - SHOWN));
            }
            Err(ckpt(path, msg))
        }
    }
}

/// Reads and parses just the JSON header of a safetensors file.
fn read_header_file(path: &Path) -> Result<HashMap<String, String>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut prefix = [0u8; 8];
    if len < 8 {
        return Err(not_safetensors(path, format!("only {len} bytes")));
    }
    file.read_exact(&mut prefix)
        .map_err(|e| Error::io(path, e))?;
    let n = u64::from_le_bytes(prefix);
    check_header_len(path, n, len)?;
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .map_err(|e| Error::io(path, e))?;
    header_metadata(path, &header)
}

/// Parses the header of a safetensors file already in memory.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>> {
    let len = bytes.len() as u64;
    if len < 8 {
        return Err(not_safetensors(path, format!("only {len} bytes")));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    check_header_len(path, n, len)?;
    header_metadata(path, &bytes[8..8 + n as usize])
}

/// Rejects a header length that cannot be right, before allocating for it.
fn check_header_len(path: &Path, n: u64, file_len: u64) -> Result<()> {
    if n > MAX_HEADER_BYTES || n > file_len - 8 {
        return Err(not_safetensors(
            path,
            format!(
                "header length {n} does not fit a {file_len}-byte file \
                 (truncated or another format)"
            ),
        ));
    }
    Ok(())
}

/// Extracts the `__metadata__` string map from the header JSON.
fn header_metadata(path: &Path, header: &[u8]) -> Result<HashMap<String, String>> {
    #[derive(Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: HashMap<String, String>,
    }
    let parsed: Header = serde_json::from_slice(header)
        .map_err(|e| not_safetensors(path, format!("header is not valid JSON ({e})")))?;
    Ok(parsed.metadata)
}

/// Builds the metadata from the header map, with one message per bad or missing key.
fn meta_from_header(path: &Path, header: &HashMap<String, String>) -> Result<CheckpointMeta> {
    match header.get(KEY_FORMAT) {
        Some(f) if f == FORMAT => {}
        Some(f) => {
            return Err(ckpt(
                path,
                format!("unsupported format '{f}' (this build reads '{FORMAT}')"),
            ));
        }
        None => {
            return Err(ckpt(
                path,
                format!(
                    "a safetensors file but not a Nerve checkpoint (no {KEY_FORMAT} in its header)"
                ),
            ));
        }
    }
    let get = |key: &str| {
        header
            .get(key)
            .ok_or_else(|| ckpt(path, format!("header lacks {key}")))
    };
    let number = |key: &str| -> Result<u64> {
        let s = get(key)?;
        s.parse().map_err(|_| {
            ckpt(
                path,
                format!("header field {key}='{s}' is not a whole number"),
            )
        })
    };
    let config = serde_json::from_str(get(KEY_CONFIG)?).map_err(|e| {
        ckpt(
            path,
            format!("header field {KEY_CONFIG} is not valid JSON ({e})"),
        )
    })?;
    Ok(CheckpointMeta {
        arch: get(KEY_ARCH)?.clone(),
        epoch: usize::try_from(number(KEY_EPOCH)?)
            .map_err(|_| ckpt(path, format!("header field {KEY_EPOCH} is out of range")))?,
        step: number(KEY_STEP)?,
        config,
        seed: number(KEY_SEED)?,
    })
}

/// A fresh identifier tying a model file to the sidecar written in the same save.
fn new_save_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n:x}", std::process::id())
}

/// `[12,1,5,5]`, the compact form used in error messages.
fn fmt_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(","))
}

/// Library errors (burn-store's summaries) can span lines; ours must stay on one.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns a library error into a one-line checkpoint error that starts with `what`.
fn wrap<'a, E: std::fmt::Display>(path: &'a Path, what: &'static str) -> impl Fn(E) -> Error + 'a {
    move |e| ckpt(path, format!("{what}: {}", one_line(&e.to_string())))
}

/// Shorthand for [`Error::Checkpoint`].
fn ckpt(path: &Path, msg: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// The error for a file that is not safetensors at all.
fn not_safetensors(path: &Path, why: String) -> Error {
    ckpt(path, format!("not a safetensors file: {why}"))
}
