//! The loss a classification run trains with, by the name the command line and checkpoints use.

use crate::error::{Error, Result};

/// The training loss on the output layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossKind {
    /// Cross-entropy of the spikes at every step (snnTorch `ce_rate_loss`).
    CeRate,
    /// Cross-entropy of the spike counts (`ce_count_loss`).
    CeCount,
    /// Mean-square error of spike counts against target rates (`mse_count_loss`).
    MseCount {
        /// Firing rate asked of the correct class (snnTorch's default 1).
        correct_rate: f64,
        /// Firing rate asked of the other classes (snnTorch's default 0).
        incorrect_rate: f64,
    },
    /// Cross-entropy of the maximum membrane (`ce_max_membrane_loss`).
    CeMaxMembrane,
}

impl LossKind {
    /// The form [`LossKind::parse`] reads.
    pub fn spec(&self) -> String {
        match self {
            LossKind::CeRate => "ce-rate".into(),
            LossKind::CeCount => "ce-count".into(),
            LossKind::MseCount {
                correct_rate,
                incorrect_rate,
            } => format!("mse-count:{correct_rate}:{incorrect_rate}"),
            LossKind::CeMaxMembrane => "ce-max-membrane".into(),
        }
    }

    /// Parses `ce-rate`, `ce-count`, `mse-count[:CORRECT:INCORRECT]`, `ce-max-membrane`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "loss",
                format!(
                    "'{s}': expected ce-rate, ce-count, mse-count[:CORRECT:INCORRECT] (rates in \
                     [0, 1], e.g. mse-count:0.8:0.2) or ce-max-membrane"
                ),
            )
        };
        match s {
            "ce-rate" => return Ok(LossKind::CeRate),
            "ce-count" => return Ok(LossKind::CeCount),
            "mse-count" => {
                return Ok(LossKind::MseCount {
                    correct_rate: 1.0,
                    incorrect_rate: 0.0,
                })
            }
            "ce-max-membrane" => return Ok(LossKind::CeMaxMembrane),
            _ => {}
        }
        let rates = s.strip_prefix("mse-count:").ok_or_else(bad)?;
        let (c, i) = rates.split_once(':').ok_or_else(bad)?;
        let rate = |v: &str| -> Result<f64> {
            let r: f64 = v.trim().parse().map_err(|_| bad())?;
            if (0.0..=1.0).contains(&r) {
                Ok(r)
            } else {
                Err(bad())
            }
        };
        Ok(LossKind::MseCount {
            correct_rate: rate(c)?,
            incorrect_rate: rate(i)?,
        })
    }
}
