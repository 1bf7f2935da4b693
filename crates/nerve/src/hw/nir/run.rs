//! Running a NIR graph on inputs `[T, B, *shape]`.
//!
//! Nested graphs are inlined (their Input and Output become pass-throughs). Nodes run in the
//! order of a depth-first walk from the Input; an edge that points back in that order closes a
//! cycle and carries its source's output of the previous step (zero at the first), and every
//! cycle must pass through a node with state. Several edges into a node are summed. A graph
//! without cycles runs layer by layer over all steps at once (as Nerve's own networks run);
//! one with cycles runs step by step.

use std::collections::BTreeMap;

use burn::tensor::Device;

use super::build::{build, Step};
use super::graph::{NirGraph, Node, NodeKind};
use super::ops::{State, Stateless};
use crate::error::{Error, Result};

/// The time step snnTorch's NIR import and export assume (seconds).
pub const DEFAULT_DT: f32 = 1e-4;

/// What [`run`] returns: the output of the node that feeds `Output`.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Its name (nested graphs' nodes as `outer.inner`).
    pub node: String,
    /// Its shape per sample.
    pub shape: Vec<usize>,
    /// Its outputs (spikes, for a spiking neuron) `[T, B, n]`, flattened.
    pub values: Vec<f32>,
    /// Its membrane after each step `[T, B, n]`, when it is a neuron.
    pub membrane: Option<Vec<f32>>,
}

/// Runs `graph` on `input` (`[T, B, *in_shape]` values, shape in `dims`) with time step `dt`.
pub fn run(graph: &NirGraph, input: &[f32], dims: &[usize], dt: f32) -> Result<RunOutput> {
    graph.validate()?;
    if dims.len() < 2 {
        return Err(invalid(format!(
            "input shape {dims:?}: expected [T, B, *shape]"
        )));
    }
    if input.len() != dims.iter().product::<usize>() {
        return Err(invalid(format!(
            "input holds {} values, not the {dims:?} its shape says",
            input.len()
        )));
    }
    if !(dt.is_finite() && dt > 0.0) {
        return Err(invalid(format!("dt {dt} must be positive")));
    }
    let (steps, batch) = (dims[0], dims[1]);
    let mut flat = Flat::default();
    flat.add_graph(graph, "")?;
    let plan = Plan::new(&flat, &dims[2..], dt)?;
    let device = Device::flex();
    plan.execute(input, steps, batch, &device)
}

/// The output shape of every node (nested graphs' nodes as `outer.inner`), inferred from the
/// Input's declared shape and checked along every edge.
pub fn output_shapes(graph: &NirGraph) -> Result<BTreeMap<String, Vec<usize>>> {
    graph.validate()?;
    let declared = graph
        .nodes
        .values()
        .find_map(|n| match &n.kind {
            NodeKind::Input { shape } => Some(shape.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut flat = Flat::default();
    flat.add_graph(graph, "")?;
    let plan = Plan::new(&flat, &declared, DEFAULT_DT)?;
    Ok(plan.names.into_iter().zip(plan.shapes).collect())
}

pub(super) fn invalid(msg: String) -> Error {
    Error::invalid("NIR graph", msg)
}

/// The graph with nested graphs inlined: node names, kinds and edges by index.
#[derive(Default)]
struct Flat<'a> {
    names: Vec<String>,
    nodes: Vec<FlatNode<'a>>,
    edges: Vec<(usize, usize)>,
}

enum FlatNode<'a> {
    /// A node that computes something.
    Real(&'a Node),
    /// A nested graph's Input or Output.
    PassThrough,
}

impl<'a> Flat<'a> {
    /// Adds `graph`'s nodes under `prefix`; returns the indices of its Input and Output.
    fn add_graph(&mut self, graph: &'a NirGraph, prefix: &str) -> Result<(usize, usize)> {
        let mut ends: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let (mut input, mut output) = (None, None);
        for (name, node) in &graph.nodes {
            let full = format!("{prefix}{name}");
            let pair = match &node.kind {
                NodeKind::Graph(inner) => self.add_graph(inner, &format!("{full}."))?,
                kind => {
                    let real = prefix.is_empty()
                        || !matches!(kind, NodeKind::Input { .. } | NodeKind::Output { .. });
                    self.names.push(full);
                    self.nodes.push(if real {
                        FlatNode::Real(node)
                    } else {
                        FlatNode::PassThrough
                    });
                    let i = self.nodes.len() - 1;
                    match kind {
                        NodeKind::Input { .. } => input = Some(i),
                        NodeKind::Output { .. } => output = Some(i),
                        _ => {}
                    }
                    (i, i)
                }
            };
            ends.insert(name, pair);
        }
        for (a, b) in &graph.edges {
            // An edge leaves a nested graph from its Output and enters it at its Input.
            self.edges.push((ends[a.as_str()].1, ends[b.as_str()].0));
        }
        match (input, output) {
            (Some(i), Some(o)) => Ok((i, o)),
            _ => Err(invalid(format!(
                "graph '{}' needs an Input and an Output node",
                prefix.trim_end_matches('.')
            ))),
        }
    }
}

struct Plan {
    order: Vec<usize>,
    steps: Vec<Step>,
    shapes: Vec<Vec<usize>>,
    /// Per node, its sources and whether the edge is delayed one step.
    sources: Vec<Vec<(usize, bool)>>,
    entry: usize,
    observed: usize,
    names: Vec<String>,
    cyclic: bool,
}

impl Plan {
    fn new(flat: &Flat, in_shape: &[usize], dt: f32) -> Result<Self> {
        let n = flat.nodes.len();
        let kind = |i: usize| match flat.nodes[i] {
            FlatNode::Real(node) => Some(&node.kind),
            FlatNode::PassThrough => None,
        };
        let entry = (0..n)
            .find(|&i| matches!(kind(i), Some(NodeKind::Input { .. })))
            .ok_or_else(|| invalid("no Input node".into()))?;
        let exit = (0..n)
            .find(|&i| matches!(kind(i), Some(NodeKind::Output { .. })))
            .ok_or_else(|| invalid("no Output node".into()))?;
        let mut succ = vec![Vec::new(); n];
        for &(a, b) in &flat.edges {
            succ[a].push(b);
        }
        let order = depth_first_order(entry, &succ);
        let mut position = vec![usize::MAX; n];
        for (p, &i) in order.iter().enumerate() {
            position[i] = p;
        }
        if let Some(lost) = (0..n).find(|&i| position[i] == usize::MAX) {
            return Err(invalid(format!(
                "node '{}' cannot be reached from the Input",
                flat.names[lost]
            )));
        }
        let mut sources = vec![Vec::new(); n];
        let mut cyclic = false;
        for &(a, b) in &flat.edges {
            let delayed = position[a] >= position[b];
            cyclic |= delayed;
            sources[b].push((a, delayed));
        }
        check_cycles(flat, &succ, |i| kind(i).is_some_and(|k| k.is_stateful()))?;
        // The node whose output is reported: Output's source, through pass-throughs.
        let mut observed = exit;
        loop {
            let from = &sources[observed];
            let through = observed == exit || kind(observed).is_none();
            match (through, from.as_slice()) {
                (true, [(s, _)]) => observed = *s,
                (true, _) => {
                    return Err(invalid(format!(
                        "'{}' must have exactly one edge into it",
                        flat.names[observed]
                    )))
                }
                (false, _) => break,
            }
        }

        let mut shapes: Vec<Option<Vec<usize>>> = vec![None; n];
        let mut steps: Vec<Option<Step>> = (0..n).map(|_| None).collect();
        for &i in &order {
            let name = &flat.names[i];
            let in_shape = if i == entry {
                in_shape.to_vec()
            } else {
                let (first, _) = sources[i]
                    .iter()
                    .find(|(_, d)| !d)
                    .ok_or_else(|| invalid(format!("node '{name}' has no input")))?;
                shapes[*first].clone().unwrap_or_default()
            };
            let (step, out) = match kind(i) {
                None => (Step::Stateless(Box::new(Stateless::Identity)), in_shape),
                Some(k) => {
                    let node = match flat.nodes[i] {
                        FlatNode::Real(node) => node,
                        FlatNode::PassThrough => unreachable!("kind() is None for these"),
                    };
                    build(name, k, node, &in_shape, dt)?
                }
            };
            shapes[i] = Some(out);
            steps[i] = Some(step);
        }
        let shapes: Vec<Vec<usize>> = shapes.into_iter().map(Option::unwrap_or_default).collect();
        for (b, from) in sources.iter().enumerate() {
            for &(a, _) in from {
                let expected = if b == entry {
                    in_shape.to_vec()
                } else {
                    // What the target was built for: its first undelayed source's shape.
                    let first = from.iter().find(|(_, d)| !d).map(|(s, _)| *s).unwrap_or(a);
                    shapes[first].clone()
                };
                if shapes[a] != expected {
                    return Err(invalid(format!(
                        "edge ({}, {}): '{}' gives {:?} but '{}' takes {:?}",
                        flat.names[a],
                        flat.names[b],
                        flat.names[a],
                        shapes[a],
                        flat.names[b],
                        expected
                    )));
                }
            }
        }
        Ok(Self {
            order,
            steps: steps
                .into_iter()
                .map(|s| s.expect("every node is planned"))
                .collect(),
            shapes,
            sources,
            entry,
            observed,
            names: flat.names.clone(),
            cyclic,
        })
    }

    fn numel(&self, i: usize) -> usize {
        self.shapes[i].iter().product()
    }

    fn execute(
        &self,
        input: &[f32],
        t_len: usize,
        batch: usize,
        device: &Device,
    ) -> Result<RunOutput> {
        let n = self.steps.len();
        let observed = self.observed;
        let record_mem = matches!(&self.steps[observed], Step::Neuron(d) if d.has_membrane());
        let mut membrane = record_mem.then(Vec::new);
        let values = if self.cyclic {
            let mut now: Vec<Vec<f32>> = (0..n).map(|i| vec![0.0; batch * self.numel(i)]).collect();
            let mut states: Vec<Option<State>> = (0..n)
                .map(|i| match &self.steps[i] {
                    Step::Neuron(d) => Some(d.zero_state(batch * self.numel(i))),
                    Step::Stateless(_) => None,
                })
                .collect();
            let mut out = Vec::with_capacity(t_len * batch * self.numel(observed));
            let per_step = batch * self.numel(self.entry);
            for t in 0..t_len {
                let prev = now.clone();
                for &i in &self.order {
                    let x = if i == self.entry {
                        input[t * per_step..(t + 1) * per_step].to_vec()
                    } else {
                        sum_sources(
                            &self.sources[i],
                            |s, delayed| {
                                if delayed {
                                    &prev[s]
                                } else {
                                    &now[s]
                                }
                            },
                        )
                    };
                    now[i] = match (&self.steps[i], states[i].as_mut()) {
                        (Step::Stateless(op), _) => op.apply(x, batch, device),
                        (Step::Neuron(d), Some(state)) => d.step(state, &x, self.numel(i)),
                        (Step::Neuron(_), None) => unreachable!("neurons have state"),
                    };
                    if i == observed {
                        if let (Some(m), Some(s)) = (membrane.as_mut(), states[i].as_ref()) {
                            m.extend_from_slice(&s.v);
                        }
                    }
                }
                out.extend_from_slice(&now[observed]);
            }
            out
        } else {
            let mut outputs: Vec<Vec<f32>> = vec![Vec::new(); n];
            for &i in &self.order {
                let x = if i == self.entry {
                    input.to_vec()
                } else {
                    sum_sources(&self.sources[i], |s, _| &outputs[s])
                };
                outputs[i] = match &self.steps[i] {
                    Step::Stateless(op) => op.apply(x, t_len * batch, device),
                    Step::Neuron(d) => {
                        let (y, mem) = d.run_sequence(&x, t_len, self.numel(i), device);
                        if i == observed {
                            if let Some(m) = membrane.as_mut() {
                                *m = mem;
                            }
                        }
                        y
                    }
                };
            }
            std::mem::take(&mut outputs[observed])
        };
        Ok(RunOutput {
            node: self.names[observed].clone(),
            shape: self.shapes[observed].clone(),
            values,
            membrane,
        })
    }
}

/// The sum of a node's inputs, in edge order.
fn sum_sources<'a>(from: &[(usize, bool)], get: impl Fn(usize, bool) -> &'a Vec<f32>) -> Vec<f32> {
    let mut x = get(from[0].0, from[0].1).clone();
    for &(s, d) in &from[1..] {
        for (a, b) in x.iter_mut().zip(get(s, d)) {
            *a += b;
        }
    }
    x
}

/// Nodes reachable from `entry`, each before the nodes it feeds (except along back edges).
fn depth_first_order(entry: usize, succ: &[Vec<usize>]) -> Vec<usize> {
    let mut seen = vec![false; succ.len()];
    let mut post = Vec::new();
    let mut stack = vec![(entry, 0usize)];
    seen[entry] = true;
    while let Some((node, next)) = stack.pop() {
        if let Some(&child) = succ[node].get(next) {
            stack.push((node, next + 1));
            if !seen[child] {
                seen[child] = true;
                stack.push((child, 0));
            }
        } else {
            post.push(node);
        }
    }
    post.reverse();
    post
}

/// Every cycle (strongly connected set of nodes) must contain a node with state.
fn check_cycles(flat: &Flat, succ: &[Vec<usize>], stateful: impl Fn(usize) -> bool) -> Result<()> {
    let n = succ.len();
    let reach = |from: usize, edges: &[Vec<usize>]| {
        let mut seen = vec![false; n];
        let mut stack = vec![from];
        while let Some(v) = stack.pop() {
            for &w in &edges[v] {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    };
    for v in 0..n {
        let forward = reach(v, succ);
        if !forward[v] {
            continue;
        }
        // The cycle through v: nodes reachable from v that reach v back.
        let members: Vec<usize> = (0..n)
            .filter(|&w| forward[w] && reach(w, succ)[v])
            .collect();
        if !members.iter().any(|&w| stateful(w)) {
            let names: Vec<&str> = members.iter().map(|&w| flat.names[w].as_str()).collect();
            return Err(invalid(format!(
                "the cycle through {} has no neuron or delay in it",
                names.join(", ")
            )));
        }
    }
    Ok(())
}
