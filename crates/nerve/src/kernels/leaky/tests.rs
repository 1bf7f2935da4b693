//! The fused Leaky kernel against a one-neuron-at-a-time scalar twin.

use super::slices::{backward_band_width, CHUNK};
use super::*;

/// The forward one neuron and one step at a time, every membrane kept, and the reverse pass
/// over them: what the banded, recomputing kernel must reproduce.
fn scalar_reference(
    x: &[f32],
    mem0: &[f32],
    steps: usize,
    p: &LeakyParams,
    g_spk: &[f32],
    g_mem: &[f32],
    g_last: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = mem0.len();
    let (mut spk, mut mem) = (vec![0f32; steps * n], vec![0f32; steps * n]);
    let (mut gx, mut gm0) = (vec![0f32; steps * n], vec![0f32; n]);
    let h = |v: f32| f32::from(u8::from(v > 0.0));
    for i in 0..n {
        let mut m = mem0[i];
        for t in 0..steps {
            let r = h(m - p.threshold);
            m = match p.reset {
                Reset::Subtract => p.beta * m + x[t * n + i] - r * p.threshold,
                Reset::Zero => p.beta * (1.0 - r) * m + x[t * n + i],
                Reset::None => p.beta * m + x[t * n + i],
            };
            if let Some(levels) = &p.levels {
                m = crate::kernels::levels::nearest_level(levels, m);
            }
            mem[t * n + i] = m;
            spk[t * n + i] = h(m - p.threshold) * p.graded;
        }
        let mut carry = g_last[i];
        for t in (0..steps).rev() {
            let at = t * n + i;
            let g =
                g_mem[at] + carry + g_spk[at] * p.graded * p.surrogate.at(mem[at] - p.threshold);
            gx[at] = g;
            let prev = if t == 0 { mem0[i] } else { mem[at - n] };
            carry = match p.reset {
                Reset::Zero => g * p.beta * (1.0 - h(prev - p.threshold)),
                _ => g * p.beta,
            };
        }
        gm0[i] = carry;
    }
    (spk, mem, gx, gm0)
}

/// Deterministic values spread over about [lo, lo + 2].
fn values(len: usize, seed: u32, lo: f32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| {
            let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(13);
            lo + (h % 2000) as f32 / 1000.0
        })
        .collect()
}

#[test]
fn backward_band_width_keeps_whole_vectors_within_the_scratch() {
    assert_eq!(backward_band_width(500), 256);
    assert_eq!(backward_band_width(1), CHUNK);
    assert_eq!(backward_band_width(0), CHUNK);
    assert_eq!(backward_band_width(1_000_000), 16);
}

#[test]
fn slices_match_a_scalar_reference_with_partial_bands() {
    // 5000 steps make the backward bands 16 neurons wide, so 37 neurons end in a partial
    // band; 3 steps make them one partial band.
    // A coarse level table (state quantization) must round every membrane the same way too.
    let levels: std::sync::Arc<[f32]> = [-1.0f32, -0.3, 0.0, 0.45, 0.7, 0.85, 1.2].into();
    let cases = [(5000, 37), (3, 37), (64, 1)]
        .into_iter()
        .flat_map(|size| [(size, None), (size, Some(levels.clone()))]);
    for ((steps, n), levels) in cases {
        for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
            let p = LeakyParams {
                beta: 0.9,
                threshold: 0.8,
                graded: 0.7,
                reset,
                surrogate: SurrogateGrad::ATan(2.0),
                membranes: true,
                levels: levels.clone(),
            };
            let x = values(steps * n, 1, -0.7);
            let mem0 = values(n, 2, -0.5);
            let (g_spk, g_mem, g_last) = (
                values(steps * n, 3, -1.0),
                values(steps * n, 4, -1.0),
                values(n, 5, -1.0),
            );
            let (spk, mem, gx, gm0) =
                scalar_reference(&x, &mem0, steps, &p, &g_spk, &g_mem, &g_last);
            assert!(spk.iter().any(|&s| s > 0.0) && spk.contains(&0.0));
            let out = forward_slices(&x, &mem0, steps, &p);
            assert_eq!(out.spk, spk, "{reset:?}: spikes");
            assert_eq!(out.mem.as_deref(), Some(&mem[..]), "{reset:?}: membranes");
            assert_eq!(
                out.last,
                mem[(steps - 1) * n..],
                "{reset:?}: final membrane"
            );
            // The three reverse passes add up to the reference's single one.
            let mut fx = vec![0f32; steps * n];
            let mut fm0 = vec![0f32; n];
            for (seed, g) in [
                (Seed::Spikes, &g_spk[..]),
                (Seed::Membranes, &g_mem[..]),
                (Seed::Last, &g_last[..]),
            ] {
                let (a, b) = backward_slices(&x, &mem0, steps, &p, seed, g);
                fx.iter_mut().zip(a).for_each(|(s, v)| *s += v);
                fm0.iter_mut().zip(b).for_each(|(s, v)| *s += v);
            }
            let close = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0))
            };
            assert!(close(&fx, &gx), "{reset:?} {steps}x{n}: input gradients");
            assert!(close(&fm0, &gm0), "{reset:?} {steps}x{n}: mem0 gradients");
        }
    }
}
