//! Regression with spiking networks (snnTorch's regression tutorials I and II): the tutorial's
//! trajectory generator, CSV / NPY loading with one-line errors, the relative error, and tiny
//! training runs of both networks whose loss falls.

use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use nerve::data::mnist::ImageDataset;
use nerve::data::series_files::{load_series_pair, read_series};
use nerve::data::trajectories::{TrajectoryConfig, TrajectoryKind};
use nerve::models::regression_net::{RegressionModelKind, RegressionNet, RegressionNetConfig};
use nerve::train::optimizer::OptimizerKind;
use nerve::train::regression::{
    relative_error, train, RegressionConfig, RegressionData, RegressionLoss, RegressionSession,
};
use nerve::train::schedule::Schedule;
use nerve::Error;

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() < 1e-6
}

#[test]
fn sqrt_trajectory_follows_the_tutorial_formula() {
    let mut config = TrajectoryConfig::tutorial(TrajectoryKind::Sqrt, 3);
    config.steps = 5;
    config.end = Some(0.5);
    config.slope = Some(0.5);
    let data = config.generate().unwrap();
    assert_eq!(data.input_shape, [5, 1, 1]);
    assert_eq!(data.target_shape, [5, 1, 1]);
    for t in 0..5 {
        let x = 0.5 * t as f64 / 4.0;
        assert!(close(data.inputs[t], x), "input {t}: {}", data.inputs[t]);
        assert!(close(data.targets[t], (0.5 * x).sqrt()), "target {t}");
    }
}

#[test]
fn linear_trajectories_are_their_inputs_and_seeded() {
    let mut config = TrajectoryConfig::tutorial(TrajectoryKind::Linear, 7);
    config.samples = 3;
    let a = config.generate().unwrap();
    assert_eq!(a.input_shape, [50, 3, 1]);
    assert_eq!(a.inputs, a.targets);
    // Every ramp starts at 0 and ends at its own end point in (0, 1).
    let ends: Vec<f32> = (0..3).map(|s| a.inputs[49 * 3 + s]).collect();
    assert!((0..3).all(|s| a.inputs[s] == 0.0));
    assert!(ends.iter().all(|&e| e > 0.0 && e < 1.0), "{ends:?}");
    assert_eq!(config.generate().unwrap(), a, "same seed, same data");
    config.seed = 8;
    assert_ne!(config.generate().unwrap().inputs, a.inputs);
}

#[test]
fn generator_refuses_degenerate_settings() {
    let mut config = TrajectoryConfig::tutorial(TrajectoryKind::Sqrt, 0);
    config.steps = 1;
    assert!(config.generate().unwrap_err().to_string().contains("steps"));
    config.steps = 10;
    config.samples = 0;
    assert!(config
        .generate()
        .unwrap_err()
        .to_string()
        .contains("samples"));
    config.samples = 1;
    config.end = Some(f64::NAN);
    assert!(config.generate().unwrap_err().to_string().contains("end"));
    assert!(TrajectoryKind::parse("cubic").is_err());
}

#[test]
fn relative_error_on_a_known_case() {
    let device = Device::flex();
    let t =
        |v: Vec<f32>, shape: [usize; 3]| Tensor::<3>::from_data(TensorData::new(v, shape), &device);
    // One output: every step after 0 is 10% off; step 0 (target 0) is left out.
    let target = t(vec![0.0, 1.0, 2.0, 4.0], [4, 1, 1]);
    let mem = t(vec![0.7, 1.1, 1.8, 4.4], [4, 1, 1]);
    assert!((relative_error(&mem, &target).unwrap() - 0.1).abs() < 1e-6);
    // Two outputs: the norm is taken over the outputs, ‖(0.5, 0)‖ / ‖(3, 4)‖ = 0.1, and
    // ‖(0, 1)‖ / ‖(0, 2)‖ = 0.5: mean 0.3.
    let target = t(vec![0.0, 0.0, 3.0, 4.0, 0.0, 2.0], [3, 1, 2]);
    let mem = t(vec![1.0, 1.0, 3.5, 4.0, 0.0, 3.0], [3, 1, 2]);
    assert!((relative_error(&mem, &target).unwrap() - 0.3).abs() < 1e-6);
    // All-zero targets have no relative error.
    let zeros = t(vec![0.0; 3], [3, 1, 1]);
    assert!(relative_error(&zeros, &zeros).is_err());
}

/// The error's message, checked to be one line naming `path`.
fn one_line_error(err: Error, path: &Path, needle: &str) {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "no path in: {msg}"
    );
    assert!(msg.contains(needle), "'{needle}' not in: {msg}");
}

#[test]
fn csv_rows_in_any_order_with_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv");
    std::fs::write(
        &path,
        "step,sample,a,b\n1,0,3,4\n0,1,5,6\n0,0,1,2\n1,1,7,8\n",
    )
    .unwrap();
    let array = read_series(&path).unwrap();
    assert_eq!(array.shape, [2, 2, 2]);
    assert_eq!(array.values, vec![1.0, 2.0, 5.0, 6.0, 3.0, 4.0, 7.0, 8.0]);
}

#[test]
fn malformed_csv_files_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("ragged.csv", "0,0,1\n1,0,2,3\n", "fields"),
        ("word.csv", "0,0,1\n1,0,abc\n", "'abc' is not a number"),
        ("nan.csv", "0,0,1\n1,0,NaN\n", "not finite"),
        ("dup.csv", "0,0,1\n0,0,2\n1,0,3\n", "more than once"),
        (
            "missing.csv",
            "0,0,1\n1,1,2\n0,1,3\n",
            "no row for step 1, sample 0",
        ),
        ("empty.csv", "step,sample,v\n", "no data rows"),
        ("index.csv", "0,-1,1\n", "sample '-1'"),
    ];
    for (name, text, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        one_line_error(read_series(&path).unwrap_err(), &path, needle);
    }
    let absent = dir.path().join("absent.csv");
    one_line_error(read_series(&absent).unwrap_err(), &absent, "absent.csv");
    let txt = dir.path().join("x.txt");
    std::fs::write(&txt, "0,0,1\n").unwrap();
    one_line_error(
        read_series(&txt).unwrap_err(),
        &txt,
        "expected .npy or .csv",
    );
}

#[test]
fn npy_series_load_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
    nerve::hw::nir::write_npy(&x, &[3, 2, 2], &values).unwrap();
    nerve::hw::nir::write_npy(&y, &[3], &[0.0, 1.0, 2.0]).unwrap();
    let x_read = read_series(&x).unwrap();
    assert_eq!(x_read.shape, [3, 2, 2]);
    assert_eq!(x_read.values, values);
    assert_eq!(read_series(&y).unwrap().shape, [3, 1, 1]);
    // [T, N] disagree: inputs have 2 samples, targets 1.
    one_line_error(
        load_series_pair(&x, &y).unwrap_err(),
        &y,
        "T and N must agree",
    );

    let flat = dir.path().join("flat.npy");
    nerve::hw::nir::write_npy(&flat, &[3, 4], &values).unwrap();
    one_line_error(read_series(&flat).unwrap_err(), &flat, "expected [T, N, F]");
    let nan = dir.path().join("nan.npy");
    nerve::hw::nir::write_npy(&nan, &[2], &[0.0, f32::NAN]).unwrap();
    one_line_error(read_series(&nan).unwrap_err(), &nan, "not finite");
    let junk = dir.path().join("junk.npy");
    std::fs::write(&junk, b"not numpy").unwrap();
    one_line_error(read_series(&junk).unwrap_err(), &junk, "not a NumPy");

    let t = dir.path().join("t.npy");
    nerve::hw::nir::write_npy(&t, &[3, 2, 1], &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]).unwrap();
    let pair = load_series_pair(&x, &t).unwrap();
    assert_eq!(
        (pair.steps(), pair.len(), pair.features(), pair.outputs()),
        (3, 2, 2, 1)
    );
}

fn config(out: &Path, epochs: usize, lr: f64, loss: RegressionLoss) -> RegressionConfig {
    RegressionConfig {
        epochs,
        batch_size: 8,
        lr,
        optimizer: OptimizerKind::Adam,
        schedule: Schedule::Constant,
        grad_clip: None,
        seed: 1,
        loss,
        out_dir: out.to_path_buf(),
        dataset: "test".into(),
    }
}

fn tiny_leaky(steps: usize) -> RegressionNetConfig {
    let mut net = RegressionNetConfig::tutorial_leaky(5);
    net.hidden = 16;
    net.steps = steps;
    net
}

#[test]
fn tiny_leaky_regression_learns_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut traj = TrajectoryConfig::tutorial(TrajectoryKind::Sqrt, 2);
    traj.steps = 12;
    let data = traj.generate().unwrap();
    let device = Device::flex().autodiff();
    let cfg = config(dir.path(), 40, 1e-2, RegressionLoss::MseMembrane);
    let session = RegressionSession::new(tiny_leaky(12), &cfg, &device).unwrap();
    // Per-neuron β and thresholds in (0, 1), β learned, thresholds fixed.
    let RegressionNet::Leaky(net) = &session.net else {
        panic!("not the Leaky network")
    };
    assert_eq!(net.lif_in.beta.dims(), [16]);
    assert!(net.lif_in.beta.is_require_grad());
    assert!(!net.lif_in.firing.threshold.is_require_grad());
    let d = RegressionData::Series(&data);
    let session = train(session, d, d, &cfg, &device, &mut |_| {}).unwrap();
    let records = &session.history.records;
    assert_eq!(records.len(), 40);
    let (first, last) = (records[0].train_loss, records[39].train_loss);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    let rel = records[39].extra["relative_error"];
    assert!(
        rel.is_finite() && rel < records[0].extra["relative_error"],
        "{rel}"
    );
    for file in [
        "checkpoint.safetensors",
        "checkpoint.optim.bpk",
        "history.json",
        "history.csv",
    ] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }
    // A resumed session continues the history where it stopped.
    let cfg = config(dir.path(), 42, 1e-2, RegressionLoss::MseMembrane);
    let resumed = RegressionSession::resume(tiny_leaky(12), &cfg, &device).unwrap();
    assert_eq!(resumed.history.records.len(), 40);
    let resumed = train(resumed, d, d, &cfg, &device, &mut |_| {}).unwrap();
    assert_eq!(resumed.history.records.len(), 42);
}

#[test]
fn nan_loss_stops_before_the_step_and_keeps_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut traj = TrajectoryConfig::tutorial(TrajectoryKind::Linear, 2);
    traj.steps = 6;
    let data = traj.generate().unwrap();
    let device = Device::flex().autodiff();
    let cfg = config(dir.path(), 2, 1e-2, RegressionLoss::MseMembrane);
    let mut session = RegressionSession::new(tiny_leaky(6), &cfg, &device).unwrap();
    if let RegressionNet::Leaky(net) = &mut session.net {
        let nan = Tensor::<1>::from_data(TensorData::new(vec![f32::NAN], [1]), &device);
        net.fc_out.bias = Some(Param::from_tensor(nan));
    }
    let d = RegressionData::Series(&data);
    let err = train(session, d, d, &cfg, &device, &mut |_| {})
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                epoch: 1,
                step: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(!dir.path().join("checkpoint.safetensors").exists());
}

/// 2 classes of 4x4 images: bright left half (0) or bright right half (1).
fn halves(n: usize) -> ImageDataset {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let label = (i % 2) as u8;
        for _row in 0..4 {
            for col in 0..4 {
                let bright = (col < 2) == (label == 0);
                images.push(if bright { 200 + (i % 50) as u8 } else { 10 });
            }
        }
        labels.push(label);
    }
    ImageDataset::new(images, labels, 4, 4, 2).unwrap()
}

#[test]
fn tiny_rleaky_runs_learn_labels_as_regression_targets() {
    let data = halves(16);
    let device = Device::flex().autodiff();
    for loss in [
        RegressionLoss::parse("mse-count:0.8:0.2").unwrap(),
        RegressionLoss::parse("mse-membrane:1.05:0.2").unwrap(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let net = RegressionNetConfig {
            kind: RegressionModelKind::RLeaky,
            inputs: 16,
            hidden: 16,
            outputs: 2,
            steps: 5,
            beta: 0.9,
            learn_beta: false,
            random_neurons: false,
            firing: Default::default(),
            seed: 3,
        };
        let cfg = config(dir.path(), 15, 1e-2, loss);
        let session = RegressionSession::new(net, &cfg, &device).unwrap();
        let d = RegressionData::Labelled(&data);
        let session = train(session, d, d, &cfg, &device, &mut |_| {}).unwrap();
        let r = &session.history.records;
        assert!(
            r[14].train_loss < r[0].train_loss,
            "{loss:?}: {} -> {}",
            r[0].train_loss,
            r[14].train_loss
        );
        assert!(
            r[14].test_accuracy >= 0.75,
            "{loss:?}: accuracy {}",
            r[14].test_accuracy
        );
        assert!(!r[14].extra.contains_key("relative_error"));
    }
}

#[test]
fn losses_parse_and_refuse_the_wrong_targets() {
    assert_eq!(
        RegressionLoss::parse("mse").unwrap(),
        RegressionLoss::MseMembrane
    );
    assert_eq!(
        RegressionLoss::parse("mse-count:0.8:0.2").unwrap().spec(),
        "mse-count:0.8:0.2"
    );
    assert!(RegressionLoss::parse("mse-count:2:0").is_err());
    assert!(RegressionLoss::parse("ce-rate").is_err());
    let dir = tempfile::tempdir().unwrap();
    let data = TrajectoryConfig::tutorial(TrajectoryKind::Sqrt, 0)
        .generate()
        .unwrap();
    let device = Device::flex().autodiff();
    let cfg = config(
        dir.path(),
        1,
        1e-3,
        RegressionLoss::parse("mse-count").unwrap(),
    );
    let session = RegressionSession::new(tiny_leaky(50), &cfg, &device).unwrap();
    let d = RegressionData::Series(&data);
    let err = train(session, d, d, &cfg, &device, &mut |_| {})
        .err()
        .unwrap();
    assert!(err.to_string().contains("needs class labels"), "{err}");
}
