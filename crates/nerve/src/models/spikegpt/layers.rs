//! The building blocks with PyTorch's parameter names and layouts: a bias-free linear layer
//! storing `weight[out, in]`, a LayerNorm with `weight`/`bias`, and orthogonal initialisation.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};

/// A linear layer without bias (RWKV-4's linears have none), `weight[out, in]` as in PyTorch.
#[derive(Module, Debug)]
pub struct LinearNoBias {
    /// `[out, in]`.
    pub weight: Param<Tensor<2>>,
}

impl LinearNoBias {
    /// A layer with all-zero weights.
    pub fn zeros(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([d_out, d_in], device)),
        }
    }

    /// A layer with PyTorch's `orthogonal_(gain)` initialisation.
    pub fn orthogonal(d_in: usize, d_out: usize, gain: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(orthogonal([d_out, d_in], gain, device)),
        }
    }

    /// `x[B, T, in] → [B, T, out]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d_in] = x.dims();
        let d_out = self.weight.dims()[0];
        x.reshape([b * t, d_in])
            .matmul(self.weight.val().transpose())
            .reshape([b, t, d_out])
    }
}

/// LayerNorm over the last axis with PyTorch's names (`weight`, `bias`).
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Scale, `[d]`.
    pub weight: Param<Tensor<1>>,
    /// Shift, `[d]`.
    pub bias: Param<Tensor<1>>,
    /// Added to the variance.
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm {
    /// Scale 1, shift 0 (PyTorch's initialisation).
    pub fn new(d: usize, eps: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([d], device)),
            bias: Param::from_tensor(Tensor::zeros([d], device)),
            eps,
        }
    }

    /// Normalises `x[..., d]` over its last axis (biased variance, as PyTorch).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (var, mean) = x.clone().var_mean_bias(D - 1);
        let xn = (x - mean) / (var + self.eps).sqrt();
        xn * self.weight.val().unsqueeze::<D>() + self.bias.val().unsqueeze::<D>()
    }
}

/// A `[rows, cols]` matrix as PyTorch's `nn.init.orthogonal_(gain)` draws it: orthonormal rows
/// (or columns, whichever are fewer), times `gain`; the Gaussian draw uses the device's seed.
pub fn orthogonal(shape: [usize; 2], gain: f64, device: &Device) -> Tensor<2> {
    let [rows, cols] = shape;
    let (long, short) = (rows.max(cols), rows.min(cols));
    let draw: Vec<f64> = Tensor::<2>::random([short, long], Distribution::Normal(0.0, 1.0), device)
        .into_data()
        .iter::<f32>()
        .map(f64::from)
        .collect();
    // Modified Gram-Schmidt on the `short` vectors of length `long` (the rows of `draw`): the
    // same Q as a QR decomposition whose R has a positive diagonal, which is what PyTorch's
    // sign fix produces.
    let mut q = draw;
    for i in 0..short {
        for j in 0..i {
            let (done, rest) = q.split_at_mut(i * long);
            let qj = &done[j * long..(j + 1) * long];
            let qi = &mut rest[..long];
            let dot: f64 = qi.iter().zip(qj).map(|(a, b)| a * b).sum();
            qi.iter_mut().zip(qj).for_each(|(a, b)| *a -= dot * b);
        }
        let qi = &mut q[i * long..(i + 1) * long];
        let norm = qi
            .iter()
            .map(|a| a * a)
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE);
        qi.iter_mut().for_each(|a| *a /= norm);
    }
    // `q` holds orthonormal vectors as rows of [short, long]; a tall matrix wants them as columns.
    let mut out = vec![0f32; rows * cols];
    for s in 0..short {
        for l in 0..long {
            let x = (q[s * long + l] * gain) as f32;
            if rows <= cols {
                out[s * cols + l] = x;
            } else {
                out[l * cols + s] = x;
            }
        }
    }
    Tensor::from_data(TensorData::new(out, [rows, cols]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `W Wᵀ` (wide) or `Wᵀ W` (tall) is `gain² I`.
    fn check_orthogonal(rows: usize, cols: usize, gain: f64) {
        let device = Device::flex();
        device.seed(4);
        let w: Vec<f32> = orthogonal([rows, cols], gain, &device)
            .into_data()
            .iter::<f32>()
            .collect();
        let short = rows.min(cols);
        let vector = |i: usize, l: usize| {
            if rows <= cols {
                w[i * cols + l] as f64
            } else {
                w[l * cols + i] as f64
            }
        };
        for i in 0..short {
            for j in 0..short {
                let dot: f64 = (0..rows.max(cols))
                    .map(|l| vector(i, l) * vector(j, l))
                    .sum();
                let want = if i == j { gain * gain } else { 0.0 };
                assert!(
                    (dot - want).abs() < 1e-5 * gain * gain,
                    "{rows}x{cols} ({i},{j}): {dot}"
                );
            }
        }
    }

    #[test]
    fn orthogonal_init_has_orthonormal_rows_or_columns() {
        check_orthogonal(5, 12, 1.0);
        check_orthogonal(12, 5, 2.0);
        check_orthogonal(7, 7, 0.5);
    }

    #[test]
    fn layer_norm_matches_the_formula() {
        let device = Device::flex();
        let mut ln = LayerNorm::new(4, 1e-5, &device);
        ln.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, 2.0, 0.5, -1.0], [4]),
            &device,
        ));
        ln.bias = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.0f32, 0.1, 0.2, 0.3], [4]),
            &device,
        ));
        let x = [1.0f32, 2.0, 4.0, 9.0];
        let y: Vec<f32> = ln
            .forward(Tensor::<2>::from_data(
                TensorData::new(x.to_vec(), [1, 4]),
                &device,
            ))
            .into_data()
            .iter::<f32>()
            .collect();
        let mean = 4.0f64;
        let var = (9.0 + 4.0 + 0.0 + 25.0) / 4.0;
        let (w, b) = ([1.0, 2.0, 0.5, -1.0], [0.0, 0.1, 0.2, 0.3]);
        for i in 0..4 {
            let want = (x[i] as f64 - mean) / (var + 1e-5f64).sqrt() * w[i] + b[i];
            assert!((y[i] as f64 - want).abs() < 1e-5, "{i}: {} vs {want}", y[i]);
        }
    }
}
