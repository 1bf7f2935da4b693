//! Learning-rate schedules as plain values, so a run's schedule can be parsed from the command
//! line, stored in a checkpoint's config and recomputed exactly on resume.
//!
//! All periods are counted in **optimizer steps** (not epochs): `lr(base, step)` is evaluated
//! before optimizer step `step` (0-based). On the command line a period may be written with an
//! `e` suffix (`10e`) to mean that many epochs; [`Schedule::parse`] converts it to steps.

use std::f64::consts::PI;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A learning-rate schedule; periods are in optimizer steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    /// The base learning rate throughout.
    Constant,
    /// Cosine annealing from the base rate to `eta_min` over `t_max` steps, then held at `eta_min`.
    Cosine {
        /// Steps to reach `eta_min`.
        t_max: usize,
        /// Final learning rate.
        eta_min: f64,
    },
    /// SGDR: cosine annealing restarted after `t_0`, then `t_0*t_mult`, ... steps
    /// (as `torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`).
    CosineWarmRestarts {
        /// Length of the first period in steps.
        t_0: usize,
        /// Factor by which each period is longer than the previous one (>= 1).
        t_mult: usize,
        /// Learning rate at the end of each period.
        eta_min: f64,
    },
    /// Multiplies the rate by `gamma` every `step_size` steps (as `torch`'s `StepLR`).
    StepDecay {
        /// Steps between decays.
        step_size: usize,
        /// Multiplicative factor per decay.
        gamma: f64,
    },
    /// Cosine annealing that keeps stepping past its period, as torch's `CosineAnnealingLR` does
    /// when stepped on: down to `eta_min` at `t_max`, back up to the base rate at `2·t_max`, and
    /// so on. The QSNN paper (Eshraghian et al., AICAS 2022) trains quantized SNNs with it:
    /// each rise is a "periodic boost" that can carry the weights out of a local minimum.
    PeriodicCosine {
        /// Steps from the base rate down to `eta_min` (half the period).
        t_max: usize,
        /// Lowest learning rate.
        eta_min: f64,
    },
    /// Another schedule, halved for good after every epoch whose mean training loss is higher
    /// than the lowest seen so far: the loss-dependent rule of the QSNN code (`evaluate.py`).
    LossDependent {
        /// The schedule being scaled.
        inner: Box<Schedule>,
    },
}

/// The accepted forms, quoted in every parse error so the user can fix the flag at once.
const FORMS: &str = "constant | cosine[:T_MAX[:ETA_MIN]] | cosine-restarts:T0[:MULT[:ETA_MIN]] \
                     | step:SIZE:GAMMA | periodic-cosine:T_MAX[:ETA_MIN] | loss-dependent[:SCHEDULE] \
                     (periods in steps, or epochs with an 'e' suffix, e.g. 10e)";

impl Schedule {
    /// The learning rate to use for optimizer step `step` (0-based) given the base rate.
    pub fn lr(&self, base_lr: f64, step: usize) -> f64 {
        match *self {
            Schedule::Constant => base_lr,
            Schedule::Cosine { t_max, eta_min } => {
                // Clamp rather than let the cosine climb back up as torch's closed form would:
                // a run that outlives its t_max should keep the small final rate.
                let t_max = t_max.max(1);
                cosine(base_lr, eta_min, step.min(t_max), t_max)
            }
            Schedule::CosineWarmRestarts {
                t_0,
                t_mult,
                eta_min,
            } => {
                let (t_cur, t_i) = sgdr_position(step, t_0.max(1), t_mult.max(1));
                cosine(base_lr, eta_min, t_cur, t_i)
            }
            Schedule::StepDecay { step_size, gamma } => {
                let decays = step / step_size.max(1);
                base_lr * gamma.powi(decays.min(i32::MAX as usize) as i32)
            }
            Schedule::PeriodicCosine { t_max, eta_min } => {
                // The closed form is periodic in 2·t_max; reducing first keeps the angle exact.
                let t_max = t_max.max(1);
                cosine(base_lr, eta_min, step % (2 * t_max), t_max)
            }
            Schedule::LossDependent { ref inner } => inner.lr(base_lr, step),
        }
    }

    /// The learning rate for optimizer step `step` after epochs whose mean training losses were
    /// `epoch_losses` (oldest first): [`Schedule::lr`], scaled by the loss-dependent halvings.
    pub fn lr_after(&self, base_lr: f64, step: usize, epoch_losses: &[f64]) -> f64 {
        self.lr(base_lr, step) * self.loss_factor(epoch_losses)
    }

    /// The factor a loss-dependent schedule has reached after `epoch_losses`: halved once for
    /// every epoch whose loss rose above the lowest before it (1 for other schedules). It is
    /// recomputed from the run's history, so a resumed run continues with the same factor.
    pub fn loss_factor(&self, epoch_losses: &[f64]) -> f64 {
        if !matches!(self, Schedule::LossDependent { .. }) {
            return 1.0;
        }
        let mut best = f64::INFINITY;
        let mut factor = 1.0;
        for &loss in epoch_losses {
            if loss > best {
                factor *= 0.5;
            } else {
                best = loss;
            }
        }
        factor
    }

    /// Parses a CLI spec; `e`-suffixed periods are multiplied by `steps_per_epoch`, and a bare
    /// `cosine` anneals over `total_steps`.
    pub fn parse(spec: &str, steps_per_epoch: usize, total_steps: usize) -> Result<Schedule> {
        let bad =
            |msg: String| Error::invalid("learning-rate schedule", format!("'{spec}': {msg}"));
        let parts: Vec<&str> = spec.trim().split(':').map(str::trim).collect();
        let (name, args) = (parts[0].to_ascii_lowercase(), &parts[1..]);
        let arity = |min: usize, max: usize| {
            if args.len() < min || args.len() > max {
                Err(bad(format!(
                    "'{name}' takes {} argument(s), got {}; expected {FORMS}",
                    if min == max {
                        min.to_string()
                    } else {
                        format!("{min} to {max}")
                    },
                    args.len()
                )))
            } else {
                Ok(())
            }
        };
        let period = |what: &str, s: &str| -> Result<usize> {
            let (digits, epochs) = match s.strip_suffix(['e', 'E']) {
                Some(d) => (d, true),
                None => (s, false),
            };
            let n: usize = digits.parse().map_err(|_| {
                bad(format!(
                    "{what} '{s}' is not a whole number of steps (or epochs with 'e')"
                ))
            })?;
            let n = if epochs {
                n.checked_mul(steps_per_epoch)
                    .ok_or_else(|| bad(format!("{what} '{s}' overflows")))?
            } else {
                n
            };
            if n == 0 {
                return Err(bad(format!("{what} must be at least 1 step, got '{s}'")));
            }
            Ok(n)
        };
        let real = |what: &str, s: &str, positive: bool| -> Result<f64> {
            let x: f64 = s
                .parse()
                .map_err(|_| bad(format!("{what} '{s}' is not a number")))?;
            if !x.is_finite() || x < 0.0 || (positive && x == 0.0) {
                let need = if positive { "> 0" } else { ">= 0" };
                return Err(bad(format!("{what} must be finite and {need}, got '{s}'")));
            }
            Ok(x)
        };
        match name.as_str() {
            "constant" | "const" => {
                arity(0, 0)?;
                Ok(Schedule::Constant)
            }
            "cosine" => {
                arity(0, 2)?;
                let t_max = match args.first() {
                    Some(s) => period("T_MAX", s)?,
                    None if total_steps > 0 => total_steps,
                    None => {
                        return Err(bad("T_MAX is needed when the run length is unknown".into()))
                    }
                };
                let eta_min = args.get(1).map_or(Ok(0.0), |s| real("ETA_MIN", s, false))?;
                Ok(Schedule::Cosine { t_max, eta_min })
            }
            "cosine-restarts" | "sgdr" => {
                arity(1, 3)?;
                let t_0 = period("T0", args[0])?;
                let t_mult = match args.get(1) {
                    Some(s) => s.parse::<usize>().ok().filter(|m| *m >= 1).ok_or_else(|| {
                        bad(format!("MULT must be a whole number >= 1, got '{s}'"))
                    })?,
                    None => 1,
                };
                let eta_min = args.get(2).map_or(Ok(0.0), |s| real("ETA_MIN", s, false))?;
                Ok(Schedule::CosineWarmRestarts {
                    t_0,
                    t_mult,
                    eta_min,
                })
            }
            "periodic-cosine" => {
                arity(1, 2)?;
                let t_max = period("T_MAX", args[0])?;
                let eta_min = args.get(1).map_or(Ok(0.0), |s| real("ETA_MIN", s, false))?;
                Ok(Schedule::PeriodicCosine { t_max, eta_min })
            }
            "loss-dependent" => {
                let inner = if args.is_empty() {
                    Schedule::Constant
                } else {
                    Schedule::parse(&args.join(":"), steps_per_epoch, total_steps)?
                };
                if matches!(inner, Schedule::LossDependent { .. }) {
                    return Err(bad("loss-dependent cannot wrap itself".into()));
                }
                Ok(Schedule::LossDependent {
                    inner: Box::new(inner),
                })
            }
            "step" => {
                arity(2, 2)?;
                let step_size = period("SIZE", args[0])?;
                let gamma = real("GAMMA", args[1], true)?;
                Ok(Schedule::StepDecay { step_size, gamma })
            }
            _ => Err(bad(format!("unknown schedule '{name}'; expected {FORMS}"))),
        }
    }
}

/// Prints the spec form (periods in steps), so `parse(&s.to_string(), ..)` gives `s` back.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Cosine { t_max, eta_min } => write!(f, "cosine:{t_max}:{eta_min}"),
            Schedule::CosineWarmRestarts {
                t_0,
                t_mult,
                eta_min,
            } => write!(f, "cosine-restarts:{t_0}:{t_mult}:{eta_min}"),
            Schedule::StepDecay { step_size, gamma } => write!(f, "step:{step_size}:{gamma}"),
            Schedule::PeriodicCosine { t_max, eta_min } => {
                write!(f, "periodic-cosine:{t_max}:{eta_min}")
            }
            Schedule::LossDependent { inner } => write!(f, "loss-dependent:{inner}"),
        }
    }
}

/// Half-cosine from `base` (at `t_cur = 0`) down to `eta_min` (at `t_cur = t_i`).
fn cosine(base: f64, eta_min: f64, t_cur: usize, t_i: usize) -> f64 {
    eta_min + (base - eta_min) * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0
}

/// Position `(t_cur, t_i)` of `step` inside its SGDR period; integer arithmetic avoids the
/// float `log` torch uses, which can land on the wrong side of a restart.
fn sgdr_position(step: usize, t_0: usize, t_mult: usize) -> (usize, usize) {
    if t_mult == 1 {
        return (step % t_0, t_0);
    }
    let (mut t_cur, mut t_i) = (step, t_0);
    while t_cur >= t_i {
        t_cur -= t_i;
        t_i = t_i.saturating_mul(t_mult);
    }
    (t_cur, t_i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn constant_is_constant() {
        assert_eq!(Schedule::Constant.lr(0.1, 0), 0.1);
        assert_eq!(Schedule::Constant.lr(0.1, 1_000_000), 0.1);
    }

    #[test]
    fn cosine_hand_values() {
        let s = Schedule::Cosine {
            t_max: 100,
            eta_min: 0.0,
        };
        assert!(close(s.lr(1.0, 0), 1.0));
        assert!(close(s.lr(1.0, 50), 0.5));
        // (1 + cos(pi/4)) / 2
        assert!(close(s.lr(1.0, 25), 0.853_553_390_593_273_7));
        assert!(close(s.lr(1.0, 100), 0.0));
        assert!(close(s.lr(1.0, 150), 0.0), "held at eta_min after t_max");
        let s = Schedule::Cosine {
            t_max: 10,
            eta_min: 0.1,
        };
        assert!(close(s.lr(1.0, 5), 0.55));
        assert!(close(s.lr(1.0, 10), 0.1));
    }

    #[test]
    fn sgdr_restarts_at_10_30_70() {
        let s = Schedule::CosineWarmRestarts {
            t_0: 10,
            t_mult: 2,
            eta_min: 0.0,
        };
        for restart in [0, 10, 30, 70, 150] {
            assert!(close(s.lr(1.0, restart), 1.0), "restart at {restart}");
        }
        assert!(
            close(s.lr(1.0, 5), 0.5),
            "middle of first period (length 10)"
        );
        assert!(
            close(s.lr(1.0, 20), 0.5),
            "middle of second period (10..30)"
        );
        assert!(close(s.lr(1.0, 50), 0.5), "middle of third period (30..70)");
        assert!(close(s.lr(1.0, 29), (1.0 + (PI * 19.0 / 20.0).cos()) / 2.0));
        assert!(s.lr(1.0, 69) < 0.01);
    }

    #[test]
    fn sgdr_mult_one_is_periodic() {
        let s = Schedule::CosineWarmRestarts {
            t_0: 4,
            t_mult: 1,
            eta_min: 0.2,
        };
        assert!(close(s.lr(1.0, 0), 1.0));
        assert!(close(s.lr(1.0, 2), 0.6));
        assert!(close(s.lr(1.0, 4), 1.0));
        assert!(close(s.lr(1.0, 6), 0.6));
    }

    #[test]
    fn step_decay_hand_values() {
        let s = Schedule::StepDecay {
            step_size: 3,
            gamma: 0.5,
        };
        assert!(close(s.lr(0.8, 0), 0.8));
        assert!(close(s.lr(0.8, 2), 0.8));
        assert!(close(s.lr(0.8, 3), 0.4));
        assert!(close(s.lr(0.8, 7), 0.2));
    }

    #[test]
    fn parse_forms() {
        assert_eq!(
            Schedule::parse("constant", 10, 100).unwrap(),
            Schedule::Constant
        );
        assert_eq!(
            Schedule::parse("cosine", 10, 100).unwrap(),
            Schedule::Cosine {
                t_max: 100,
                eta_min: 0.0
            }
        );
        assert_eq!(
            Schedule::parse("cosine:5e:1e-4", 10, 100).unwrap(),
            Schedule::Cosine {
                t_max: 50,
                eta_min: 1e-4
            }
        );
        assert_eq!(
            Schedule::parse("cosine-restarts:10:2", 7, 0).unwrap(),
            Schedule::CosineWarmRestarts {
                t_0: 10,
                t_mult: 2,
                eta_min: 0.0
            }
        );
        assert_eq!(
            Schedule::parse("cosine-restarts:2e", 7, 0).unwrap(),
            Schedule::CosineWarmRestarts {
                t_0: 14,
                t_mult: 1,
                eta_min: 0.0
            }
        );
        assert_eq!(
            Schedule::parse("step:30:0.1", 7, 0).unwrap(),
            Schedule::StepDecay {
                step_size: 30,
                gamma: 0.1
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "constant",
            "cosine:100:0.001",
            "cosine-restarts:10:2:0",
            "step:30:0.1",
            "periodic-cosine:4690:0",
            "loss-dependent:constant",
            "loss-dependent:periodic-cosine:20:0.0001",
        ] {
            let s = Schedule::parse(spec, 1, 0).unwrap();
            assert_eq!(Schedule::parse(&s.to_string(), 1, 0).unwrap(), s);
        }
    }

    #[test]
    fn parse_errors_are_clear() {
        let cases = [
            ("linear", "unknown schedule 'linear'"),
            ("step:10", "'step' takes 2 argument(s), got 1"),
            ("step:ten:0.1", "SIZE 'ten' is not a whole number"),
            ("step:0:0.1", "SIZE must be at least 1 step"),
            ("step:10:-1", "GAMMA must be finite and > 0"),
            ("cosine-restarts:10:0", "MULT must be a whole number >= 1"),
            ("cosine", "T_MAX is needed"),
            ("constant:3", "'constant' takes 0 argument(s), got 1"),
            (
                "periodic-cosine",
                "'periodic-cosine' takes 1 to 2 argument(s), got 0",
            ),
            ("loss-dependent:loss-dependent", "cannot wrap itself"),
            ("loss-dependent:step:0:1", "SIZE must be at least 1 step"),
        ];
        for (spec, want) in cases {
            let msg = Schedule::parse(spec, 10, 0).unwrap_err().to_string();
            assert!(msg.contains(want), "{spec}: {msg}");
            assert!(msg.contains("learning-rate schedule"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn periodic_cosine_boosts_back_to_the_base_rate() {
        let s = Schedule::parse("periodic-cosine:2e", 50, 0).unwrap();
        assert_eq!(
            s,
            Schedule::PeriodicCosine {
                t_max: 100,
                eta_min: 0.0
            }
        );
        assert_eq!(s.lr(1.0, 0), 1.0);
        assert!((s.lr(1.0, 50) - 0.5).abs() < 1e-12);
        assert!(s.lr(1.0, 100).abs() < 1e-12);
        // Past its period it climbs back, where plain cosine stays at the bottom.
        assert!((s.lr(1.0, 150) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(1.0, 200), 1.0);
        assert_eq!(s.lr(1.0, 1234), s.lr(1.0, 1234 - 600));
        let plain = Schedule::Cosine {
            t_max: 100,
            eta_min: 0.0,
        };
        assert_eq!(plain.lr(1.0, 150), plain.lr(1.0, 100));
    }

    #[test]
    fn loss_dependent_halves_after_each_epoch_whose_loss_rose() {
        let s = Schedule::parse("loss-dependent:periodic-cosine:10", 5, 0).unwrap();
        assert_eq!(s.loss_factor(&[]), 1.0);
        // 1.0 is the lowest; 1.2 rises (halve); 0.9 is a new lowest; 0.95 and 1.1 rise.
        assert_eq!(s.loss_factor(&[1.0, 1.2, 0.9, 0.95, 1.1]), 0.125);
        assert_eq!(s.lr_after(2.0, 0, &[1.0, 1.2]), 1.0);
        assert_eq!(
            s.lr(2.0, 10),
            Schedule::PeriodicCosine {
                t_max: 10,
                eta_min: 0.0
            }
            .lr(2.0, 10)
        );
        // Other schedules ignore the losses.
        let constant = Schedule::Constant;
        assert_eq!(constant.lr_after(2.0, 3, &[1.0, 5.0, 9.0]), 2.0);
    }
}
