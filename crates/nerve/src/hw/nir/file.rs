//! NIR files: HDF5 laid out as the Python `nir` package writes them. The root holds a
//! `version` string and a `node` group; a node is a group with a `type` string and one dataset
//! per field (arrays gzip-compressed and chunked, strings variable-length), a graph's `nodes`
//! are subgroups and its `edges` a `[n, 2]` string array, and `metadata` (when not empty) is a
//! subgroup of datasets.

use std::path::Path;

use hdf5_pure::{DType, Dataset, File, FileBuilder, Group, GroupBuilder};

use super::graph::{Array, Conv, MetaValue, Metadata, NirGraph, Node, NodeKind, Padding, Pool};
use crate::error::{Error, Result};

/// The `version` written into new files: the `nir` release whose layout this follows.
pub const NIR_VERSION: &str = "1.0.8";

/// Reads a NIR file.
pub fn read(path: &Path) -> Result<NirGraph> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path)
}

/// Reads a NIR file from its bytes; `path` names it in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<NirGraph> {
    let fail = |msg: String| Error::format(path, one_line(&msg));
    if !hdf5_pure::is_hdf5_bytes(bytes) {
        return Err(fail("not an HDF5 file (no HDF5 signature)".into()));
    }
    let file =
        File::from_bytes(bytes.to_vec()).map_err(|e| fail(format!("unreadable HDF5 file: {e}")))?;
    let root = file.root();
    let node = root
        .group("node")
        .map_err(|_| fail("no 'node' group at the root: not a NIR file".into()))?;
    let reader = Reader { fail: &fail };
    match reader.node(&node, "")?.kind {
        NodeKind::Graph(g) => Ok(g),
        other => Err(fail(format!(
            "the root node is a {}, not a NIRGraph",
            other.type_name()
        ))),
    }
}

/// Writes `graph` to `path` atomically (a temporary file renamed into place).
pub fn write(path: &Path, graph: &NirGraph) -> Result<()> {
    let bytes = encode(graph).map_err(|e| Error::format(path, e))?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// The bytes of a NIR file holding `graph`.
pub fn encode(graph: &NirGraph) -> std::result::Result<Vec<u8>, String> {
    let mut file = FileBuilder::new();
    file.create_dataset("version")
        .with_vlen_strings(&[NIR_VERSION])
        .with_shape(&[]);
    let mut node = file.create_group("node");
    write_graph(&mut node, graph);
    file.add_group(node.finish());
    file.finish()
        .map_err(|e| format!("cannot encode HDF5: {e}"))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Reader<'a> {
    fail: &'a dyn Fn(String) -> Error,
}

impl Reader<'_> {
    fn err(&self, at: &str, msg: impl std::fmt::Display) -> Error {
        let at = if at.is_empty() { "root graph" } else { at };
        (self.fail)(format!("node '{at}': {msg}"))
    }

    fn dataset(&self, g: &Group, at: &str, field: &str) -> Result<Dataset> {
        g.dataset(field)
            .map_err(|_| self.err(at, format!("field '{field}' is missing")))
    }

    fn has(&self, g: &Group, field: &str) -> bool {
        g.datasets()
            .map(|d| d.iter().any(|n| n == field))
            .unwrap_or(false)
    }

    fn text(&self, g: &Group, at: &str, field: &str) -> Result<String> {
        let d = self.dataset(g, at, field)?;
        let v = d
            .read_string()
            .map_err(|e| self.err(at, format!("field '{field}' is not a string: {e}")))?;
        match v.as_slice() {
            [s] => Ok(s.clone()),
            _ => Err(self.err(at, format!("field '{field}' should hold one string"))),
        }
    }

    fn shape(&self, d: &Dataset, at: &str, field: &str) -> Result<Vec<usize>> {
        let shape = d
            .shape()
            .map_err(|e| self.err(at, format!("field '{field}': {e}")))?;
        let dims: Vec<usize> = shape.iter().map(|&s| s as usize).collect();
        let numel = dims.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
        match numel {
            Some(n) if n <= 1 << 31 => Ok(dims),
            _ => Err(self.err(at, format!("field '{field}' has an absurd shape {shape:?}"))),
        }
    }

    fn array(&self, g: &Group, at: &str, field: &str) -> Result<Array> {
        let d = self.dataset(g, at, field)?;
        let shape = self.shape(&d, at, field)?;
        if !is_numeric(&d) {
            return Err(self.err(at, format!("field '{field}' is not numeric")));
        }
        let data = d
            .read_f32()
            .map_err(|e| self.err(at, format!("field '{field}': {e}")))?;
        if data.len() != shape.iter().product::<usize>() {
            return Err(self.err(
                at,
                format!(
                    "field '{field}' has {} values for shape {shape:?}",
                    data.len()
                ),
            ));
        }
        Ok(Array::new(shape, data))
    }

    /// An optional float field: zeros shaped like `like` when absent (as `nir` reads v_reset).
    fn array_or_zeros(&self, g: &Group, at: &str, field: &str, like: &Array) -> Result<Array> {
        if self.has(g, field) {
            self.array(g, at, field)
        } else {
            Ok(Array::filled(&like.shape, 0.0))
        }
    }

    fn ints(&self, g: &Group, at: &str, field: &str) -> Result<Vec<i64>> {
        let d = self.dataset(g, at, field)?;
        self.shape(&d, at, field)?;
        if !is_numeric(&d) {
            return Err(self.err(at, format!("field '{field}' is not numeric")));
        }
        let values = d
            .read_f64()
            .map_err(|e| self.err(at, format!("field '{field}': {e}")))?;
        values
            .iter()
            .map(|&v| {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(v as i64)
                } else {
                    Err(self.err(at, format!("field '{field}' holds {v}, not an integer")))
                }
            })
            .collect()
    }

    fn sizes(&self, g: &Group, at: &str, field: &str) -> Result<Vec<usize>> {
        self.ints(g, at, field)?
            .into_iter()
            .map(|v| {
                usize::try_from(v)
                    .ok()
                    .filter(|&v| v <= 1 << 24)
                    .ok_or_else(|| self.err(at, format!("field '{field}' holds {v}")))
            })
            .collect()
    }

    /// A per-axis size field: a scalar applies to every one of the `axes` axes.
    fn per_axis(&self, g: &Group, at: &str, field: &str, axes: usize) -> Result<Vec<usize>> {
        let v = self.sizes(g, at, field)?;
        Ok(if v.len() == 1 { vec![v[0]; axes] } else { v })
    }

    fn conv(&self, g: &Group, at: &str, axes: usize) -> Result<Conv> {
        let padding = match self.dataset(g, at, "padding")?.dtype() {
            Ok(DType::String | DType::VariableLengthString) => {
                match self.text(g, at, "padding")?.as_str() {
                    "same" => Padding::Same,
                    "valid" => Padding::Valid,
                    other => {
                        return Err(self.err(
                            at,
                            format!("padding '{other}' is not 'same', 'valid' or a number"),
                        ))
                    }
                }
            }
            _ => Padding::Explicit(self.per_axis(g, at, "padding", axes)?),
        };
        let input_shape = if self.has(g, "input_shape") {
            Some(self.sizes(g, at, "input_shape")?)
        } else {
            None
        };
        let groups = self.sizes(g, at, "groups")?;
        Ok(Conv {
            input_shape,
            weight: self.array(g, at, "weight")?,
            stride: self.per_axis(g, at, "stride", axes)?,
            padding,
            dilation: self.per_axis(g, at, "dilation", axes)?,
            groups: match groups.as_slice() {
                [n] => *n,
                _ => return Err(self.err(at, "field 'groups' should be one number")),
            },
            bias: self.array(g, at, "bias")?,
        })
    }

    fn pool(&self, g: &Group, at: &str) -> Result<Pool> {
        Ok(Pool {
            kernel_size: self.per_axis(g, at, "kernel_size", 2)?,
            stride: self.per_axis(g, at, "stride", 2)?,
            padding: self.per_axis(g, at, "padding", 2)?,
        })
    }

    fn metadata(&self, g: &Group, at: &str) -> Result<Metadata> {
        let mut meta = Metadata::new();
        let has_meta = g
            .groups()
            .map(|v| v.iter().any(|n| n == "metadata"))
            .unwrap_or(false);
        if !has_meta {
            return Ok(meta);
        }
        let m = g
            .group("metadata")
            .map_err(|e| self.err(at, format!("metadata: {e}")))?;
        let names = m
            .datasets()
            .map_err(|e| self.err(at, format!("metadata: {e}")))?;
        for name in names {
            let d = self.dataset(&m, at, &name)?;
            let value = if is_numeric(&d) {
                MetaValue::Numbers(
                    d.read_f64()
                        .map_err(|e| self.err(at, format!("metadata '{name}': {e}")))?,
                )
            } else {
                match d.read_string() {
                    Ok(v) => MetaValue::Text(v.join("\n")),
                    // A value of a type we have no use for is skipped, as tools add their own.
                    Err(_) => continue,
                }
            };
            meta.insert(name, value);
        }
        Ok(meta)
    }

    fn node(&self, g: &Group, at: &str) -> Result<Node> {
        let ty = self.text(g, at, "type")?;
        let arr = |f: &str| self.array(g, at, f);
        let kind = match ty.as_str() {
            "Input" => NodeKind::Input {
                shape: self.sizes(g, at, "shape")?,
            },
            "Output" => NodeKind::Output {
                shape: self.sizes(g, at, "shape")?,
            },
            "Affine" => NodeKind::Affine {
                weight: arr("weight")?,
                bias: arr("bias")?,
            },
            "Linear" => NodeKind::Linear {
                weight: arr("weight")?,
            },
            "Scale" => NodeKind::Scale {
                scale: arr("scale")?,
            },
            "Conv1d" => NodeKind::Conv1d(self.conv(g, at, 1)?),
            "Conv2d" => NodeKind::Conv2d(self.conv(g, at, 2)?),
            "Flatten" => NodeKind::Flatten {
                start_dim: one(self.ints(g, at, "start_dim")?, || {
                    self.err(at, "field 'start_dim' should be one number")
                })?,
                end_dim: one(self.ints(g, at, "end_dim")?, || {
                    self.err(at, "field 'end_dim' should be one number")
                })?,
                input_type: if self.has(g, "input_type") {
                    Some(self.sizes(g, at, "input_type")?)
                } else {
                    None
                },
            },
            "SumPool2d" => NodeKind::SumPool2d(self.pool(g, at)?),
            "AvgPool2d" => NodeKind::AvgPool2d(self.pool(g, at)?),
            "Threshold" => NodeKind::Threshold {
                threshold: arr("threshold")?,
            },
            "I" => NodeKind::I { r: arr("r")? },
            "IF" => {
                let v_threshold = arr("v_threshold")?;
                NodeKind::IF {
                    r: arr("r")?,
                    v_reset: self.array_or_zeros(g, at, "v_reset", &v_threshold)?,
                    v_threshold,
                }
            }
            "LI" => NodeKind::LI {
                tau: arr("tau")?,
                r: arr("r")?,
                v_leak: arr("v_leak")?,
            },
            "LIF" => {
                let v_threshold = arr("v_threshold")?;
                NodeKind::LIF {
                    tau: arr("tau")?,
                    r: arr("r")?,
                    v_leak: arr("v_leak")?,
                    v_reset: self.array_or_zeros(g, at, "v_reset", &v_threshold)?,
                    v_threshold,
                }
            }
            "CubaLI" => NodeKind::CubaLI {
                tau_mem: arr("tau_mem")?,
                tau_syn: arr("tau_syn")?,
                r: arr("r")?,
                v_leak: arr("v_leak")?,
                w_in: arr("w_in")?,
            },
            "CubaLIF" => {
                let v_threshold = arr("v_threshold")?;
                NodeKind::CubaLIF {
                    tau_mem: arr("tau_mem")?,
                    tau_syn: arr("tau_syn")?,
                    r: arr("r")?,
                    v_leak: arr("v_leak")?,
                    v_reset: self.array_or_zeros(g, at, "v_reset", &v_threshold)?,
                    w_in: arr("w_in")?,
                    v_threshold,
                }
            }
            "Delay" => NodeKind::Delay {
                delay: arr("delay")?,
            },
            "NIRGraph" => NodeKind::Graph(self.graph(g, at)?),
            other => {
                return Err(self.err(at, format!("unknown node type '{other}'")));
            }
        };
        Ok(Node {
            kind,
            metadata: self.metadata(g, at)?,
        })
    }

    fn graph(&self, g: &Group, at: &str) -> Result<NirGraph> {
        let nodes_group = g
            .group("nodes")
            .map_err(|_| self.err(at, "a NIRGraph without a 'nodes' group"))?;
        let names = nodes_group
            .groups()
            .map_err(|e| self.err(at, format!("nodes: {e}")))?;
        let mut graph = NirGraph::default();
        for name in names {
            let child = nodes_group
                .group(&name)
                .map_err(|e| self.err(at, format!("node '{name}': {e}")))?;
            let path = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            graph.nodes.insert(name, self.node(&child, &path)?);
        }
        let edges = self.dataset(g, at, "edges")?;
        let shape = self.shape(&edges, at, "edges")?;
        let ends = edges
            .read_string()
            .map_err(|e| self.err(at, format!("field 'edges' is not strings: {e}")))?;
        let empty = ends.is_empty() && shape.iter().product::<usize>() == 0;
        if !empty && (shape.len() != 2 || shape[1] != 2 || ends.len() != shape[0] * 2) {
            return Err(self.err(
                at,
                format!("field 'edges' has shape {shape:?}, expected [n, 2]"),
            ));
        }
        graph.edges = ends
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        graph.metadata = self.metadata(g, at)?;
        Ok(graph)
    }
}

fn one<E>(v: Vec<i64>, err: impl FnOnce() -> E) -> std::result::Result<i64, E> {
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(err()),
    }
}

fn is_numeric(d: &Dataset) -> bool {
    matches!(
        d.dtype(),
        Ok(DType::F32
            | DType::F64
            | DType::I8
            | DType::I16
            | DType::I32
            | DType::I64
            | DType::U8
            | DType::U16
            | DType::U32
            | DType::U64)
    )
}

fn text(g: &mut GroupBuilder, name: &str, value: &str) {
    g.create_dataset(name)
        .with_vlen_strings(&[value])
        .with_shape(&[]);
}

/// A float array, gzip-compressed in one chunk as `nir.write` stores arrays (scalars and empty
/// arrays, which HDF5 cannot chunk, are stored plainly).
fn array(g: &mut GroupBuilder, name: &str, a: &Array) {
    let shape: Vec<u64> = a.shape.iter().map(|&s| s as u64).collect();
    let d = g.create_dataset(name);
    d.with_f32_data(&a.data).with_shape(&shape);
    if !shape.is_empty() && !shape.contains(&0) {
        d.with_chunks(&shape).with_deflate(4);
    }
}

fn ints(g: &mut GroupBuilder, name: &str, v: &[i64]) {
    let d = g.create_dataset(name);
    d.with_i64_data(v).with_shape(&[v.len() as u64]);
    if !v.is_empty() {
        d.with_chunks(&[v.len() as u64]).with_deflate(4);
    }
}

fn scalar_int(g: &mut GroupBuilder, name: &str, v: i64) {
    g.create_dataset(name).with_i64_data(&[v]).with_shape(&[]);
}

fn sizes(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

fn write_metadata(g: &mut GroupBuilder, meta: &Metadata) {
    if meta.is_empty() {
        return;
    }
    let mut m = g.create_group("metadata");
    for (k, v) in meta {
        match v {
            MetaValue::Text(t) => text(&mut m, k, t),
            MetaValue::Numbers(n) => {
                m.create_dataset(k)
                    .with_f64_data(n)
                    .with_shape(&[n.len() as u64]);
            }
        }
    }
    g.add_group(m.finish());
}

fn write_graph(g: &mut GroupBuilder, graph: &NirGraph) {
    text(g, "type", "NIRGraph");
    let ends: Vec<&str> = graph
        .edges
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    g.create_dataset("edges")
        .with_vlen_strings(&ends)
        .with_shape(&[graph.edges.len() as u64, 2]);
    let mut nodes = g.create_group("nodes");
    for (name, node) in &graph.nodes {
        let mut n = nodes.create_group(name);
        write_node(&mut n, node);
        nodes.add_group(n.finish());
    }
    g.add_group(nodes.finish());
    write_metadata(g, &graph.metadata);
}

fn write_node(g: &mut GroupBuilder, node: &Node) {
    let kind = &node.kind;
    if let NodeKind::Graph(inner) = kind {
        write_graph(g, inner);
        return;
    }
    text(g, "type", kind.type_name());
    for (field, a) in kind.arrays() {
        array(g, field, a);
    }
    match kind {
        NodeKind::Input { shape } | NodeKind::Output { shape } => ints(g, "shape", &sizes(shape)),
        NodeKind::Conv1d(c) | NodeKind::Conv2d(c) => {
            if let Some(s) = &c.input_shape {
                ints(g, "input_shape", &sizes(s));
            }
            ints(g, "stride", &sizes(&c.stride));
            ints(g, "dilation", &sizes(&c.dilation));
            match &c.padding {
                Padding::Explicit(p) => ints(g, "padding", &sizes(p)),
                Padding::Same => text(g, "padding", "same"),
                Padding::Valid => text(g, "padding", "valid"),
            }
            scalar_int(g, "groups", c.groups as i64);
        }
        NodeKind::SumPool2d(p) | NodeKind::AvgPool2d(p) => {
            ints(g, "kernel_size", &sizes(&p.kernel_size));
            ints(g, "stride", &sizes(&p.stride));
            ints(g, "padding", &sizes(&p.padding));
        }
        NodeKind::Flatten {
            start_dim,
            end_dim,
            input_type,
        } => {
            scalar_int(g, "start_dim", *start_dim);
            scalar_int(g, "end_dim", *end_dim);
            if let Some(s) = input_type {
                ints(g, "input_type", &sizes(s));
            }
        }
        _ => {}
    }
    write_metadata(g, &node.metadata);
}
