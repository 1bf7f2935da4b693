//! Encoders, losses and metrics: hand-checked examples, gradients, shape errors, and the
//! snnTorch reference cases of those kinds.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use nerve::encode::{
    delta, latency, latency_times, rate, rate_conv, targets_rate, to_one_hot, DeltaConfig,
    FiringPattern, LatencyConfig, RateConfig, TargetsRateConfig,
};
use nerve::loss::{
    population_sum, spike_times, CeCountLoss, CeMaxMembraneLoss, CeRateLoss, CeTemporalLoss,
    L1RateSparsity, MseCountLoss, MseMembraneLoss, MseTemporalLoss, TemporalInverse,
};
use nerve::metrics::{accuracy_rate, accuracy_temporal, firing_rate, spike_counts, total_spikes};
use nerve::snntorch_check::check_file;
use nerve::Error;

fn cpu() -> Device {
    Device::flex()
}

fn grad_device() -> Device {
    Device::flex().autodiff()
}

fn tensor<const D: usize>(values: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

fn classes(c: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(c.to_vec(), [c.len()]), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn scalar(t: Tensor<1>) -> f64 {
    values(t)[0]
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// A deterministic pseudo-random 0/1 recording for gradient and equivalence checks.
fn pattern(shape: [usize; 3], device: &Device) -> Tensor<3> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7 + i / 3) % 5 < 2) as u8 as f32)
        .collect();
    tensor(&v, shape, device)
}

// ---------------------------------------------------------------- reference cases

#[test]
fn snntorch_encoder_loss_and_accuracy_cases_match() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let reports = check_file(&shared.join("reference/snntorch-reference.json"))
        .expect("reference file loads");
    let mine: Vec<_> = reports
        .iter()
        .filter(|r| {
            [" encoder ", " loss ", " accuracy "]
                .iter()
                .any(|k| r.label.contains(k))
        })
        .collect();
    assert_eq!(
        mine.len(),
        15,
        "the shared file holds 15 encoder/loss/accuracy cases"
    );
    for r in &mine {
        println!(
            "{}: fwd {:.2e} ({}), grad {:.2e} ({}), flips {} {}",
            r.label,
            r.forward.0,
            r.forward.1,
            r.grad.0,
            r.grad.1,
            r.spike_flips,
            r.error.as_deref().unwrap_or("")
        );
    }
    let failed: Vec<&str> = mine
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.label.as_str())
        .collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
}

// ---------------------------------------------------------------- rate

#[test]
fn rate_with_gain_zero_never_fires_and_one_always_fires() {
    let data = tensor(&[0.2, 0.9, 1.0, 0.0], [2, 2], &cpu());
    let silent = RateConfig {
        gain: 0.0,
        ..RateConfig::new(50)
    };
    let spk: Tensor<3> = rate(data.clone(), &silent, 1).unwrap();
    assert_eq!(spk.dims(), [50, 2, 2]);
    assert_eq!(total_spikes(spk), 0.0);
    let saturated = RateConfig {
        offset: 1.0,
        ..RateConfig::new(50)
    };
    let spk: Tensor<3> = rate(data, &saturated, 1).unwrap();
    assert_eq!(total_spikes(spk), 200.0);
}

#[test]
fn rate_is_reproducible_per_seed_and_follows_the_probability() {
    let data = tensor(&[0.25, 0.75], [1, 2], &cpu());
    let cfg = RateConfig::new(4000);
    let a: Tensor<3> = rate(data.clone(), &cfg, 42).unwrap();
    let b: Tensor<3> = rate(data.clone(), &cfg, 42).unwrap();
    let c: Tensor<3> = rate(data, &cfg, 43).unwrap();
    assert_eq!(values(a.clone()), values(b));
    assert_ne!(values(a.clone()), values(c));
    let counts = values(spike_counts(a));
    assert!(close(counts[0] / 4000.0, 0.25, 0.03), "{counts:?}");
    assert!(close(counts[1] / 4000.0, 0.75, 0.03), "{counts:?}");
}

#[test]
fn rate_first_spike_time_silences_leading_steps() {
    let data = tensor(&[1.0, 1.0], [2], &cpu());
    let cfg = RateConfig {
        first_spike_time: 3,
        ..RateConfig::new(5)
    };
    let spk: Tensor<2> = rate(data, &cfg, 0).unwrap();
    assert_eq!(
        values(spk),
        vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    );
}

#[test]
fn rate_rejects_a_wrong_output_rank_and_bad_options() {
    let data = tensor(&[0.5], [1], &cpu());
    let wrong: Result<Tensor<3>, Error> = rate(data.clone(), &RateConfig::new(3), 0);
    assert!(matches!(wrong, Err(Error::Shape { .. })));
    let late = RateConfig {
        first_spike_time: 3,
        ..RateConfig::new(3)
    };
    assert!(rate::<1, 2>(data.clone(), &late, 0).is_err());
    assert!(rate::<1, 2>(data, &RateConfig::new(0), 0).is_err());
}

#[test]
fn rate_conv_keeps_the_shape_and_clamps() {
    let data = tensor(&[-1.0, 2.0, 0.0, 1.0], [2, 2], &cpu());
    assert_eq!(values(rate_conv(data, 9)), vec![0.0, 1.0, 0.0, 1.0]);
}

// ---------------------------------------------------------------- latency

#[test]
fn latency_of_one_fires_at_step_zero() {
    let data = tensor(&[1.0, 0.5], [1, 2], &cpu());
    for linear in [false, true] {
        let cfg = LatencyConfig {
            linear,
            ..LatencyConfig::new(10)
        };
        let spk: Tensor<3> = latency(data.clone(), &cfg).unwrap();
        let v = values(spk);
        assert_eq!(v[0], 1.0, "linear={linear}");
        assert_eq!(v.iter().sum::<f64>(), 2.0, "each input fires exactly once");
    }
}

#[test]
fn latency_linear_normalized_matches_snntorch_docstring() {
    // snnTorch: latency([0.02, 0.5, 1], num_steps=5, normalize=True, linear=True)
    // fires input 2 at step 0, input 1 at step 2 and input 0 at step 4.
    let data = tensor(&[0.02, 0.5, 1.0], [3], &cpu());
    let cfg = LatencyConfig {
        linear: true,
        normalize: true,
        ..LatencyConfig::new(5)
    };
    let spk: Tensor<2> = latency(data.clone(), &cfg).unwrap();
    #[rustfmt::skip]
    let want = vec![
        0.0, 0.0, 1.0,
        0.0, 0.0, 0.0,
        0.0, 1.0, 0.0,
        0.0, 0.0, 0.0,
        1.0, 0.0, 0.0,
    ];
    assert_eq!(values(spk), want);
    let times = values(latency_times(data, &cfg).unwrap());
    assert!(close(times[0], 3.92, 1e-5) && close(times[1], 2.0, 1e-6) && times[2] == 0.0);
}

#[test]
fn latency_clip_drops_inputs_below_threshold() {
    let data = tensor(&[0.005, 1.0], [2], &cpu());
    let cfg = LatencyConfig {
        normalize: true,
        ..LatencyConfig::new(5)
    };
    let kept: Tensor<2> = latency(data.clone(), &cfg).unwrap();
    // Below threshold saturates to the latest time, the last step.
    assert_eq!(values(kept)[8], 1.0);
    let clipped: Tensor<2> = latency(data, &LatencyConfig { clip: true, ..cfg }).unwrap();
    assert_eq!(values(clipped).iter().sum::<f64>(), 1.0);
}

#[test]
fn latency_errors_instead_of_panicking() {
    let out_of_range = tensor(&[1.5], [1], &cpu());
    assert!(latency::<1, 2>(out_of_range, &LatencyConfig::new(5)).is_err());
    let data = tensor(&[0.011], [1], &cpu());
    // tau = 10 puts the spike of 0.011 far past step 4.
    let slow = LatencyConfig {
        tau: 10.0,
        ..LatencyConfig::new(5)
    };
    assert!(latency::<1, 2>(data.clone(), &slow).is_err());
    let bypass = LatencyConfig {
        bypass: true,
        ..slow
    };
    let spk: Tensor<2> = latency(data.clone(), &bypass).unwrap();
    assert_eq!(total_spikes(spk), 0.0, "bypass drops spikes past the end");
    let auto = LatencyConfig {
        num_steps: None,
        ..bypass
    };
    let spk: Tensor<2> = latency(data.clone(), &auto).unwrap();
    assert_eq!(
        total_spikes(spk.clone()),
        1.0,
        "without num_steps the latest spike sets T"
    );
    assert!(latency::<1, 3>(data.clone(), &LatencyConfig::new(5)).is_err());
    assert!(latency::<1, 2>(
        data,
        &LatencyConfig {
            threshold: 1.0,
            ..LatencyConfig::new(5)
        }
    )
    .is_err());
}

// ---------------------------------------------------------------- delta

#[test]
fn delta_fires_on_changes_over_threshold() {
    let data = tensor(&[0.0, 0.5, 0.5, 0.55, 0.2, 0.3], [3, 2], &cpu());
    let on = delta(data.clone(), &DeltaConfig::default()).unwrap();
    // Changes from zero: [0, .5], [.5, .05], [-.3, -.25].
    assert_eq!(values(on), vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    let both = DeltaConfig {
        off_spike: true,
        padding: true,
        ..DeltaConfig::default()
    };
    assert_eq!(
        values(delta(data, &both).unwrap()),
        vec![0.0, 0.0, 1.0, 0.0, -1.0, -1.0]
    );
}

// ---------------------------------------------------------------- targets

#[test]
fn one_hot_and_bad_class_indices() {
    let oh = to_one_hot(classes(&[2, 0], &cpu()), 3).unwrap();
    assert_eq!(values(oh), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    assert!(to_one_hot(classes(&[3], &cpu()), 3).is_err());
    assert!(to_one_hot(classes(&[-1], &cpu()), 3).is_err());
}

#[test]
fn targets_rate_builds_per_class_trains() {
    let cfg = TargetsRateConfig {
        correct_rate: 0.5,
        incorrect_rate: 0.25,
        ..TargetsRateConfig::new(4)
    };
    let t = targets_rate(classes(&[1], &cpu()), 2, &cfg).unwrap();
    assert_eq!(t.dims(), [4, 1, 2]);
    // Class 1 fires at steps 0 and 2, class 0 at step 0 only.
    assert_eq!(values(t), vec![1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    let delayed = TargetsRateConfig {
        first_spike_time: 2,
        on_target: 1.2,
        off_target: 0.5,
        ..TargetsRateConfig::new(5)
    };
    let t = values(targets_rate(classes(&[4], &cpu()), 5, &delayed).unwrap());
    let correct: Vec<f64> = (0..5).map(|s| t[s * 5 + 4]).collect();
    for (g, w) in correct.iter().zip([0.5, 0.5, 1.2, 1.2, 1.2]) {
        assert!(close(*g, w, 1e-6), "{correct:?}");
    }

    // snnTorch docstring: correct_rate 0.25 with interpolation → [1.2, 0.5, 0.7333, 0.9667, 1.2].
    let ramp = TargetsRateConfig {
        correct_rate: 0.25,
        on_target: 1.2,
        off_target: 0.5,
        interpolate: true,
        ..TargetsRateConfig::new(5)
    };
    let t = values(targets_rate(classes(&[4], &cpu()), 5, &ramp).unwrap());
    let correct: Vec<f64> = (0..5).map(|s| t[s * 5 + 4]).collect();
    for (g, w) in correct.iter().zip([1.2, 0.5, 0.7333, 0.9667, 1.2]) {
        assert!(close(*g, w, 1e-4), "{correct:?}");
    }
}

#[test]
fn targets_rate_random_patterns_are_seeded_and_options_checked() {
    let cfg = TargetsRateConfig {
        correct_rate: 0.5,
        firing_pattern: FiringPattern::Poisson { seed: 5 },
        ..TargetsRateConfig::new(200)
    };
    let a = values(targets_rate(classes(&[0], &cpu()), 2, &cfg).unwrap());
    let b = values(targets_rate(classes(&[0], &cpu()), 2, &cfg).unwrap());
    assert_eq!(a, b);
    let fired: f64 = a.iter().step_by(2).sum();
    assert!((70.0..130.0).contains(&fired), "{fired}");
    let bad = TargetsRateConfig {
        correct_rate: 0.2,
        incorrect_rate: 0.5,
        ..TargetsRateConfig::new(5)
    };
    assert!(targets_rate(classes(&[0], &cpu()), 2, &bad).is_err());
}

// ---------------------------------------------------------------- losses: values by hand

#[test]
fn ce_count_loss_by_hand() {
    let d = cpu();
    // Counts over 2 steps: [2, 0, 1]; target 0.
    let spk = tensor(&[1.0, 0.0, 1.0, 1.0, 0.0, 0.0], [2, 1, 3], &d);
    let got = scalar(CeCountLoss::new().forward(spk, classes(&[0], &d)).unwrap());
    let want = -(2f64.exp() / (2f64.exp() + 1.0 + 1f64.exp())).ln();
    assert!(close(got, want, 1e-6), "{got} vs {want}");
}

#[test]
fn ce_rate_loss_by_hand() {
    let d = cpu();
    // Step 0: [1, 0], step 1: [0, 0]; target 0 → mean of -ln σ(1) and ln 2.
    let spk = tensor(&[1.0, 0.0, 0.0, 0.0], [2, 1, 2], &d);
    let got = scalar(CeRateLoss::new().forward(spk, classes(&[0], &d)).unwrap());
    let want = 0.5 * ((1.0 + (-1f64).exp()).ln() + 2f64.ln());
    assert!(close(got, want, 1e-6), "{got} vs {want}");
}

#[test]
fn mse_count_loss_by_hand() {
    let d = cpu();
    // T = 4, correct 0.5 → 2 spikes, incorrect 0.25 → 1 spike. Counts [3, 1] against [2, 1].
    let spk = tensor(&[1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0], [4, 1, 2], &d);
    let got = scalar(
        MseCountLoss::new(0.5, 0.25)
            .forward(spk, classes(&[0], &d))
            .unwrap(),
    );
    assert!(close(got, (1.0 / 2.0) / 4.0, 1e-7), "{got}");
}

#[test]
fn membrane_losses_by_hand() {
    let d = cpu();
    let mem = tensor(&[0.5, 2.0, 1.0, -1.0], [2, 1, 2], &d);
    // Target [1, 0] (class 0): errors -0.5, 2, 0, -1 → mean square 5.25 / 4.
    let got = scalar(
        MseMembraneLoss::default()
            .forward(mem.clone(), classes(&[0], &d))
            .unwrap(),
    );
    assert!(close(got, 5.25 / 4.0, 1e-6), "{got}");
    let target = tensor(&[0.5, 2.0, 1.0, -1.0], [2, 1, 2], &d);
    let zero = scalar(
        MseMembraneLoss::default()
            .forward_time_varying(mem.clone(), target)
            .unwrap(),
    );
    assert_eq!(zero, 0.0);
    // Peaks [1, 2]; target 1 → -ln σ(1).
    let got = scalar(CeMaxMembraneLoss.forward(mem, classes(&[1], &d)).unwrap());
    assert!(close(got, (1.0 + (-1f64).exp()).ln(), 1e-6), "{got}");
}

#[test]
fn temporal_losses_by_hand() {
    let d = cpu();
    // T = 4; neuron 0 fires first at step 0, neuron 1 never fires (time 3).
    let spk = tensor(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [4, 1, 2], &d);
    let perfect = scalar(
        MseTemporalLoss::default()
            .forward(spk.clone(), classes(&[0], &d))
            .unwrap(),
    );
    assert_eq!(
        perfect, 0.0,
        "correct at step 0, the other at the last step"
    );
    // Target class 1 wants neuron 1 at 0 (is 3) and neuron 0 at 3 (is 0): (3/4)² each.
    let wrong = scalar(
        MseTemporalLoss::default()
            .forward(spk.clone(), classes(&[1], &d))
            .unwrap(),
    );
    assert!(close(wrong, 0.5625, 1e-7), "{wrong}");
    let tolerant = MseTemporalLoss {
        tolerance: 3.5,
        ..MseTemporalLoss::default()
    };
    assert_eq!(
        scalar(tolerant.forward(spk.clone(), classes(&[1], &d)).unwrap()),
        0.0
    );
    let explicit = tensor(&[1.0, -1.0], [1, 1, 2], &d);
    let got = scalar(
        MseTemporalLoss::default()
            .forward_times(spk.clone(), explicit)
            .unwrap(),
    );
    assert!(close(got, 0.5 * (1.0f64 / 4.0).powi(2), 1e-7), "{got}");
    // Two timed spikes: neuron 0 fires at 0 and 2, neuron 1 never.
    let multi = MseTemporalLoss {
        on_target: vec![0.0, 2.0],
        off_target: vec![-1.0, -1.0],
        tolerance: 0.0,
    };
    let spk2 = tensor(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [4, 1, 2], &d);
    assert_eq!(scalar(multi.forward(spk2, classes(&[0], &d)).unwrap()), 0.0);
    // Logits -[0, 3] → CE = ln(1 + e^-3) for class 0.
    let got = scalar(
        CeTemporalLoss::default()
            .forward(spk.clone(), classes(&[0], &d))
            .unwrap(),
    );
    assert!(close(got, (1.0 + (-3f64).exp()).ln(), 1e-6), "{got}");
    let got = scalar(
        CeTemporalLoss::new(TemporalInverse::Reciprocal)
            .forward(spk, classes(&[0], &d))
            .unwrap(),
    );
    // Logits [1, 1/4].
    assert!(close(got, (1.0 + (-0.75f64).exp()).ln(), 1e-6), "{got}");
}

#[test]
fn l1_rate_sparsity_is_lambda_times_total() {
    let spk = pattern([3, 2, 4], &cpu());
    let total = total_spikes(spk.clone());
    let got = scalar(L1RateSparsity::new(0.5).forward(spk));
    assert!(close(got, 0.5 * total, 1e-6));
}

// ---------------------------------------------------------------- population coding

#[test]
fn population_code_with_one_neuron_per_class_equals_the_plain_loss() {
    let d = cpu();
    let spk = pattern([5, 3, 4], &d);
    let t = classes(&[0, 3, 2], &d);
    let pairs = [
        (
            CeRateLoss::new().forward(spk.clone(), t.clone()).unwrap(),
            CeRateLoss {
                population_code: Some(4),
            }
            .forward(spk.clone(), t.clone())
            .unwrap(),
        ),
        (
            CeCountLoss::new().forward(spk.clone(), t.clone()).unwrap(),
            CeCountLoss {
                population_code: Some(4),
            }
            .forward(spk.clone(), t.clone())
            .unwrap(),
        ),
        (
            MseCountLoss::new(0.8, 0.2)
                .forward(spk.clone(), t.clone())
                .unwrap(),
            MseCountLoss {
                population_code: Some(4),
                ..MseCountLoss::new(0.8, 0.2)
            }
            .forward(spk.clone(), t.clone())
            .unwrap(),
        ),
    ];
    for (plain, pop) in pairs {
        assert!(close(scalar(plain), scalar(pop), 1e-7));
    }
    assert_eq!(
        accuracy_rate(spk.clone(), t.clone(), None).unwrap(),
        accuracy_rate(spk, t, Some(4)).unwrap()
    );
}

#[test]
fn population_sum_groups_neighbouring_neurons() {
    let spk = tensor(&[1.0, 1.0, 0.0, 1.0, 0.0, 0.0], [1, 1, 6], &cpu());
    assert_eq!(values(population_sum(spk, 3).unwrap()), vec![2.0, 1.0, 0.0]);
}

// ---------------------------------------------------------------- gradients

type LossFn<'a> = Box<dyn Fn(Tensor<3>) -> Tensor<1> + 'a>;

#[test]
fn every_loss_has_finite_gradients() {
    let d = grad_device();
    let t = classes(&[1, 0, 3], &d);
    let spk_losses: Vec<(&str, LossFn)> = vec![
        (
            "ce_rate",
            Box::new(|s| CeRateLoss::new().forward(s, t.clone()).unwrap()),
        ),
        (
            "ce_count",
            Box::new(|s| CeCountLoss::new().forward(s, t.clone()).unwrap()),
        ),
        (
            "ce_count pop",
            Box::new(|s| {
                CeCountLoss {
                    population_code: Some(2),
                }
                .forward(s, classes(&[1, 0, 1], &grad_device()))
                .unwrap()
            }),
        ),
        (
            "mse_count",
            Box::new(|s| MseCountLoss::default().forward(s, t.clone()).unwrap()),
        ),
        (
            "mse_temporal",
            Box::new(|s| MseTemporalLoss::default().forward(s, t.clone()).unwrap()),
        ),
        (
            "ce_temporal",
            Box::new(|s| CeTemporalLoss::default().forward(s, t.clone()).unwrap()),
        ),
        ("l1", Box::new(|s| L1RateSparsity::default().forward(s))),
        (
            "mse_membrane",
            Box::new(|m| MseMembraneLoss::default().forward(m, t.clone()).unwrap()),
        ),
        (
            "ce_max_membrane",
            Box::new(|m| CeMaxMembraneLoss.forward(m, t.clone()).unwrap()),
        ),
    ];
    for (name, loss) in spk_losses {
        let x = pattern([6, 3, 4], &d).require_grad();
        let grads = loss(x.clone()).backward();
        let g = values(
            x.grad(&grads)
                .unwrap_or_else(|| panic!("{name}: no gradient")),
        );
        assert!(g.iter().all(|v| v.is_finite()), "{name}: {g:?}");
        assert!(g.iter().any(|v| *v != 0.0), "{name}: all-zero gradient");
    }
}

#[test]
fn spike_time_gradient_points_to_earlier_firing() {
    let d = grad_device();
    let spk = tensor(&[0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [3, 1, 2], &d).require_grad();
    let grads = spike_times(spk.clone(), 1).unwrap().sum().backward();
    assert_eq!(
        values(spk.grad(&grads).unwrap()),
        vec![0.0, 0.0, -1.0, 0.0, 0.0, -1.0]
    );
}

// ---------------------------------------------------------------- shape errors

#[test]
fn losses_reject_bad_shapes_and_targets() {
    let d = cpu();
    let spk = pattern([4, 2, 6], &d);
    let short = classes(&[0], &d);
    let ok = classes(&[0, 1], &d);
    assert!(matches!(
        CeRateLoss::new().forward(spk.clone(), short.clone()),
        Err(Error::Shape { .. })
    ));
    assert!(CeCountLoss::new()
        .forward(spk.clone(), short.clone())
        .is_err());
    assert!(MseCountLoss::default()
        .forward(spk.clone(), short.clone())
        .is_err());
    assert!(MseMembraneLoss::default()
        .forward(spk.clone(), short.clone())
        .is_err());
    assert!(CeMaxMembraneLoss
        .forward(spk.clone(), short.clone())
        .is_err());
    assert!(MseTemporalLoss::default()
        .forward(spk.clone(), short.clone())
        .is_err());
    assert!(CeTemporalLoss::default()
        .forward(spk.clone(), short.clone())
        .is_err());
    assert!(accuracy_rate(spk.clone(), short, None).is_err());
    // 6 neurons cannot be split over 4 classes.
    let pop4 = Some(4);
    assert!(matches!(
        CeCountLoss {
            population_code: pop4
        }
        .forward(spk.clone(), ok.clone()),
        Err(Error::Shape { .. })
    ));
    assert!(CeRateLoss {
        population_code: pop4
    }
    .forward(spk.clone(), ok.clone())
    .is_err());
    assert!(MseCountLoss {
        population_code: pop4,
        ..MseCountLoss::default()
    }
    .forward(spk.clone(), ok.clone())
    .is_err());
    assert!(accuracy_rate(spk.clone(), ok.clone(), pop4).is_err());
    // Class 3 does not exist with 3 population classes.
    assert!(CeCountLoss {
        population_code: Some(3)
    }
    .forward(spk.clone(), classes(&[0, 3], &d))
    .is_err());
    let mismatched = MseTemporalLoss {
        on_target: vec![0.0, 1.0],
        ..MseTemporalLoss::default()
    };
    assert!(mismatched.forward(spk.clone(), ok).is_err());
    let wrong_target = tensor(&[0.0; 8], [1, 2, 4], &d);
    assert!(MseMembraneLoss::default()
        .forward_time_varying(spk.clone(), wrong_target.clone().reshape([2, 1, 4]))
        .is_err());
    assert!(MseTemporalLoss::default()
        .forward_times(spk, wrong_target)
        .is_err());
}

// ---------------------------------------------------------------- metrics

#[test]
fn accuracy_and_spike_statistics() {
    let d = cpu();
    // Two steps, two samples, three neurons.
    #[rustfmt::skip]
    let spk = tensor(&[
        0.0, 1.0, 0.0,   1.0, 0.0, 0.0,
        0.0, 1.0, 1.0,   0.0, 0.0, 1.0,
    ], [2, 2, 3], &d);
    // Counts: sample 0 [0, 2, 1] → class 1; sample 1 [1, 0, 1] → class 0 (first on ties).
    assert_eq!(
        accuracy_rate(spk.clone(), classes(&[1, 0], &d), None).unwrap(),
        1.0
    );
    assert_eq!(
        accuracy_rate(spk.clone(), classes(&[1, 2], &d), None).unwrap(),
        0.5
    );
    // First spikes: sample 0 neuron 1 at step 0; sample 1 neuron 0 at step 0.
    assert_eq!(
        accuracy_temporal(spk.clone(), classes(&[1, 0], &d)).unwrap(),
        1.0
    );
    assert_eq!(
        accuracy_temporal(spk.clone(), classes(&[2, 2], &d)).unwrap(),
        0.0
    );
    assert_eq!(total_spikes(spk.clone()), 5.0);
    assert!(close(firing_rate(spk.clone()), 5.0 / 12.0, 1e-12));
    assert_eq!(
        values(spike_counts(spk)),
        vec![0.0, 2.0, 1.0, 1.0, 0.0, 1.0]
    );
}
