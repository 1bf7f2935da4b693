//! The options of a [`SpikingNet`] and how they build one from its architecture string.

use burn::tensor::Device;

use super::arch::{parse_arch, Token};
use super::{SpikingNet, Stage};
use crate::error::{Error, Result};
use crate::layers::{
    BatchNormTT2d, TimeAvgPool2d, TimeBatchNorm2d, TimeConv2d, TimeDropout, TimeLinear,
    TimeMaxPool2d,
};
use crate::neurons::{FiringConfig, LeakyConfig};
use crate::quant::WeightQuantConfig;

/// Options of a [`SpikingNet`].
#[derive(Debug, Clone)]
pub struct SpikingNetConfig {
    /// Architecture string, e.g. `12C5-MP2-64C5-MP2-FC10`.
    pub arch: String,
    /// Input `[channels, height, width]`.
    pub input: [usize; 3],
    /// Number of time steps.
    pub steps: usize,
    /// Leaky layers' decay β.
    pub beta: f64,
    /// Learn β per layer.
    pub learn_beta: bool,
    /// Firing rule of every Leaky layer (its `state_quant` quantizes every membrane).
    pub firing: FiringConfig,
    /// Fake-quantization of every convolution and fully connected layer's weights.
    pub weight_quant: Option<WeightQuantConfig>,
}

impl SpikingNetConfig {
    /// snnTorch's tutorial conv SNN on 28×28 greyscale images: β = 0.5, 25 steps.
    pub fn tutorial_conv() -> Self {
        Self {
            arch: "12C5-MP2-64C5-MP2-FC10".into(),
            input: [1, 28, 28],
            steps: 25,
            beta: 0.5,
            learn_beta: false,
            firing: FiringConfig::default(),
            weight_quant: None,
        }
    }

    /// A one-line description that identifies the parameter layout (stored in checkpoints).
    pub fn describe(&self) -> String {
        let [c, h, w] = self.input;
        let f = &self.firing;
        let mut text = format!(
            "{} in={c}x{h}x{w} T={} leaky beta={}{} threshold={} reset={:?}",
            self.arch,
            self.steps,
            self.beta,
            if self.learn_beta { " (learned)" } else { "" },
            f.threshold,
            f.reset
        );
        // Only quantized networks say so, so float checkpoints keep their description.
        if let Some(w) = &self.weight_quant {
            text.push_str(&format!(" weights={w}"));
        }
        if let Some(q) = &f.state_quant {
            let c = &q.config;
            text.push_str(&format!(
                " states={}bit {}",
                c.num_bits,
                match (c.uniform, c.thr_centered) {
                    (true, _) => "uniform",
                    (false, true) => "threshold-centred",
                    (false, false) => "zero-centred",
                }
            ));
        }
        text
    }

    /// Checks the options a user can get wrong before anything is built.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::invalid("steps", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(Error::invalid(
                "beta",
                format!("{} is outside [0, 1]", self.beta),
            ));
        }
        if !self.firing.threshold.is_finite() {
            return Err(Error::invalid(
                "threshold",
                format!("{} is not finite", self.firing.threshold),
            ));
        }
        if self.input.contains(&0) {
            return Err(Error::invalid(
                "input",
                format!("{:?} has an empty axis", self.input),
            ));
        }
        if let Some(w) = &self.weight_quant {
            w.validate()?;
        }
        if let Some(q) = &self.firing.state_quant {
            q.config.levels()?;
        }
        Ok(())
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<SpikingNet> {
        self.validate()?;
        let tokens = parse_arch(&self.arch)?;
        let [mut c, mut h, mut w] = self.input;
        let mut flat: Option<usize> = None;
        let mut stages = Vec::new();
        let mut names = Vec::new();
        let leaky = LeakyConfig {
            beta: self.beta,
            learn_beta: self.learn_beta,
            size: 1,
            firing: self.firing.clone(),
            record_mem: false,
        };
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                Token::Conv { channels, kernel } => {
                    if flat.is_some() {
                        return Err(Error::invalid(
                            "architecture",
                            format!(
                                "'{}': a convolution cannot follow a fully connected layer",
                                self.arch
                            ),
                        ));
                    }
                    if *kernel > h || *kernel > w {
                        return Err(Error::invalid(
                            "architecture",
                            format!(
                                "'{}': kernel {kernel} is larger than the {h}x{w} feature map",
                                self.arch
                            ),
                        ));
                    }
                    stages.push(Stage::Conv(
                        TimeConv2d::new(c, *channels, *kernel, device).quantized(self.weight_quant),
                    ));
                    c = *channels;
                    h = h - kernel + 1;
                    w = w - kernel + 1;
                    // Pooling, batch-norm and dropout right after a convolution come before its
                    // neurons, unless an explicit LIF puts the neurons first.
                    let mut placed = false;
                    while let Some(next) = tokens.get(i + 1) {
                        match next {
                            Token::MaxPool(s) | Token::AvgPool(s) => {
                                if *s > h || *s > w {
                                    return Err(Error::invalid("architecture", format!("'{}': pooling {s} is larger than the {h}x{w} feature map", self.arch)));
                                }
                                stages.push(if matches!(next, Token::MaxPool(_)) {
                                    Stage::MaxPool(TimeMaxPool2d::new(*s))
                                } else {
                                    Stage::AvgPool(TimeAvgPool2d::new(*s))
                                });
                                h /= s;
                                w /= s;
                            }
                            Token::BatchNorm if !placed => stages
                                .push(Stage::BatchNorm(BatchNormTT2d::new(c, self.steps, device))),
                            Token::BatchNorm2d if !placed => {
                                stages.push(Stage::BatchNorm2d(TimeBatchNorm2d::new(c, device)))
                            }
                            Token::Dropout(p) => stages.push(Stage::Dropout(TimeDropout::new(*p))),
                            Token::Lif if !placed => {
                                stages.push(Stage::Neuron(leaky.init(device)));
                                names.push((
                                    format!("conv{} ({c}x{h}x{w})", names.len() + 1),
                                    c * h * w,
                                ));
                                placed = true;
                            }
                            _ => break,
                        }
                        i += 1;
                    }
                    if !placed {
                        stages.push(Stage::Neuron(leaky.init(device)));
                        names.push((format!("conv{} ({c}x{h}x{w})", names.len() + 1), c * h * w));
                    }
                }
                Token::Linear(n) => {
                    let inputs = flat.unwrap_or(c * h * w);
                    stages.push(Stage::Linear(
                        TimeLinear::new(inputs, *n, device).quantized(self.weight_quant),
                    ));
                    stages.push(Stage::Neuron(leaky.init(device)));
                    names.push((format!("fc{} ({n})", names.len() + 1), *n));
                    flat = Some(*n);
                    // `FC<n>-LIF` spells out the Leaky layer every FC has anyway.
                    if tokens.get(i + 1) == Some(&Token::Lif) {
                        i += 1;
                    }
                }
                Token::Dropout(p) => stages.push(Stage::Dropout(TimeDropout::new(*p))),
                Token::MaxPool(_) | Token::AvgPool(_) | Token::BatchNorm | Token::BatchNorm2d => {
                    return Err(Error::invalid(
                        "architecture",
                        format!("'{}': pooling and BN must follow a convolution", self.arch),
                    ));
                }
                Token::Lif => {
                    return Err(Error::invalid(
                        "architecture",
                        format!(
                            "'{}': LIF must follow a convolution (or its pooling), once",
                            self.arch
                        ),
                    ));
                }
            }
            i += 1;
        }
        Ok(SpikingNet {
            stages,
            layer_names: names,
            steps: self.steps,
            input: self.input,
            description: self.describe(),
        })
    }
}
