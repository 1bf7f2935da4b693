//! Choosing the next token from logits: greedy, or random with temperature, top-k and top-p
//! (nucleus) truncation, reproducible from a seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

/// How to pick tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Divides the logits; 0 means greedy (always the most likely token).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (1 = all).
    pub top_p: f64,
    /// Seed of the random draws.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

impl SamplerConfig {
    /// Refuses values that have no meaning, naming the option.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::invalid(
                "temperature",
                format!("{} (must be a finite number >= 0)", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::invalid(
                "top-p",
                format!("{} (must be in (0, 1])", self.top_p),
            ));
        }
        Ok(())
    }
}

/// Draws tokens from logits according to a [`SamplerConfig`].
pub struct Sampler {
    config: SamplerConfig,
    rng: StdRng,
    order: Vec<usize>,
    probs: Vec<f64>,
}

impl Sampler {
    /// A sampler; errors on invalid settings.
    pub fn new(config: SamplerConfig) -> Result<Self> {
        config.validate()?;
        let rng = StdRng::seed_from_u64(config.seed);
        Ok(Self {
            config,
            rng,
            order: Vec::new(),
            probs: Vec::new(),
        })
    }

    /// The next token id given the logits over the vocabulary; errors if they are not finite.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        if logits.is_empty() {
            return Err(Error::invalid("logits", "empty"));
        }
        if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "logits",
                format!("value {} at token {i} is not finite", logits[i]),
            ));
        }
        let argmax = logits
            .iter()
            .enumerate()
            .fold(0, |best, (i, &v)| if v > logits[best] { i } else { best });
        if self.config.temperature == 0.0 {
            return Ok(argmax as u32);
        }
        let t = self.config.temperature;
        let max = logits[argmax] as f64;
        let k = match self.config.top_k {
            0 => logits.len(),
            k => k.min(logits.len()),
        };
        self.order.clear();
        self.order.extend(0..logits.len());
        if k < logits.len() || self.config.top_p < 1.0 {
            // Most likely first; ties by id so the order (and the draw) is deterministic. Only
            // the k best are sorted: a full sort of a 32,000-token vocabulary per token would
            // cost more than a batched decoding step.
            let best_first =
                |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
            if k < logits.len() {
                self.order.select_nth_unstable_by(k - 1, best_first);
                self.order.truncate(k);
            }
            self.order.sort_unstable_by(best_first);
        }
        // Without truncation every token is a candidate and ids are drawn in their own order.
        self.probs.clear();
        let mut total = 0.0;
        for &i in &self.order[..k] {
            let p = ((logits[i] as f64 - max) / t).exp();
            self.probs.push(p);
            total += p;
        }
        // Nucleus: the shortest prefix whose mass reaches top_p of the (top-k) distribution.
        let mut keep = self.probs.len();
        if self.config.top_p < 1.0 {
            let mut acc = 0.0;
            for (n, p) in self.probs.iter().enumerate() {
                acc += p / total;
                if acc >= self.config.top_p {
                    keep = n + 1;
                    break;
                }
            }
        }
        let mass: f64 = self.probs[..keep].iter().sum();
        let mut u = self.rng.random::<f64>() * mass;
        for n in 0..keep {
            u -= self.probs[n];
            if u <= 0.0 {
                return Ok(self.order[n] as u32);
            }
        }
        Ok(self.order[keep - 1] as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(temperature: f64, top_k: usize, top_p: f64, seed: u64) -> Sampler {
        Sampler::new(SamplerConfig {
            temperature,
            top_k,
            top_p,
            seed,
        })
        .unwrap()
    }

    #[test]
    fn greedy_takes_the_argmax() {
        assert_eq!(sampler(0.0, 0, 1.0, 1).sample(&[0.1, 3.0, 2.9]).unwrap(), 1);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_candidates() {
        let logits = [2.0f32, 1.9, 1.8, -5.0, 0.0];
        let mut s = sampler(1.0, 2, 1.0, 7);
        for _ in 0..200 {
            assert!(s.sample(&logits).unwrap() < 2);
        }
        // p(0) ~ 0.36: top_p 0.3 keeps only token 0.
        let mut s = sampler(1.0, 0, 0.3, 7);
        for _ in 0..50 {
            assert_eq!(s.sample(&logits).unwrap(), 0);
        }
    }

    #[test]
    fn draws_follow_the_softmax_and_repeat_with_the_seed() {
        let logits = [0.0f32, (3.0f32).ln()];
        let mut s = sampler(1.0, 0, 1.0, 3);
        let draws: Vec<u32> = (0..4000).map(|_| s.sample(&logits).unwrap()).collect();
        let ones = draws.iter().filter(|&&d| d == 1).count() as f64 / 4000.0;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
        let mut again = sampler(1.0, 0, 1.0, 3);
        let repeat: Vec<u32> = (0..4000).map(|_| again.sample(&logits).unwrap()).collect();
        assert_eq!(draws, repeat);
    }

    #[test]
    fn bad_settings_and_logits_are_refused() {
        for (t, p) in [(-1.0, 1.0), (f64::NAN, 1.0), (1.0, 0.0), (1.0, 1.5)] {
            assert!(Sampler::new(SamplerConfig {
                temperature: t,
                top_k: 0,
                top_p: p,
                seed: 0
            })
            .is_err());
        }
        assert!(sampler(1.0, 0, 1.0, 0).sample(&[0.0, f32::NAN]).is_err());
    }
}
