//! `nerve nir`: run, export and describe NIR graphs.

use std::path::PathBuf;

use clap::Subcommand;
use nerve::hw::nir::{self, graph::NodeKind, NirGraph};
use nerve::Result;

/// The `nerve nir` subcommands.
#[derive(Subcommand, Debug)]
pub enum NirCommand {
    /// Run a graph on inputs [T, B, *shape] (.npy float32) and write the spikes (and membrane)
    /// of the layer that feeds Output as [T, B, n].
    Run {
        /// The NIR file.
        graph: PathBuf,
        /// Inputs, float32 .npy of shape [T, B, *input shape].
        #[arg(long)]
        input: PathBuf,
        /// Where to write the outputs (spikes of a spiking layer), float32 [T, B, n].
        #[arg(long)]
        output: PathBuf,
        /// Where to write that layer's membrane after each step, float32 [T, B, n].
        #[arg(long)]
        membrane: Option<PathBuf>,
        /// Time step of the forward-Euler integration, seconds (snnTorch's convention: 1e-4).
        #[arg(long, default_value_t = nir::DEFAULT_DT)]
        dt: f32,
    },
    /// Export a training checkpoint's network as a NIR graph.
    Export {
        /// Checkpoint written by `nerve train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Where to write the graph.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a graph's nodes, fields, edges and shapes.
    Info {
        /// The NIR file.
        graph: PathBuf,
    },
}

/// Runs one `nerve nir` subcommand.
pub fn run(command: NirCommand) -> Result<()> {
    match command {
        NirCommand::Run {
            graph,
            input,
            output,
            membrane,
            dt,
        } => {
            let g = nir::read(&graph)?;
            let (dims, values) = nir::read_npy(&input)?;
            let out = nir::run(&g, &values, &dims, dt)?;
            let n: usize = out.shape.iter().product();
            let shape = [dims[0], dims[1], n];
            nir::write_npy(&output, &shape, &out.values)?;
            let spikes = out.values.iter().filter(|&&v| v != 0.0).count();
            println!(
                "ran {} steps × {} samples; '{}' {:?}: {spikes} nonzero outputs → {}",
                dims[0],
                dims[1],
                out.node,
                out.shape,
                output.display()
            );
            if let Some(path) = membrane {
                let mem = out.membrane.ok_or_else(|| {
                    nerve::Error::invalid(
                        "--membrane",
                        format!("'{}' is not a neuron and has no membrane", out.node),
                    )
                })?;
                nir::write_npy(&path, &shape, &mem)?;
                println!("membrane → {}", path.display());
            }
            Ok(())
        }
        NirCommand::Export { checkpoint, out } => {
            let g = nir::export::export_checkpoint(&checkpoint)?;
            nir::write(&out, &g)?;
            print_graph(&g, "");
            println!("wrote {}", out.display());
            Ok(())
        }
        NirCommand::Info { graph } => {
            let g = nir::read(&graph)?;
            let shapes = nir::run::output_shapes(&g)?;
            print_graph(&g, "");
            println!("output shapes:");
            for (name, shape) in shapes {
                println!("  {name:<16} {shape:?}");
            }
            Ok(())
        }
    }
}

/// One line per node (type, fields and their shapes), then the edges.
fn print_graph(g: &NirGraph, indent: &str) {
    for (name, node) in &g.nodes {
        let kind = &node.kind;
        let mut fields: Vec<String> = kind
            .arrays()
            .iter()
            .map(|(f, a)| format!("{f}{:?}", a.shape))
            .collect();
        match kind {
            NodeKind::Input { shape } | NodeKind::Output { shape } => {
                fields.push(format!("shape {shape:?}"))
            }
            NodeKind::Conv1d(c) | NodeKind::Conv2d(c) => fields.push(format!(
                "stride {:?} padding {:?} dilation {:?} groups {}",
                c.stride, c.padding, c.dilation, c.groups
            )),
            NodeKind::SumPool2d(p) | NodeKind::AvgPool2d(p) => fields.push(format!(
                "kernel {:?} stride {:?} padding {:?}",
                p.kernel_size, p.stride, p.padding
            )),
            NodeKind::Flatten {
                start_dim, end_dim, ..
            } => fields.push(format!("dims {start_dim}..{end_dim}")),
            _ => {}
        }
        if !node.metadata.is_empty() {
            let keys: Vec<&str> = node.metadata.keys().map(String::as_str).collect();
            fields.push(format!("metadata: {}", keys.join(", ")));
        }
        println!(
            "{indent}{name:<12} {:<10} {}",
            kind.type_name(),
            fields.join("  ")
        );
        if let NodeKind::Graph(inner) = kind {
            print_graph(inner, &format!("{indent}    "));
        }
    }
    let edges: Vec<String> = g.edges.iter().map(|(a, b)| format!("{a} → {b}")).collect();
    println!("{indent}edges: {}", edges.join(", "));
}
