//! The NIR graph in memory: every node type the Python `nir` package (1.0.x) defines, with the
//! fields it stores, and the checks a graph must pass before it runs.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// A float parameter array (NIR stores float32 or float64; Nerve keeps float32).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Shape, row-major (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

impl Array {
    /// An array of `shape` holding `data` (lengths are checked by [`NirGraph::validate`]).
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self { shape, data }
    }

    /// A one-dimensional array.
    pub fn vector(data: Vec<f32>) -> Self {
        Self {
            shape: vec![data.len()],
            data,
        }
    }

    /// `n` copies of `value` in a one-dimensional array.
    pub fn filled(shape: &[usize], value: f32) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![value; shape.iter().product()],
        }
    }

    /// Number of elements the shape says it has.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A convolution's padding: explicit per spatial axis, or one of PyTorch's names.
#[derive(Debug, Clone, PartialEq)]
pub enum Padding {
    /// Zeros on both sides of each spatial axis.
    Explicit(Vec<usize>),
    /// Output as large as the input (stride 1).
    Same,
    /// No padding.
    Valid,
}

/// The fields of `Conv1d` and `Conv2d` (weight `[out, in/groups, *kernel]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Spatial input shape, when the file records it.
    pub input_shape: Option<Vec<usize>>,
    /// Weight `[C_out, C_in / groups, *kernel]`.
    pub weight: Array,
    /// Stride per spatial axis.
    pub stride: Vec<usize>,
    /// Padding.
    pub padding: Padding,
    /// Dilation per spatial axis.
    pub dilation: Vec<usize>,
    /// Channel groups.
    pub groups: usize,
    /// Bias `[C_out]`.
    pub bias: Array,
}

/// The fields of `SumPool2d` and `AvgPool2d`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Window `[height, width]`.
    pub kernel_size: Vec<usize>,
    /// Stride `[height, width]`.
    pub stride: Vec<usize>,
    /// Zero padding `[height, width]`.
    pub padding: Vec<usize>,
}

/// What a node computes, with the fields NIR stores for it.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// The graph's input, of `shape` (no batch axis).
    Input {
        /// Shape of one sample.
        shape: Vec<usize>,
    },
    /// The graph's output, of `shape`.
    Output {
        /// Shape of one sample.
        shape: Vec<usize>,
    },
    /// `W x + b`.
    Affine {
        /// Weight `[out, in]`.
        weight: Array,
        /// Bias `[out]`.
        bias: Array,
    },
    /// `W x`.
    Linear {
        /// Weight `[out, in]`.
        weight: Array,
    },
    /// Element-wise `s · x`.
    Scale {
        /// Factors.
        scale: Array,
    },
    /// One-dimensional convolution.
    Conv1d(Conv),
    /// Two-dimensional convolution.
    Conv2d(Conv),
    /// Flattening of axes `start_dim..=end_dim` (of one sample's shape).
    Flatten {
        /// First axis flattened.
        start_dim: i64,
        /// Last axis flattened (`-1`: the last).
        end_dim: i64,
        /// Input shape, when the file records it.
        input_type: Option<Vec<usize>>,
    },
    /// Sum over windows.
    SumPool2d(Pool),
    /// Mean over windows (padding counted, as PyTorch's default).
    AvgPool2d(Pool),
    /// `H(x − θ)`.
    Threshold {
        /// θ.
        threshold: Array,
    },
    /// Integrator `dv/dt = r·x`.
    I {
        /// r.
        r: Array,
    },
    /// Integrate-and-fire.
    IF {
        /// r.
        r: Array,
        /// Threshold.
        v_threshold: Array,
        /// Reset potential.
        v_reset: Array,
    },
    /// Leaky integrator.
    LI {
        /// Membrane time constant.
        tau: Array,
        /// r.
        r: Array,
        /// Leak potential.
        v_leak: Array,
    },
    /// Leaky integrate-and-fire.
    LIF {
        /// Membrane time constant.
        tau: Array,
        /// r.
        r: Array,
        /// Leak potential.
        v_leak: Array,
        /// Threshold.
        v_threshold: Array,
        /// Reset potential.
        v_reset: Array,
    },
    /// Current-based leaky integrator.
    CubaLI {
        /// Membrane time constant.
        tau_mem: Array,
        /// Synaptic time constant.
        tau_syn: Array,
        /// r.
        r: Array,
        /// Leak potential.
        v_leak: Array,
        /// Input weight of the current.
        w_in: Array,
    },
    /// Current-based leaky integrate-and-fire.
    CubaLIF {
        /// Membrane time constant.
        tau_mem: Array,
        /// Synaptic time constant.
        tau_syn: Array,
        /// r.
        r: Array,
        /// Leak potential.
        v_leak: Array,
        /// Threshold.
        v_threshold: Array,
        /// Reset potential.
        v_reset: Array,
        /// Input weight of the current.
        w_in: Array,
    },
    /// `y(t) = x(t − delay)`.
    Delay {
        /// Delays in seconds, one per element.
        delay: Array,
    },
    /// A nested graph.
    Graph(NirGraph),
}

impl NodeKind {
    /// The `type` string NIR writes for this node.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Input { .. } => "Input",
            NodeKind::Output { .. } => "Output",
            NodeKind::Affine { .. } => "Affine",
            NodeKind::Linear { .. } => "Linear",
            NodeKind::Scale { .. } => "Scale",
            NodeKind::Conv1d(_) => "Conv1d",
            NodeKind::Conv2d(_) => "Conv2d",
            NodeKind::Flatten { .. } => "Flatten",
            NodeKind::SumPool2d(_) => "SumPool2d",
            NodeKind::AvgPool2d(_) => "AvgPool2d",
            NodeKind::Threshold { .. } => "Threshold",
            NodeKind::I { .. } => "I",
            NodeKind::IF { .. } => "IF",
            NodeKind::LI { .. } => "LI",
            NodeKind::LIF { .. } => "LIF",
            NodeKind::CubaLI { .. } => "CubaLI",
            NodeKind::CubaLIF { .. } => "CubaLIF",
            NodeKind::Delay { .. } => "Delay",
            NodeKind::Graph(_) => "NIRGraph",
        }
    }

    /// True for nodes that keep state from one step to the next (what a cycle needs).
    pub fn is_stateful(&self) -> bool {
        matches!(
            self,
            NodeKind::I { .. }
                | NodeKind::IF { .. }
                | NodeKind::LI { .. }
                | NodeKind::LIF { .. }
                | NodeKind::CubaLI { .. }
                | NodeKind::CubaLIF { .. }
                | NodeKind::Delay { .. }
        )
    }

    /// The float arrays of the node, by field name (for checks and listings).
    pub fn arrays(&self) -> Vec<(&'static str, &Array)> {
        match self {
            NodeKind::Affine { weight, bias } => vec![("weight", weight), ("bias", bias)],
            NodeKind::Linear { weight } => vec![("weight", weight)],
            NodeKind::Scale { scale } => vec![("scale", scale)],
            NodeKind::Conv1d(c) | NodeKind::Conv2d(c) => {
                vec![("weight", &c.weight), ("bias", &c.bias)]
            }
            NodeKind::Threshold { threshold } => vec![("threshold", threshold)],
            NodeKind::I { r } => vec![("r", r)],
            NodeKind::IF {
                r,
                v_threshold,
                v_reset,
            } => vec![("r", r), ("v_threshold", v_threshold), ("v_reset", v_reset)],
            NodeKind::LI { tau, r, v_leak } => vec![("tau", tau), ("r", r), ("v_leak", v_leak)],
            NodeKind::LIF {
                tau,
                r,
                v_leak,
                v_threshold,
                v_reset,
            } => vec![
                ("tau", tau),
                ("r", r),
                ("v_leak", v_leak),
                ("v_threshold", v_threshold),
                ("v_reset", v_reset),
            ],
            NodeKind::CubaLI {
                tau_mem,
                tau_syn,
                r,
                v_leak,
                w_in,
            } => vec![
                ("tau_mem", tau_mem),
                ("tau_syn", tau_syn),
                ("r", r),
                ("v_leak", v_leak),
                ("w_in", w_in),
            ],
            NodeKind::CubaLIF {
                tau_mem,
                tau_syn,
                r,
                v_leak,
                v_threshold,
                v_reset,
                w_in,
            } => vec![
                ("tau_mem", tau_mem),
                ("tau_syn", tau_syn),
                ("r", r),
                ("v_leak", v_leak),
                ("v_threshold", v_threshold),
                ("v_reset", v_reset),
                ("w_in", w_in),
            ],
            NodeKind::Delay { delay } => vec![("delay", delay)],
            _ => Vec::new(),
        }
    }
}

/// A metadata value: NIR stores metadata as a flat group of datasets.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// A string.
    Text(String),
    /// Numbers (any numeric dataset, read as f64).
    Numbers(Vec<f64>),
}

/// A node's (or graph's) metadata, by key.
pub type Metadata = BTreeMap<String, MetaValue>;

/// A node: what it computes and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The computation and its fields.
    pub kind: NodeKind,
    /// Free-form metadata (Nerve keeps its exact semantics here; see [`super::export`]).
    pub metadata: Metadata,
}

impl Node {
    /// A node without metadata.
    pub fn new(kind: NodeKind) -> Self {
        Self {
            kind,
            metadata: Metadata::new(),
        }
    }

    /// A text metadata value.
    pub fn meta_text(&self, key: &str) -> Option<&str> {
        match self.metadata.get(key) {
            Some(MetaValue::Text(t)) => Some(t),
            _ => None,
        }
    }
}

/// A NIR graph: named nodes and the edges between them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NirGraph {
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// Edges `(from, to)`; several edges into one node are summed.
    pub edges: Vec<(String, String)>,
    /// Graph metadata.
    pub metadata: Metadata,
}

impl NirGraph {
    /// Checks what can be checked without running: edges name existing nodes, no duplicates,
    /// one Input and one Output at the top level, array lengths match their shapes, weights
    /// have the rank their node needs, and every cycle passes through a node with state.
    pub fn validate(&self) -> Result<()> {
        self.validate_nested("")?;
        let count = |t: &str| {
            self.nodes
                .values()
                .filter(|n| n.kind.type_name() == t)
                .count()
        };
        if count("Input") != 1 {
            return Err(invalid(format!(
                "the graph needs exactly one Input node, found {}",
                count("Input")
            )));
        }
        if count("Output") != 1 {
            return Err(invalid(format!(
                "the graph needs exactly one Output node, found {}",
                count("Output")
            )));
        }
        Ok(())
    }

    fn validate_nested(&self, prefix: &str) -> Result<()> {
        let mut seen = BTreeSet::new();
        for (a, b) in &self.edges {
            for end in [a, b] {
                if !self.nodes.contains_key(end) {
                    return Err(invalid(format!(
                        "edge ({prefix}{a}, {prefix}{b}) names node '{prefix}{end}', which the graph lacks"
                    )));
                }
            }
            if !seen.insert((a, b)) {
                return Err(invalid(format!(
                    "duplicate edge ({prefix}{a}, {prefix}{b})"
                )));
            }
        }
        for (name, node) in &self.nodes {
            let at = format!("{prefix}{name}");
            check_node(&at, &node.kind)?;
            if let NodeKind::Graph(g) = &node.kind {
                g.validate_nested(&format!("{at}."))?;
                let inputs = g
                    .nodes
                    .values()
                    .filter(|n| matches!(n.kind, NodeKind::Input { .. }));
                if inputs.count() != 1 {
                    return Err(invalid(format!(
                        "node '{at}': a nested graph needs exactly one Input node"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Names of the nodes with an edge into `name`, in edge order.
    pub fn sources(&self, name: &str) -> Vec<&str> {
        self.edges
            .iter()
            .filter(|(_, b)| b == name)
            .map(|(a, _)| a.as_str())
            .collect()
    }
}

fn invalid(msg: String) -> Error {
    Error::invalid("NIR graph", msg)
}

/// Field checks of one node: lengths against shapes, ranks, positive sizes.
fn check_node(at: &str, kind: &NodeKind) -> Result<()> {
    for (field, a) in kind.arrays() {
        if a.numel() != a.data.len() {
            return Err(invalid(format!(
                "node '{at}' ({}): field '{field}' has shape {:?} but {} values",
                kind.type_name(),
                a.shape,
                a.data.len()
            )));
        }
    }
    let rank = |field: &str, a: &Array, want: usize| {
        if a.shape.len() != want {
            return Err(invalid(format!(
                "node '{at}' ({}): field '{field}' has shape {:?}, expected {want} axes",
                kind.type_name(),
                a.shape
            )));
        }
        Ok(())
    };
    let positive = |field: &str, v: &[usize]| {
        if v.contains(&0) {
            return Err(invalid(format!(
                "node '{at}' ({}): field '{field}' {v:?} has a zero",
                kind.type_name()
            )));
        }
        Ok(())
    };
    match kind {
        NodeKind::Affine { weight, bias } => {
            rank("weight", weight, 2)?;
            if bias.numel() != weight.shape[0] {
                return Err(invalid(format!(
                    "node '{at}' (Affine): bias has {} values for {} outputs",
                    bias.numel(),
                    weight.shape[0]
                )));
            }
        }
        NodeKind::Linear { weight } => rank("weight", weight, 2)?,
        NodeKind::Conv1d(c) | NodeKind::Conv2d(c) => {
            let axes = if matches!(kind, NodeKind::Conv1d(_)) {
                1
            } else {
                2
            };
            rank("weight", &c.weight, axes + 2)?;
            for (field, v) in [("stride", &c.stride), ("dilation", &c.dilation)] {
                if v.len() != axes {
                    return Err(invalid(format!(
                        "node '{at}' ({}): field '{field}' {v:?} needs {axes} values",
                        kind.type_name()
                    )));
                }
                positive(field, v)?;
            }
            if let Padding::Explicit(p) = &c.padding {
                if p.len() != axes {
                    return Err(invalid(format!(
                        "node '{at}' ({}): field 'padding' {p:?} needs {axes} values",
                        kind.type_name()
                    )));
                }
            }
            if c.groups == 0
                || c.weight.shape[0] % c.groups != 0
                || c.bias.numel() != c.weight.shape[0]
            {
                return Err(invalid(format!(
                    "node '{at}' ({}): {} groups, {} output channels and {} biases do not fit",
                    kind.type_name(),
                    c.groups,
                    c.weight.shape[0],
                    c.bias.numel()
                )));
            }
        }
        NodeKind::SumPool2d(p) | NodeKind::AvgPool2d(p) => {
            for (field, v) in [
                ("kernel_size", &p.kernel_size),
                ("stride", &p.stride),
                ("padding", &p.padding),
            ] {
                if v.len() != 2 {
                    return Err(invalid(format!(
                        "node '{at}' ({}): field '{field}' {v:?} needs 2 values",
                        kind.type_name()
                    )));
                }
            }
            positive("kernel_size", &p.kernel_size)?;
            positive("stride", &p.stride)?;
        }
        NodeKind::Input { shape } | NodeKind::Output { shape } => positive("shape", shape)?,
        _ => {}
    }
    Ok(())
}
