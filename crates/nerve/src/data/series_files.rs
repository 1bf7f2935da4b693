//! Regression inputs and targets from files: NumPy `.npy` arrays or CSV tables.
//!
//! - `.npy` (float32 or float64, C order): `[T, N, F]`, or `[T]` for one scalar series.
//! - `.csv`: one row per time step and sample, `step,sample,v1,...,vK` (K values: the features
//!   or outputs); an optional first header line that does not start with a number is skipped.
//!   Every pair of step in `0..T` and sample in `0..N` must appear exactly once, in any order.
//!
//! Every error is one line naming the file and what is wrong (missing file, unreadable
//! format, ragged rows, a non-numeric or non-finite value, a missing or duplicate entry, or
//! inputs and targets that disagree on T or N).

use std::path::Path;

use super::trajectories::Trajectories;
use crate::error::{Error, Result};

/// A 3-D float array read from a file: shape `[T, N, K]` and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesArray {
    /// `[T, N, K]`.
    pub shape: [usize; 3],
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// Reads inputs and targets from two files (each `.npy` or `.csv`) and checks they fit.
pub fn load_series_pair(inputs: &Path, targets: &Path) -> Result<Trajectories> {
    let x = read_series(inputs)?;
    let y = read_series(targets)?;
    if x.shape[..2] != y.shape[..2] {
        return Err(Error::format(
            targets,
            format!(
                "targets are [T, N, O] = {:?} but the inputs {} are {:?}: T and N must agree",
                y.shape,
                inputs.display(),
                x.shape
            ),
        ));
    }
    if x.shape[0] < 2 {
        return Err(Error::format(
            inputs,
            "a regression series needs at least 2 time steps",
        ));
    }
    Trajectories::new(x.shape, x.values, y.shape, y.values, "regression data")
}

/// Reads one `.npy` or `.csv` file as `[T, N, K]`, refusing non-finite values.
pub fn read_series(path: &Path) -> Result<SeriesArray> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let array = match ext.as_deref() {
        Some("npy") => parse_npy(&bytes, path)?,
        Some("csv") => {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Error::format(path, "CSV file is not UTF-8 text"))?;
            parse_csv(text, path)?
        }
        _ => {
            return Err(Error::format(
                path,
                "unknown extension: expected .npy or .csv",
            ))
        }
    };
    if let Some(i) = array.values.iter().position(|v| !v.is_finite()) {
        let [_, n, k] = array.shape;
        return Err(Error::format(
            path,
            format!(
                "value {} at step {}, sample {}, column {} is not finite",
                array.values[i],
                i / (n * k),
                i / k % n,
                i % k
            ),
        ));
    }
    if array.shape.contains(&0) {
        return Err(Error::format(
            path,
            format!("empty array of shape {:?}", array.shape),
        ));
    }
    Ok(array)
}

/// Decodes a float NumPy array as `[T, N, K]` (a 1-D `[T]` becomes `[T, 1, 1]`).
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<SeriesArray> {
    let fail = |msg: String| Error::format(path, msg);
    let npy = npyz::NpyFile::new(bytes).map_err(|e| fail(format!("not a NumPy .npy file: {e}")))?;
    if npy.order() != npyz::Order::C {
        return Err(fail("Fortran-ordered arrays are not supported".into()));
    }
    let dims: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let shape = match dims.as_slice() {
        [t] => [*t, 1, 1],
        [t, n, k] => [*t, *n, *k],
        other => {
            return Err(fail(format!(
                "shape {other:?}: expected [T, N, F] (time, samples, values) or [T]"
            )))
        }
    };
    let numel = shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
    if numel.is_none_or(|n| n.saturating_mul(4) > bytes.len().saturating_mul(2) + 64) {
        return Err(fail(format!("shape {dims:?} does not fit the file's size")));
    }
    let descr = npy.dtype().descr();
    let values = match descr.trim_matches('\'') {
        "<f4" => npy.into_vec::<f32>(),
        "<f8" => npy
            .into_vec::<f64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        other => return Err(fail(format!("dtype {other} is not float32 or float64"))),
    }
    .map_err(|e| fail(format!("truncated or corrupt data: {e}")))?;
    if values.len() != shape.iter().product::<usize>() {
        return Err(fail(format!("{} values for shape {dims:?}", values.len())));
    }
    Ok(SeriesArray { shape, values })
}

/// Parses the CSV layout described in the module documentation.
pub fn parse_csv(text: &str, path: &Path) -> Result<SeriesArray> {
    let mut rows: Vec<(usize, usize, Vec<f32>)> = Vec::new();
    let mut width = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if rows.is_empty() && width.is_none() && fields[0].parse::<f64>().is_err() {
            continue; // header
        }
        let fail = |msg: String| Error::format(path, format!("line {line_no}: {msg}"));
        if fields.len() < 3 {
            return Err(fail(format!(
                "{} fields; expected step,sample,value[,value...]",
                fields.len()
            )));
        }
        if *width.get_or_insert(fields.len()) != fields.len() {
            return Err(fail(format!(
                "{} fields where earlier rows have {}",
                fields.len(),
                width.unwrap_or(0)
            )));
        }
        let index = |s: &str, what: &str| {
            s.parse::<usize>()
                .map_err(|_| fail(format!("{what} '{s}' is not a non-negative integer")))
        };
        let step = index(fields[0], "step")?;
        let sample = index(fields[1], "sample")?;
        let values = fields[2..]
            .iter()
            .map(|s| {
                let v: f32 = s
                    .parse()
                    .map_err(|_| fail(format!("value '{s}' is not a number")))?;
                if v.is_finite() {
                    Ok(v)
                } else {
                    Err(fail(format!("value '{s}' is not finite")))
                }
            })
            .collect::<Result<Vec<f32>>>()?;
        rows.push((step, sample, values));
    }
    if rows.is_empty() {
        return Err(Error::format(
            path,
            "no data rows (expected step,sample,value...)",
        ));
    }
    let t = rows.iter().map(|r| r.0).max().unwrap_or(0) + 1;
    let n = rows.iter().map(|r| r.1).max().unwrap_or(0) + 1;
    let k = rows[0].2.len();
    // Fewer rows than pairs: name the first missing pair (found within rows + 1 tries, so a
    // huge stray index costs no huge allocation).
    if t.checked_mul(n).is_none_or(|c| c > rows.len()) {
        let present: std::collections::HashSet<(usize, usize)> =
            rows.iter().map(|r| (r.0, r.1)).collect();
        let missing = (0..t)
            .flat_map(|s| (0..n).map(move |j| (s, j)))
            .find(|p| !present.contains(p))
            .unwrap_or((t, n));
        return Err(Error::format(
            path,
            format!("no row for step {}, sample {}", missing.0, missing.1),
        ));
    }
    let cells = t * n;
    let mut values = vec![0f32; cells * k];
    let mut seen = vec![false; cells];
    for (step, sample, v) in rows {
        let cell = step * n + sample;
        if std::mem::replace(&mut seen[cell], true) {
            return Err(Error::format(
                path,
                format!("step {step}, sample {sample} appears more than once"),
            ));
        }
        values[cell * k..(cell + 1) * k].copy_from_slice(&v);
    }
    if let Some(cell) = seen.iter().position(|s| !s) {
        return Err(Error::format(
            path,
            format!("no row for step {}, sample {}", cell / n, cell % n),
        ));
    }
    Ok(SeriesArray {
        shape: [t, n, k],
        values,
    })
}
