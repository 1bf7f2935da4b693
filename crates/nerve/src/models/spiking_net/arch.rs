//! The architecture-string parser (the tokens are described in the module docs of
//! [`crate::models::spiking_net`]).

use crate::error::{Error, Result};

/// One parsed token of an architecture string.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// Convolution to `channels` with a square `kernel`.
    Conv {
        /// Output channels.
        channels: usize,
        /// Kernel size.
        kernel: usize,
    },
    /// Max pooling with window and stride `size`.
    MaxPool(usize),
    /// Average pooling with window and stride `size`.
    AvgPool(usize),
    /// Batch-norm through time (`BN`): statistics and affine parameters per step.
    BatchNorm,
    /// Batch-norm shared over time (`BN2D`): one set of statistics and parameters for all steps,
    /// as a PyTorch `BatchNorm2d` inside an snnTorch loop (the QSNN networks).
    BatchNorm2d,
    /// Dropout with probability `p`.
    Dropout(f64),
    /// Fully connected to `n` outputs.
    Linear(usize),
    /// An explicit Leaky layer (placed after a convolution; optional after `FC<n>`).
    Lif,
}

/// Parses an architecture string such as `12C5-MP2-64C5-MP2-FC10`.
pub fn parse_arch(arch: &str) -> Result<Vec<Token>> {
    let bad = |tok: &str, why: &str| {
        Error::invalid("architecture", format!("token '{tok}' in '{arch}': {why}"))
    };
    let num = |tok: &str, s: &str| -> Result<usize> {
        s.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(tok, "expected a positive integer"))
    };
    let mut tokens = Vec::new();
    for tok in arch.split('-').map(str::trim) {
        let upper = tok.to_ascii_uppercase();
        let t = if let Some(rest) = upper.strip_prefix("FC") {
            Token::Linear(num(tok, rest)?)
        } else if let Some(rest) = upper.strip_prefix("MP") {
            Token::MaxPool(num(tok, rest)?)
        } else if let Some(rest) = upper.strip_prefix("AP") {
            Token::AvgPool(num(tok, rest)?)
        } else if upper == "BN" {
            Token::BatchNorm
        } else if upper == "BN2D" {
            Token::BatchNorm2d
        } else if upper == "LIF" {
            Token::Lif
        } else if let Some(rest) = upper.strip_prefix("DO") {
            let p: f64 = rest
                .parse()
                .map_err(|_| bad(tok, "expected a probability"))?;
            if !(0.0..1.0).contains(&p) {
                return Err(bad(tok, "dropout probability must be in [0, 1)"));
            }
            Token::Dropout(p)
        } else if let Some((c, k)) = upper.split_once('C') {
            Token::Conv {
                channels: num(tok, c)?,
                kernel: num(tok, k)?,
            }
        } else {
            return Err(bad(
                tok,
                "expected <n>C<k>, MP<k>, AP<k>, BN, BN2D, DO<p>, LIF or FC<n>",
            ));
        };
        tokens.push(t);
    }
    let last_layer = tokens.iter().rev().find(|t| **t != Token::Lif);
    if !matches!(last_layer, Some(Token::Linear(_))) {
        return Err(Error::invalid(
            "architecture",
            format!("'{arch}' must end with a fully connected layer (FC<n>)"),
        ));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tutorial_architecture() {
        let tokens = parse_arch("12C5-MP2-64C5-MP2-FC10").unwrap();
        assert_eq!(tokens.len(), 5);
        assert_eq!(
            tokens[0],
            Token::Conv {
                channels: 12,
                kernel: 5
            }
        );
        assert!(parse_arch("12C5-MP2").is_err(), "must end with FC");
        let err = parse_arch("12X5-FC10").unwrap_err().to_string();
        assert!(err.contains("12X5"), "{err}");
    }
}
