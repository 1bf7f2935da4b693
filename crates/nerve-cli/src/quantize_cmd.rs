//! `nerve quantize`: a training checkpoint converted to an integer program (`.nq`).

use std::path::PathBuf;

use clap::Args;
use nerve::hw::integer::{self, IntOp, IntProgram};
use nerve::Result;

/// Options of `nerve quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// Checkpoint written by `nerve train` (quantization-aware or float).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Where to write the integer program.
    #[arg(long)]
    out: PathBuf,
    /// Bits per weight for a network trained without --weight-bits (1..8; a quantization-aware
    /// network keeps its own grid).
    #[arg(long, default_value_t = 8)]
    weight_bits: u32,
}

/// `nerve quantize`.
pub fn run(args: QuantizeArgs) -> Result<()> {
    let program = IntProgram::from_checkpoint(&args.checkpoint, args.weight_bits)?;
    integer::save(&program, &args.out)?;
    println!("model: {}", program.source);
    println!(
        "integer program: {} ops, {} steps",
        program.ops.len(),
        program.steps
    );
    for op in &program.ops {
        let line = match op {
            IntOp::Conv {
                out_channels,
                kernel,
                bits,
                input,
                ..
            } => format!(
                "conv {}→{out_channels} {}x{}, {bits}-bit weights",
                input[0], kernel[0], kernel[1]
            ),
            IntOp::Linear {
                inputs,
                outputs,
                bits,
                ..
            } => format!("linear {inputs}→{outputs}, {bits}-bit weights"),
            IntOp::MaxPool { size, .. } => format!("max pool {size}x{size}"),
            IntOp::SumPool { size, .. } => {
                format!("sum pool {size}x{size} (average, scale folded)")
            }
            IntOp::Leaky {
                channels,
                per_channel,
                beta,
                threshold,
                ..
            } => format!(
                "leaky {}x{per_channel}, β {beta}/65536, thresholds {}..{} units",
                channels,
                threshold.iter().min().unwrap_or(&0),
                threshold.iter().max().unwrap_or(&0)
            ),
        };
        println!("  {line}");
    }
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!("wrote {} ({size} bytes)", args.out.display());
    Ok(())
}
