//! Regression data over time: input currents `[T, N, F]` and target membranes `[T, N, O]`,
//! generated as in snnTorch's regression tutorial (Part I) or read from CSV / NumPy files
//! ([`crate::data::series_files`]).
//!
//! The tutorial's generator draws, for each sample, an end point `e ~ U(0, 1)` and feeds the
//! ramp `x_t = e·t/(T-1)` (`torch.linspace(0, e, T)`) as input. The target is the ramp itself
//! (`linear`) or `sqrt(s·x_t)` with one slope `s ~ U(0, 1)` drawn after every end point and
//! shared by all samples (`sqrt`).

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// The shape of the tutorial's generated targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrajectoryKind {
    /// The target is the input ramp itself.
    Linear,
    /// The target is `sqrt(slope · ramp)`.
    Sqrt,
}

impl TrajectoryKind {
    /// Parses `linear` or `sqrt`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "linear" => Ok(Self::Linear),
            "sqrt" => Ok(Self::Sqrt),
            other => Err(Error::invalid(
                "trajectory",
                format!("'{other}': expected linear or sqrt"),
            )),
        }
    }

    /// The name [`TrajectoryKind::parse`] reads.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Sqrt => "sqrt",
        }
    }
}

/// Options of the tutorial's trajectory generator.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryConfig {
    /// Target shape.
    pub kind: TrajectoryKind,
    /// Time steps T (the tutorial's 50).
    pub steps: usize,
    /// Number of trajectories N (the tutorial's 1).
    pub samples: usize,
    /// Seed of the random end points and slope.
    pub seed: u64,
    /// Every sample's end point instead of a random draw (the tutorial's sample under
    /// `torch.manual_seed(0)` has 0.4963).
    pub end: Option<f64>,
    /// The `sqrt` slope instead of a random draw (0.7682 under `torch.manual_seed(0)`).
    pub slope: Option<f64>,
}

impl TrajectoryConfig {
    /// The tutorial's setup: one `kind` trajectory of 50 steps, drawn from `seed`.
    pub fn tutorial(kind: TrajectoryKind, seed: u64) -> Self {
        Self {
            kind,
            steps: 50,
            samples: 1,
            seed,
            end: None,
            slope: None,
        }
    }

    /// Generates the trajectories.
    pub fn generate(&self) -> Result<Trajectories> {
        if self.steps < 2 {
            return Err(Error::invalid(
                "trajectory steps",
                format!("{}: a trajectory needs at least 2 time steps", self.steps),
            ));
        }
        if self.samples == 0 {
            return Err(Error::invalid("trajectory samples", "must be at least 1"));
        }
        let unit = |what: &str, v: Option<f64>| -> Result<()> {
            match v {
                Some(v) if !(v.is_finite() && v > 0.0) => Err(Error::invalid(
                    what,
                    format!("{v} must be a positive finite number"),
                )),
                _ => Ok(()),
            }
        };
        unit("trajectory end", self.end)?;
        unit("trajectory slope", self.slope)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let (t, n) = (self.steps, self.samples);
        // Drawn in the tutorial's order: every end point, then the slope.
        let ends: Vec<f64> = (0..n)
            .map(|_| {
                let draw: f64 = rng.random();
                self.end.unwrap_or(draw)
            })
            .collect();
        let slope = {
            let draw: f64 = rng.random();
            self.slope.unwrap_or(draw)
        };
        let mut inputs = vec![0f32; t * n];
        let mut targets = vec![0f32; t * n];
        for step in 0..t {
            for (s, &end) in ends.iter().enumerate() {
                let x = end * step as f64 / (t - 1) as f64;
                inputs[step * n + s] = x as f32;
                targets[step * n + s] = match self.kind {
                    TrajectoryKind::Linear => x as f32,
                    TrajectoryKind::Sqrt => (x * slope).sqrt() as f32,
                };
            }
        }
        Trajectories::new([t, n, 1], inputs, [t, n, 1], targets, "trajectories")
    }
}

/// Inputs `[T, N, F]` and targets `[T, N, O]` for membrane regression, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectories {
    /// `[T, N, F]`.
    pub input_shape: [usize; 3],
    /// Input values, row-major.
    pub inputs: Vec<f32>,
    /// `[T, N, O]`.
    pub target_shape: [usize; 3],
    /// Target values, row-major.
    pub targets: Vec<f32>,
}

impl Trajectories {
    /// Checks that the shapes agree (same T and N), every size is non-zero, the value counts
    /// fit the shapes and every value is finite; `what` names the data in errors.
    pub fn new(
        input_shape: [usize; 3],
        inputs: Vec<f32>,
        target_shape: [usize; 3],
        targets: Vec<f32>,
        what: &str,
    ) -> Result<Self> {
        let shape_err = |expected: String, got: String| Error::Shape {
            what: what.into(),
            expected,
            got,
        };
        if input_shape.contains(&0) || target_shape.contains(&0) {
            return Err(shape_err(
                "non-empty [T, N, F] inputs and [T, N, O] targets".into(),
                format!("inputs {input_shape:?}, targets {target_shape:?}"),
            ));
        }
        if input_shape[..2] != target_shape[..2] {
            return Err(shape_err(
                format!(
                    "targets with the inputs' T and N, [{}, {}, O]",
                    input_shape[0], input_shape[1]
                ),
                format!("targets {target_shape:?}"),
            ));
        }
        for (name, shape, values) in [
            ("inputs", input_shape, &inputs),
            ("targets", target_shape, &targets),
        ] {
            if shape.iter().product::<usize>() != values.len() {
                return Err(shape_err(
                    format!(
                        "{} {name} values for {shape:?}",
                        shape.iter().product::<usize>()
                    ),
                    format!("{}", values.len()),
                ));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                let [_, n, f] = shape;
                return Err(Error::invalid(
                    what,
                    format!(
                        "{name} value {} at step {}, sample {}, column {} is not finite",
                        values[i],
                        i / (n * f),
                        i / f % n,
                        i % f
                    ),
                ));
            }
        }
        Ok(Self {
            input_shape,
            inputs,
            target_shape,
            targets,
        })
    }

    /// Time steps T.
    pub fn steps(&self) -> usize {
        self.input_shape[0]
    }

    /// Number of samples N.
    pub fn len(&self) -> usize {
        self.input_shape[1]
    }

    /// True when there are no samples (never, for a checked value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input features F.
    pub fn features(&self) -> usize {
        self.input_shape[2]
    }

    /// Target outputs O.
    pub fn outputs(&self) -> usize {
        self.target_shape[2]
    }

    /// Inputs `[T, B, F]` and targets `[T, B, O]` of the samples at `indices`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<(Tensor<3>, Tensor<3>)> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::invalid(
                "sample index",
                format!("{bad} is out of range for {} samples", self.len()),
            ));
        }
        let gather = |shape: [usize; 3], values: &[f32]| {
            let [t, n, f] = shape;
            let mut out = Vec::with_capacity(t * indices.len() * f);
            for step in 0..t {
                for &i in indices {
                    let at = (step * n + i) * f;
                    out.extend_from_slice(&values[at..at + f]);
                }
            }
            Tensor::<3>::from_data(TensorData::new(out, [t, indices.len(), f]), device)
        };
        Ok((
            gather(self.input_shape, &self.inputs),
            gather(self.target_shape, &self.targets),
        ))
    }
}
