//! The losses, data and metrics of [`crate::train::regression`]: the membrane and spike-count
//! losses of snnTorch's regression tutorials, the data they read (target series or class
//! labels), and the tutorial's relative error.

use burn::tensor::{Device, Int, Tensor};

use crate::data::trajectories::Trajectories;
use crate::data::{Encoding, Samples};
use crate::error::{Error, Result};
use crate::loss::{MseCountLoss, MseMembraneLoss};

/// The loss on the output layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegressionLoss {
    /// Mean-square error between the membrane and target series (`torch.nn.MSELoss()`).
    MseMembrane,
    /// Spike counts against target rates of the labelled class and the others (`mse_count_loss`).
    MseCount {
        /// Rate asked of the correct class.
        correct_rate: f64,
        /// Rate asked of the others.
        incorrect_rate: f64,
    },
    /// Membrane against a level for the labelled class and another for the others
    /// (`mse_membrane_loss(on_target, off_target)`).
    MseMembraneClass {
        /// Level of the correct class.
        on: f64,
        /// Level of the others.
        off: f64,
    },
}

impl RegressionLoss {
    /// Parses `mse-membrane` (or `mse`), `mse-count[:CORRECT:INCORRECT]`, `mse-membrane:ON:OFF`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "loss",
                format!(
                    "'{s}': a regression loss is mse-membrane (membrane against target series), \
                     mse-count[:CORRECT:INCORRECT] or mse-membrane:ON:OFF (class labels)"
                ),
            )
        };
        let pair = |rest: &str| -> Result<(f64, f64)> {
            let (a, b) = rest.split_once(':').ok_or_else(bad)?;
            let num = |v: &str| v.trim().parse::<f64>().ok().filter(|x| x.is_finite());
            Ok((num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?))
        };
        match s {
            "mse" | "mse-membrane" => Ok(Self::MseMembrane),
            "mse-count" => Ok(Self::MseCount {
                correct_rate: 1.0,
                incorrect_rate: 0.0,
            }),
            _ => {
                if let Some(rest) = s.strip_prefix("mse-count:") {
                    let (c, i) = pair(rest)?;
                    if !((0.0..=1.0).contains(&c) && (0.0..=1.0).contains(&i)) {
                        return Err(bad());
                    }
                    Ok(Self::MseCount {
                        correct_rate: c,
                        incorrect_rate: i,
                    })
                } else if let Some(rest) = s.strip_prefix("mse-membrane:") {
                    let (on, off) = pair(rest)?;
                    Ok(Self::MseMembraneClass { on, off })
                } else {
                    Err(bad())
                }
            }
        }
    }

    /// The form [`RegressionLoss::parse`] reads.
    pub fn spec(&self) -> String {
        match self {
            Self::MseMembrane => "mse-membrane".into(),
            Self::MseCount {
                correct_rate,
                incorrect_rate,
            } => format!("mse-count:{correct_rate}:{incorrect_rate}"),
            Self::MseMembraneClass { on, off } => format!("mse-membrane:{on}:{off}"),
        }
    }

    /// True for the losses on class labels.
    pub fn needs_labels(&self) -> bool {
        !matches!(self, Self::MseMembrane)
    }
}

/// What a regression network learns from.
#[derive(Clone, Copy)]
pub enum RegressionData<'a> {
    /// Inputs `[T, N, F]` and target series `[T, N, O]`.
    Series(&'a Trajectories),
    /// Labelled images or event frames, flattened to `[T or 1, B, C·H·W]` (fed directly).
    Labelled(&'a dyn Samples),
}

/// A batch's targets.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Target membrane `[T, B, O]`.
    Series(Tensor<3>),
    /// Class labels `[B]`.
    Labels(Tensor<1, Int>),
}

impl RegressionData<'_> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Self::Series(t) => t.len(),
            Self::Labelled(s) => s.len(),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input features per step.
    pub fn features(&self) -> usize {
        match self {
            Self::Series(t) => t.features(),
            Self::Labelled(s) => s.input_shape().iter().product(),
        }
    }

    /// Output neurons the targets need.
    pub fn outputs(&self) -> usize {
        match self {
            Self::Series(t) => t.outputs(),
            Self::Labelled(s) => s.num_classes(),
        }
    }

    /// Inputs `[T or 1, B, F]` and targets of the samples at `indices`.
    pub fn batch(
        &self,
        indices: &[usize],
        steps: usize,
        rng: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> Result<(Tensor<3>, Targets)> {
        match self {
            Self::Series(t) => {
                let (x, y) = t.batch(indices, device)?;
                Ok((x, Targets::Series(y)))
            }
            Self::Labelled(s) => {
                let (x, y) = s.batch(indices, steps, Encoding::Direct, rng, device)?;
                let [t, b, c, h, w] = x.dims();
                Ok((x.reshape([t, b, c * h * w]), Targets::Labels(y)))
            }
        }
    }
}

/// The tutorial's relative error terms of membranes against targets, both `[T, B, O]`:
/// for each step `t ≥ 1` and sample `b`, `‖mem[t, b] − target[t, b]‖ / ‖target[t, b]‖`
/// (norms over the outputs). Returns their sum and count; entries whose target norm is zero
/// are left out (step 0 is, as in the tutorial, whose targets start at 0).
pub fn relative_error_sums(mem: &Tensor<3>, target: &Tensor<3>) -> Result<(f64, usize)> {
    if mem.dims() != target.dims() {
        return Err(Error::Shape {
            what: "relative error".into(),
            expected: format!("{:?} (the membrane's shape)", mem.dims()),
            got: format!("{:?}", target.dims()),
        });
    }
    let [t, b, o] = mem.dims();
    if t < 2 {
        return Ok((0.0, 0));
    }
    let diff = (mem.clone() - target.clone()).narrow(0, 1, t - 1);
    let num: Vec<f64> = diff.square().sum_dim(2).into_data().iter::<f64>().collect();
    let den: Vec<f64> = target
        .clone()
        .narrow(0, 1, t - 1)
        .square()
        .sum_dim(2)
        .into_data()
        .iter::<f64>()
        .collect();
    debug_assert_eq!(num.len(), (t - 1) * b * o / o);
    let (mut sum, mut count) = (0.0, 0);
    for (n, d) in num.iter().zip(&den) {
        if *d > 0.0 {
            sum += (n / d).sqrt();
            count += 1;
        }
    }
    Ok((sum, count))
}

/// The mean of [`relative_error_sums`]' terms; an error when no target is non-zero.
pub fn relative_error(mem: &Tensor<3>, target: &Tensor<3>) -> Result<f64> {
    let (sum, count) = relative_error_sums(mem, target)?;
    if count == 0 {
        return Err(Error::invalid(
            "relative error",
            "every target after step 0 is zero",
        ));
    }
    Ok(sum / count as f64)
}

/// The loss of a forward pass against its targets.
pub fn loss_of(
    kind: RegressionLoss,
    spk: Tensor<3>,
    mem: Tensor<3>,
    targets: &Targets,
) -> Result<Tensor<1>> {
    match (kind, targets) {
        (RegressionLoss::MseMembrane, Targets::Series(y)) => {
            if mem.dims() != y.dims() {
                return Err(Error::Shape {
                    what: "regression targets".into(),
                    expected: format!("{:?} (the output membrane's shape)", mem.dims()),
                    got: format!("{:?}", y.dims()),
                });
            }
            Ok((mem - y.clone()).square().mean())
        }
        (
            RegressionLoss::MseCount {
                correct_rate,
                incorrect_rate,
            },
            Targets::Labels(y),
        ) => MseCountLoss::new(correct_rate, incorrect_rate).forward(spk, y.clone()),
        (RegressionLoss::MseMembraneClass { on, off }, Targets::Labels(y)) => {
            MseMembraneLoss::new(on, off).forward(mem, y.clone())
        }
        (kind, Targets::Series(_)) => Err(Error::invalid(
            "loss",
            format!("{} needs class labels; target series take mse-membrane", kind.spec()),
        )),
        (_, Targets::Labels(_)) => Err(Error::invalid(
            "loss",
            "mse-membrane without levels needs target series; class labels take mse-count[:C:I] or mse-membrane:ON:OFF",
        )),
    }
}

/// Predicted classes `[B]`: the most-spiking output, or the highest mean membrane.
pub(crate) fn predicted(kind: RegressionLoss, spk: &Tensor<3>, mem: &Tensor<3>) -> Vec<i64> {
    let score = match kind {
        RegressionLoss::MseMembraneClass { .. } => mem.clone(),
        _ => spk.clone(),
    };
    let score = score.detach().sum_dim(0).squeeze_dim::<2>(0);
    score.argmax(1).into_data().iter::<i64>().collect()
}
