//! Training a network for the accelerator's own arithmetic, so that it runs there unchanged.
//!
//! The chip's threshold is fixed at 230 on an 8-bit potential and one active synapse adds 1, so a
//! one-to-one input neuron relays at most one spike per run, and a neuron of a later layer can
//! only fire by starting near the threshold: its initial potential, which memory sets per
//! neuron, is the one free parameter besides the 1-bit weights. Presenting a binarised image at
//! the first step (input neurons start at 230 and fire on their pixel), the three layers of
//! that step compute, exactly:
//!
//! - hidden `j`: `v = min(255, u₀ⱼ + min(255, Σᵢ wᵢⱼ xᵢ))`, spike when `v > 230`;
//! - output `k`: `v = min(255, u₀ₖ + min(255, Σⱼ wⱼₖ hⱼ))`, read back from potential memory;
//!   the class is the output with the largest `v` (the lowest index on a tie).
//!
//! [`ChipNet`] models this in float (every value an exact integer), with 1-bit weights from
//! latent weights by a straight-through estimator (`w > 0`), initial potentials rounded and
//! clamped to 0..255 straight-through, and the spike's gradient from a sigmoid surrogate. Its
//! predictions equal the simulated chip's bit for bit ([`ChipNet::compile`] builds the chip's
//! network and initial state, and the tests compare).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::datapath::{Layer, Network, State};
use super::{MAX_BETA, MAX_FAN_IN, MAX_NEURONS, MAX_OUTPUTS, THRESH_HIGH};
use crate::error::{Error, Result};

/// A pixel (0..255) is an input spike when it is at least this bright.
pub const PIXEL_ON: u8 = 128;

/// The two layers of a network trained for the chip.
#[derive(Module, Debug)]
pub struct ChipNet {
    /// Latent weights `[inputs, hidden]`; the chip's weight is `w > 0`.
    pub w1: Param<Tensor<2>>,
    /// Latent initial potentials of the hidden neurons.
    pub u1: Param<Tensor<1>>,
    /// Latent weights `[hidden, outputs]`.
    pub w2: Param<Tensor<2>>,
    /// Latent initial potentials of the output neurons.
    pub u2: Param<Tensor<1>>,
}

/// `w > 0` forward; the gradient of `clamp(w, −1, 1)/2` backward.
fn binary(w: Tensor<2>) -> Tensor<2> {
    let hard = w.clone().greater_elem(0.0).float();
    let soft = w.clamp(-1.0, 1.0) * 0.5;
    // `soft − soft` is exactly zero, so the forward value is exactly `hard`.
    hard.detach() + (soft.clone() - soft.detach())
}

/// Rounded and clamped to an 8-bit potential forward; straight through (inside 0..255) backward.
fn potential(u: Tensor<1>) -> Tensor<1> {
    let c = u.clamp(0.0, 255.0);
    c.clone().round().detach() + (c.clone() - c.detach())
}

/// `x > 0` forward (x is `v − 230.5`, so the chip's `v > 230` on integers); a sigmoid's
/// derivative of width `width` backward.
fn spike(x: Tensor<2>, width: f32) -> Tensor<2> {
    let hard = x.clone().greater_elem(0.0).float();
    let soft = sigmoid(x / width);
    // `soft − soft` is exactly zero, so the forward value is exactly `hard`.
    hard.detach() + (soft.clone() - soft.detach())
}

/// A layer's potentials: `min(255, u₀ + min(255, inputs · weights))`.
fn layer(x: Tensor<2>, w: Tensor<2>, u: Tensor<1>) -> Tensor<2> {
    let acc = x.matmul(binary(w)).clamp_max(255.0);
    (acc + potential(u).unsqueeze_dim(0)).clamp_max(255.0)
}

impl ChipNet {
    /// A network of `inputs → hidden → outputs` within the chip's limits, weights drawn on
    /// `device` and initial potentials set so that a typical input brings half the neurons to the
    /// threshold.
    pub fn new(inputs: usize, hidden: usize, outputs: usize, device: &Device) -> Result<Self> {
        for (what, got, limit) in [
            ("inputs", inputs, MAX_FAN_IN),
            ("hidden neurons", hidden, MAX_NEURONS),
            ("outputs", outputs, MAX_OUTPUTS),
        ] {
            if got == 0 || got > limit {
                return Err(Error::invalid(
                    "OpenSpike network",
                    format!("{got} {what}; the accelerator takes 1 to {limit}"),
                ));
            }
        }
        let w = |i: usize, o: usize| {
            Param::from_tensor(Tensor::<2>::random(
                [i, o],
                Distribution::Uniform(-0.1, 0.1),
                device,
            ))
        };
        let u = |n: usize, start: f32| Param::from_tensor(Tensor::<1>::full([n], start, device));
        Ok(Self {
            w1: w(inputs, hidden),
            // About 100 active pixels, half of them on 1-weights: 50 below the threshold.
            u1: u(hidden, 181.0),
            w2: w(hidden, outputs),
            u2: u(outputs, 100.0),
        })
    }

    /// Output potentials `[B, outputs]` for binary inputs `[B, inputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let threshold = f32::from(THRESH_HIGH) + 0.5;
        let v1 = layer(x, self.w1.val(), self.u1.val());
        let h = spike(v1 - threshold, 8.0);
        layer(h, self.w2.val(), self.u2.val())
    }

    /// The chip's network (input, hidden and output layers) and its initial state.
    pub fn compile(&self) -> Result<(Network, State)> {
        let [inputs, hidden] = self.w1.dims();
        let outputs = self.w2.dims()[1];
        let bits = |w: &Param<Tensor<2>>| -> Vec<bool> {
            w.val().into_data().iter::<f32>().map(|v| v > 0.0).collect()
        };
        let (b1, b2) = (bits(&self.w1), bits(&self.w2));
        let layers = vec![
            Layer::from_fn(inputs, vec![MAX_BETA; inputs], |j, i| i == j)?,
            Layer::from_fn(inputs, vec![MAX_BETA; hidden], |j, i| b1[i * hidden + j])?,
            Layer::from_fn(hidden, vec![MAX_BETA; outputs], |j, i| b2[i * outputs + j])?,
        ];
        let network = Network::new(layers)?;
        let mut init = network.rest_state();
        init.u[0] = vec![THRESH_HIGH; inputs];
        let start = |u: &Param<Tensor<1>>| -> Vec<u8> {
            u.val()
                .into_data()
                .iter::<f32>()
                .map(|v| v.clamp(0.0, 255.0).round() as u8)
                .collect()
        };
        init.u[1] = start(&self.u1);
        init.u[2] = start(&self.u2);
        Ok((network, init))
    }
}

/// Binarised images `[n, pixels]` as 0/1 floats.
pub fn binarize(images: &[&[u8]]) -> Vec<f32> {
    images
        .iter()
        .flat_map(|im| im.iter().map(|&p| f32::from(u8::from(p >= PIXEL_ON))))
        .collect()
}

/// The class the chip reports: the output with the largest potential, the lowest on a tie.
pub fn predict(potentials: &[u8]) -> usize {
    (0..potentials.len())
        .max_by_key(|&k| (potentials[k], std::cmp::Reverse(k)))
        .unwrap_or(0)
}

/// The simulated chip's class for one image (its first step, as [`ChipNet`] computes it).
pub fn classify_on_chip(network: &Network, init: &State, image: &[u8]) -> Result<usize> {
    let mut state = init.clone();
    let x: Vec<bool> = image.iter().map(|&p| p >= PIXEL_ON).collect();
    let steps = network.step(&mut state, &x)?;
    Ok(steps.last().map_or(0, |last| predict(&last.potentials)))
}

/// Options of [`train`].
#[derive(Clone, Debug)]
pub struct ChipTrainConfig {
    /// Hidden neurons (≤ 1024).
    pub hidden: usize,
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Softmax temperature on the output potentials.
    pub temperature: f32,
    /// Seed of the weights and the data order.
    pub seed: u64,
}

impl Default for ChipTrainConfig {
    fn default() -> Self {
        Self {
            hidden: 1024,
            epochs: 5,
            batch_size: 128,
            lr: 1e-2,
            temperature: 4.0,
            seed: 0,
        }
    }
}

/// Trains a [`ChipNet`] on `images` (each `pixels` long) with `labels`; `progress` hears
/// `(epoch, batch, batches, loss)` after every step.
pub fn train(
    images: &[&[u8]],
    labels: &[u8],
    classes: usize,
    config: &ChipTrainConfig,
    mut progress: impl FnMut(usize, usize, usize, f64),
) -> Result<ChipNet> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let pixels = images.first().map_or(0, |im| im.len());
    if images.is_empty() || images.len() != labels.len() || config.batch_size == 0 {
        return Err(Error::invalid(
            "OpenSpike training",
            "needs images, one label each, and a batch size of at least 1",
        ));
    }
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let mut net = ChipNet::new(pixels, config.hidden, classes, &device)?;
    // Start each hidden neuron where a typical image (half its pixels on 1-weights) brings it
    // to the threshold, and each output at 100, room below 255 for its sum to tell classes apart.
    let mean_on = binarize(images).iter().sum::<f32>() / images.len() as f32;
    let start_hidden = (f32::from(THRESH_HIGH) + 1.0 - mean_on / 2.0).clamp(0.0, 255.0);
    let start_output = 100.0;
    net.u1 = Param::from_tensor(Tensor::full([config.hidden], start_hidden, &device));
    net.u2 = Param::from_tensor(Tensor::full([classes], start_output, &device));
    let mut optim = crate::train::optimizer::OptimizerKind::Adam.init(None);
    let mut order: Vec<usize> = (0..images.len()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let batches = images.len().div_ceil(config.batch_size);
    for epoch in 0..config.epochs {
        order.shuffle(&mut rng);
        for (b, idx) in order.chunks(config.batch_size).enumerate() {
            let batch: Vec<&[u8]> = idx.iter().map(|&i| images[i]).collect();
            let x = Tensor::<2>::from_data(
                TensorData::new(binarize(&batch), [idx.len(), pixels]),
                &device,
            );
            let y: Vec<i64> = idx.iter().map(|&i| i64::from(labels[i])).collect();
            let y = Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len()]), &device);
            let logits = net.forward(x) / config.temperature;
            let loss = -log_softmax(logits, 1).gather(1, y.unsqueeze_dim(1)).mean();
            let value = loss.clone().into_scalar::<f64>();
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    value,
                    epoch: epoch + 1,
                    step: b + 1,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(config.lr, net, grads);
            progress(epoch + 1, b + 1, batches, value);
        }
    }
    Ok(net.valid())
}

/// The float model's (`ChipNet::forward`) class for each image.
pub fn predictions(net: &ChipNet, images: &[&[u8]]) -> Vec<usize> {
    let device = net.w1.val().device();
    let pixels = images.first().map_or(0, |im| im.len());
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(512) {
        let data = TensorData::new(binarize(chunk), [chunk.len(), pixels]);
        let v: Vec<f32> = net
            .forward(Tensor::<2>::from_data(data, &device))
            .into_data()
            .iter::<f32>()
            .collect();
        let outputs = v.len() / chunk.len();
        for row in v.chunks(outputs) {
            let p: Vec<u8> = row.iter().map(|&x| x as u8).collect();
            out.push(predict(&p));
        }
    }
    out
}

/// Accuracy of the float model on `images`.
pub fn accuracy(net: &ChipNet, images: &[&[u8]], labels: &[u8]) -> f64 {
    let hits = predictions(net, images)
        .iter()
        .zip(labels)
        .filter(|(p, &y)| **p == usize::from(y))
        .count();
    hits as f64 / images.len().max(1) as f64
}
