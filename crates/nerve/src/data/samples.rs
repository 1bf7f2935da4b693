//! Labelled samples as network input: the batches a trainer draws from images (encoded over
//! time) or event frames (already one frame per time step).

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::events::dataset::EventFrameDataset;
use crate::data::mnist::ImageDataset;
use crate::encode::RateConfig;
use crate::error::{Error, Result};

/// How an image becomes input current over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Encoding {
    /// The pixel intensities are the input current at every step (snnTorch's conv tutorial).
    Direct,
    /// Bernoulli rate coding: a pixel of intensity p spikes with probability `gain·p` per step.
    Rate {
        /// Probability scale.
        gain: f64,
    },
}

/// A labelled data set the trainer draws batches from: images (encoded over time) or event
/// frames (already one frame per time step).
pub trait Samples: Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// True when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of classes; every label is below it.
    fn num_classes(&self) -> usize;
    /// One sample's shape, `[channels, height, width]`.
    fn input_shape(&self) -> [usize; 3];
    /// Class names in label order.
    fn class_names(&self) -> Vec<String> {
        (0..self.num_classes()).map(|c| c.to_string()).collect()
    }
    /// Network input `[1 or T, B, C, H, W]` and labels of the samples at `indices`.
    fn batch(
        &self,
        indices: &[usize],
        steps: usize,
        encoding: Encoding,
        rng: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> Result<(Tensor<5>, Tensor<1, Int>)>;
}

impl Samples for ImageDataset {
    fn len(&self) -> usize {
        ImageDataset::len(self)
    }
    fn num_classes(&self) -> usize {
        self.num_classes
    }
    fn input_shape(&self) -> [usize; 3] {
        [1, self.rows, self.cols]
    }
    fn batch(
        &self,
        indices: &[usize],
        steps: usize,
        encoding: Encoding,
        rng: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> Result<(Tensor<5>, Tensor<1, Int>)> {
        make_batch(self, indices, steps, encoding, rng, device)
    }
}

impl Samples for EventFrameDataset {
    fn len(&self) -> usize {
        EventFrameDataset::len(self)
    }
    fn num_classes(&self) -> usize {
        EventFrameDataset::num_classes(self)
    }
    fn input_shape(&self) -> [usize; 3] {
        [2, self.height, self.width]
    }
    fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }
    /// Event counts per bin are the input current at each step; `encoding` does not apply.
    fn batch(
        &self,
        indices: &[usize],
        steps: usize,
        _encoding: Encoding,
        _rng: &mut rand::rngs::StdRng,
        device: &Device,
    ) -> Result<(Tensor<5>, Tensor<1, Int>)> {
        if steps != self.bins {
            return Err(Error::invalid(
                "steps",
                format!(
                    "the event frames have {} time bins but the network runs {steps} steps",
                    self.bins
                ),
            ));
        }
        let b = indices.len();
        let frame = 2 * self.height * self.width;
        // Samples are stored [bins, …] each; the network wants time first: [T, B, …].
        let mut values = vec![0f32; steps * b * frame];
        for (j, &i) in indices.iter().enumerate() {
            let sample = self.sample(i);
            for t in 0..steps {
                let dst = &mut values[(t * b + j) * frame..][..frame];
                for (d, &s) in dst.iter_mut().zip(&sample[t * frame..(t + 1) * frame]) {
                    *d = f32::from(s);
                }
            }
        }
        let labels: Vec<i64> = indices.iter().map(|&i| i64::from(self.labels[i])).collect();
        let x = Tensor::<5>::from_data(
            TensorData::new(values, [steps, b, 2, self.height, self.width]),
            device,
        );
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), device);
        Ok((x, y))
    }
}

/// A batch as network input `[1 or T, B, C, H, W]` and labels.
pub fn make_batch(
    data: &ImageDataset,
    indices: &[usize],
    steps: usize,
    encoding: Encoding,
    rng: &mut rand::rngs::StdRng,
    device: &Device,
) -> Result<(Tensor<5>, Tensor<1, Int>)> {
    let (rows, cols) = (data.rows, data.cols);
    let mut values = Vec::with_capacity(indices.len() * rows * cols);
    for &i in indices {
        values.extend(data.image(i).iter().map(|&p| f32::from(p) / 255.0));
    }
    let labels: Vec<i64> = indices.iter().map(|&i| i64::from(data.labels[i])).collect();
    let b = indices.len();
    let pixels = Tensor::<4>::from_data(TensorData::new(values, [b, 1, rows, cols]), device);
    let x = match encoding {
        Encoding::Direct => pixels.unsqueeze_dim::<5>(0),
        Encoding::Rate { gain } => {
            let config = RateConfig {
                gain,
                ..RateConfig::new(steps)
            };
            crate::encode::rate_with_rng::<4, 5, _>(pixels, &config, rng)?
        }
    };
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), device);
    Ok((x, y))
}
