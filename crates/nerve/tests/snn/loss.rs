//! Losses and metrics: hand-checked values, population coding, gradients, shape errors, and
//! the snnTorch reference cases of encoders, losses and accuracy.

use burn::tensor::Tensor;
use nerve::loss::{
    population_sum, spike_times, CeCountLoss, CeMaxMembraneLoss, CeRateLoss, CeTemporalLoss,
    L1RateSparsity, MseCountLoss, MseMembraneLoss, MseTemporalLoss, TemporalInverse,
};
use nerve::metrics::{accuracy_rate, accuracy_temporal, firing_rate, spike_counts, total_spikes};
use nerve::snntorch_check::check_file;
use nerve::Error;

use crate::fixtures::*;

// ---------------------------------------------------------------- reference cases

#[test]
fn snntorch_encoder_loss_and_accuracy_cases_match() {
    let Some(shared) = crate::common::shared_dir() else {
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
