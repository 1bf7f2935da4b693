//! NIR, the Neuromorphic Intermediate Representation: read and write graphs as the Python `nir`
//! package (1.0.x) does, run them, and export Nerve's networks.
//!
//! - [`file`](mod@file): the HDF5 layout, read and written with the pure-Rust `hdf5-pure` crate (gzip
//!   arrays, variable-length strings, nested graphs, metadata).
//! - [`graph`]: every node type the package defines and the checks a graph must pass.
//! - [`run`](mod@run): a graph on `[T, B, *shape]` inputs. The default semantics are snnTorch's
//!   import convention: forward Euler with `dt = 1e-4` s, `v += dt/τ·(v_leak − v + r·I)` (the
//!   current-based models update their current first, `I += dt/τ_syn·(w_in·x − I)`), a spike
//!   when `v > v_threshold`, the reset to `v_reset` in the same step, an edge that closes a
//!   cycle delayed by one step. I and IF integrate `v += dt·r·x`; Delay rounds its delays to
//!   whole steps.
//! - [`export`]: a trained [`SpikingNet`](crate::models::SpikingNet) as a graph. NIR stores no
//!   time step or reset mode, so each LIF node also carries Nerve's exact β and reset in its
//!   metadata (`nerve_beta`, `nerve_reset`); [`run()`] follows them where present, which makes
//!   Nerve → NIR → Nerve exact, while the standard fields (τ = dt/(1−β), r = τ/dt) keep other
//!   tools working.
//!
//! ```
//! use nerve::hw::nir::{graph::{Array, NirGraph, Node, NodeKind}, run::run};
//! let mut g = NirGraph::default();
//! let lif = NodeKind::LIF {
//!     tau: Array::vector(vec![2e-4]),
//!     r: Array::vector(vec![2.0]),
//!     v_leak: Array::vector(vec![0.0]),
//!     v_threshold: Array::vector(vec![0.5]),
//!     v_reset: Array::vector(vec![0.0]),
//! };
//! for (name, kind) in [
//!     ("input", NodeKind::Input { shape: vec![1] }),
//!     ("lif", lif),
//!     ("output", NodeKind::Output { shape: vec![1] }),
//! ] {
//!     g.nodes.insert(name.into(), Node::new(kind));
//! }
//! g.edges = vec![("input".into(), "lif".into()), ("lif".into(), "output".into())];
//! // v = 0.5·v + x: 0.3, 0.45, 0.525 (a spike, reset to 0), 0.3.
//! let out = run(&g, &[0.3; 4], &[4, 1, 1], 1e-4).unwrap();
//! assert_eq!(out.values, vec![0.0, 0.0, 1.0, 0.0]);
//! ```

mod build;
pub mod export;
pub mod file;
pub mod graph;
mod ops;
pub mod run;

pub use export::export_net;
pub use file::{read, write};
pub use graph::{NirGraph, Node, NodeKind};
pub use run::{run, RunOutput, DEFAULT_DT};

use std::path::Path;

use crate::error::{Error, Result};

/// Reads a float NumPy array (`.npy`, float32 or float64, C order): its shape and values.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_npy(&bytes, path)
}

/// [`read_npy`] on bytes already read; `path` names them in errors.
pub fn decode_npy(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let fail = |msg: String| Error::format(path, msg);
    let npy = npyz::NpyFile::new(bytes).map_err(|e| fail(format!("not a NumPy .npy file: {e}")))?;
    if npy.order() != npyz::Order::C {
        return Err(fail(
            "Fortran-ordered arrays are not supported; save with C order".into(),
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let numel = shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
    if numel.is_none_or(|n| n.saturating_mul(4) > bytes.len().saturating_mul(2) + 64) {
        return Err(fail(format!(
            "shape {shape:?} does not fit the file's size"
        )));
    }
    let type_str = npy.dtype().descr();
    let values = match type_str.as_str() {
        "'<f4'" | "<f4" => npy.into_vec::<f32>(),
        "'<f8'" | "<f8" => npy
            .into_vec::<f64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        other => return Err(fail(format!("dtype {other} is not float32 or float64"))),
    }
    .map_err(|e| fail(format!("truncated or corrupt data: {e}")))?;
    if values.len() != shape.iter().product::<usize>() {
        return Err(fail(format!("{} values for shape {shape:?}", values.len())));
    }
    Ok((shape, values))
}

/// Writes a float32 NumPy array atomically.
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    use npyz::WriterBuilder;
    let mut bytes = Vec::new();
    let shape64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape64)
        .writer(&mut bytes)
        .begin_nd()
        .map_err(|e| Error::io(path, e))?;
    writer
        .extend(values.iter().copied())
        .map_err(|e| Error::io(path, e))?;
    writer.finish().map_err(|e| Error::io(path, e))?;
    crate::fsutil::write_atomic(path, &bytes)
}
