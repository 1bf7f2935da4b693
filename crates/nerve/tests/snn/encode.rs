//! Encoders (rate, latency, delta, target spike trains): hand-checked examples, seeds and
//! option errors.

use burn::tensor::Tensor;
use nerve::encode::{
    delta, latency, latency_times, rate, rate_conv, targets_rate, to_one_hot, DeltaConfig,
    FiringPattern, LatencyConfig, RateConfig, TargetsRateConfig,
};
use nerve::metrics::{spike_counts, total_spikes};
use nerve::Error;

use crate::fixtures::*;

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
