//! The `.nq` file: a self-describing integer program.
//!
//! ```text
//! magic    8 bytes  "NERVENQ\0"
//! version  u32 LE   1
//! length   u32 LE   bytes of the header
//! header   JSON     {"program": {input, steps, source, ops: [{op, shapes, bits, ...}]},
//!                    "payload_bytes": N, "fnv1a64": "16 hex digits"}
//! payload  N bytes  per op in order: conv/linear weights (i8); Leaky bias (i32 LE),
//!                   threshold (i32 LE) and scale (f32 LE), one each per channel
//! ```
//!
//! The reader checks every length against the shapes before it slices, the checksum of the
//! payload, and that the ops chain (each op's input is what the one before produces), so a
//! program it returns runs without surprises. Writing is atomic (temp file + rename).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::program::{IntOp, IntProgram};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// The first bytes of every `.nq` file.
pub const MAGIC: &[u8; 8] = b"NERVENQ\0";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Most time steps a program may ask for.
const MAX_STEPS: usize = 1 << 20;
/// Most values in one activation or weight array (64 Mi: 256 MB of 32-bit currents).
const MAX_VALUES: usize = 1 << 26;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    program: IntProgram,
    payload_bytes: u64,
    fnv1a64: String,
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The program as `.nq` bytes.
pub fn encode(program: &IntProgram) -> Result<Vec<u8>> {
    validate(program)?;
    let mut payload = Vec::new();
    for op in &program.ops {
        match op {
            IntOp::Conv { weights, .. } | IntOp::Linear { weights, .. } => {
                payload.extend(weights.iter().map(|&w| w as u8));
            }
            IntOp::Leaky {
                bias,
                threshold,
                scale,
                ..
            } => {
                bias.iter().for_each(|v| payload.extend(v.to_le_bytes()));
                threshold
                    .iter()
                    .for_each(|v| payload.extend(v.to_le_bytes()));
                scale.iter().for_each(|v| payload.extend(v.to_le_bytes()));
            }
            IntOp::MaxPool { .. } | IntOp::SumPool { .. } => {}
        }
    }
    let header = serde_json::to_vec(&Header {
        program: program.clone(),
        payload_bytes: payload.len() as u64,
        fnv1a64: format!("{:016x}", fnv1a64(&payload)),
    })
    .map_err(|e| Error::invalid("integer program", e.to_string()))?;
    let mut bytes = Vec::with_capacity(16 + header.len() + payload.len());
    bytes.extend(MAGIC);
    bytes.extend(VERSION.to_le_bytes());
    bytes.extend(
        u32::try_from(header.len())
            .map_err(|_| Error::invalid("integer program", "header larger than 4 GiB"))?
            .to_le_bytes(),
    );
    bytes.extend(header);
    bytes.extend(payload);
    Ok(bytes)
}

/// Writes the program to `path` atomically.
pub fn save(program: &IntProgram, path: impl AsRef<Path>) -> Result<()> {
    write_atomic(path, &encode(program)?)
}

/// Reads a `.nq` file.
pub fn load(path: impl AsRef<Path>) -> Result<IntProgram> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes).map_err(|msg| Error::format(path, msg))
}

/// Parses `.nq` bytes; the error says what is wrong with them, on one line.
pub fn decode(bytes: &[u8]) -> std::result::Result<IntProgram, String> {
    // A message may quote the file (a JSON key), so control characters become spaces.
    decode_bytes(bytes).map_err(|m| {
        m.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    })
}

fn decode_bytes(bytes: &[u8]) -> std::result::Result<IntProgram, String> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err("not a Nerve integer program (.nq): the magic bytes are missing".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!(
            "format version {version}; this build reads version {VERSION}"
        ));
    }
    let len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    let header_bytes = bytes.get(16..16usize.saturating_add(len)).ok_or_else(|| {
        format!(
            "truncated: the header claims {len} bytes, {} follow",
            bytes.len() - 16
        )
    })?;
    let header: Header =
        serde_json::from_slice(header_bytes).map_err(|e| format!("header is not valid: {e}"))?;
    let payload = &bytes[16 + len..];
    if payload.len() as u64 != header.payload_bytes {
        return Err(format!(
            "truncated or padded: the payload should be {} bytes, found {}",
            header.payload_bytes,
            payload.len()
        ));
    }
    if format!("{:016x}", fnv1a64(payload)) != header.fnv1a64 {
        return Err("the payload's checksum does not match (a corrupt file)".into());
    }
    let mut program = header.program;
    let mut at = 0usize;
    let mut take = |n: usize| -> std::result::Result<&[u8], String> {
        let end = at.checked_add(n).filter(|&e| e <= payload.len()).ok_or_else(|| {
            format!("the payload ends before the arrays its shapes describe ({n} more bytes at {at})")
        })?;
        let slice = &payload[at..end];
        at = end;
        Ok(slice)
    };
    for op in &mut program.ops {
        match op {
            IntOp::Conv {
                input,
                out_channels,
                kernel,
                weights,
                ..
            } => {
                let n = checked_product(&[*out_channels, input[0], kernel[0], kernel[1]])?;
                *weights = take(n)?.iter().map(|&b| b as i8).collect();
            }
            IntOp::Linear {
                inputs,
                outputs,
                weights,
                ..
            } => {
                let n = checked_product(&[*inputs, *outputs])?;
                *weights = take(n)?.iter().map(|&b| b as i8).collect();
            }
            IntOp::Leaky {
                channels,
                bias,
                threshold,
                scale,
                ..
            } => {
                let n = checked_product(&[*channels, 4])?;
                let words = |b: &[u8]| -> Vec<[u8; 4]> {
                    b.chunks_exact(4)
                        .map(|c| c.try_into().expect("4 bytes"))
                        .collect()
                };
                *bias = words(take(n)?)
                    .into_iter()
                    .map(i32::from_le_bytes)
                    .collect();
                *threshold = words(take(n)?)
                    .into_iter()
                    .map(i32::from_le_bytes)
                    .collect();
                *scale = words(take(n)?)
                    .into_iter()
                    .map(f32::from_le_bytes)
                    .collect();
            }
            IntOp::MaxPool { .. } | IntOp::SumPool { .. } => {}
        }
    }
    if at != payload.len() {
        return Err(format!(
            "{} bytes of payload are left over",
            payload.len() - at
        ));
    }
    validate(&program).map_err(|e| e.to_string())?;
    Ok(program)
}

fn checked_product(dims: &[usize]) -> std::result::Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |p, &d| p.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| format!("shape {dims:?} is too large"))
}

/// What flows between ops while checking a program.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Pixels,
    Current,
    Spikes,
}

/// Checks that the ops chain and that every array has the length its shape says.
pub fn validate(program: &IntProgram) -> Result<()> {
    let bad = |msg: String| Error::invalid("integer program", msg);
    if program.steps == 0 || program.steps > MAX_STEPS {
        return Err(bad(format!(
            "{} time steps (1..{MAX_STEPS})",
            program.steps
        )));
    }
    let mut shape: Vec<usize> = program.input.to_vec();
    checked_product(&shape).map_err(bad)?;
    if shape.contains(&0) {
        return Err(bad(format!("input {:?} has an empty axis", program.input)));
    }
    let mut kind = Kind::Pixels;
    for (i, op) in program.ops.iter().enumerate() {
        let at = |msg: String| bad(format!("op {i}: {msg}"));
        let total: usize = shape.iter().product();
        match op {
            IntOp::Conv {
                input,
                out_channels,
                kernel,
                padding,
                bits,
                weights,
            } => {
                if shape != input.to_vec() || kind == Kind::Current {
                    return Err(at(format!(
                        "a convolution of {input:?} fed {kind:?} {shape:?}"
                    )));
                }
                let [c, h, w] = *input;
                let (hp, wp) = (h + 2 * padding[0], w + 2 * padding[1]);
                let padded_past_kernel = padding[0] >= kernel[0] || padding[1] >= kernel[1];
                if kernel.contains(&0)
                    || kernel[0] > hp
                    || kernel[1] > wp
                    || *out_channels == 0
                    || padded_past_kernel
                {
                    return Err(at(format!("kernel {kernel:?} does not fit {input:?}")));
                }
                check_weights(
                    *bits,
                    weights,
                    checked_product(&[*out_channels, c, kernel[0], kernel[1]]).map_err(at)?,
                )
                .map_err(at)?;
                shape = vec![*out_channels, hp + 1 - kernel[0], wp + 1 - kernel[1]];
                checked_product(&shape).map_err(at)?;
                kind = Kind::Current;
            }
            IntOp::Linear {
                inputs,
                outputs,
                bits,
                weights,
            } => {
                if total != *inputs || kind == Kind::Current || *outputs == 0 {
                    return Err(at(format!("{inputs} inputs fed {kind:?} {shape:?}")));
                }
                check_weights(
                    *bits,
                    weights,
                    checked_product(&[*inputs, *outputs]).map_err(at)?,
                )
                .map_err(at)?;
                shape = vec![*outputs];
                kind = Kind::Current;
            }
            IntOp::MaxPool { input, size } | IntOp::SumPool { input, size } => {
                let sum = matches!(op, IntOp::SumPool { .. });
                if shape != input.to_vec() || kind == Kind::Pixels || (sum && kind == Kind::Spikes)
                {
                    return Err(at(format!("pooling of {input:?} fed {kind:?} {shape:?}")));
                }
                if *size == 0 || *size > input[1] || *size > input[2] {
                    return Err(at(format!("window {size} does not fit {input:?}")));
                }
                shape = vec![input[0], input[1] / size, input[2] / size];
            }
            IntOp::Leaky {
                channels,
                per_channel,
                bias,
                threshold,
                scale,
                beta,
                ..
            } => {
                let fits = match shape.as_slice() {
                    [c, h, w] => *channels == *c && *per_channel == h * w,
                    [n] => *channels == *n && *per_channel == 1,
                    _ => false,
                };
                if kind != Kind::Current || !fits {
                    return Err(at(format!(
                        "{channels}x{per_channel} neurons fed {kind:?} {shape:?}"
                    )));
                }
                if [bias.len(), threshold.len(), scale.len()] != [*channels; 3] {
                    return Err(at(
                        "bias, threshold and scale need one value per channel".into()
                    ));
                }
                if !(0..=1 << super::program::BETA_FRAC_BITS).contains(beta) {
                    return Err(at(format!("β {beta} is outside [0, 1] in fixed point")));
                }
                kind = Kind::Spikes;
            }
        }
    }
    if kind != Kind::Spikes {
        return Err(bad("the program must end with a layer of neurons".into()));
    }
    Ok(())
}

/// Weights must be as many as the shape says and within their bit width.
fn check_weights(bits: u32, weights: &[i8], len: usize) -> std::result::Result<(), String> {
    if !(1..=8).contains(&bits) {
        return Err(format!("{bits} is outside 1..8 bits"));
    }
    if weights.len() != len {
        return Err(format!(
            "{} weights where the shape holds {len}",
            weights.len()
        ));
    }
    let max = if bits == 1 {
        1
    } else {
        (1i32 << (bits - 1)) - 1
    }
    .max(1);
    if let Some(w) = weights.iter().find(|w| i32::from(**w).abs() > max) {
        return Err(format!("weight {w} does not fit {bits} bits"));
    }
    Ok(())
}
