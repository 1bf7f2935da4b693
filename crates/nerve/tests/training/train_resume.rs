//! Training is reproducible from a seed, resuming continues exactly where an uninterrupted run
//! would be, and a diverging run stops before it touches the last good checkpoint.

use burn::module::Module;
use burn::tensor::Device;
use nerve::data::mnist::ImageDataset;
use nerve::data::Encoding;
use nerve::models::SpikingNetConfig;
use nerve::store::checkpoint;
use nerve::train::optimizer::OptimizerKind;
use nerve::train::schedule::Schedule;
use nerve::train::trainer::{checkpoint_path, train, LossKind, Session, TrainConfig};
use nerve::Error;

/// A small synthetic data set: class k lights up the k-th band of rows.
fn bands(n: usize) -> ImageDataset {
    let (rows, cols) = (12, 12);
    let mut images = Vec::with_capacity(n * rows * cols);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 4;
        for r in 0..rows {
            for c in 0..cols {
                let lit = r / 3 == class && (c + i) % 5 != 0;
                images.push(if lit { 255 } else { 0 });
            }
        }
        labels.push(class as u8);
    }
    ImageDataset::new(images, labels, rows, cols, 4).unwrap()
}

fn net_config() -> SpikingNetConfig {
    SpikingNetConfig {
        arch: "4C3-MP2-FC4".into(),
        input: [1, 12, 12],
        steps: 4,
        ..SpikingNetConfig::tutorial_conv()
    }
}

fn config(out: &std::path::Path, epochs: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        lr,
        optimizer: OptimizerKind::Adam,
        schedule: Schedule::Constant,
        grad_clip: None,
        seed: 7,
        loss: LossKind::CeRate,
        encoding: Encoding::Rate { gain: 0.8 },
        tbptt: None,
        out_dir: out.to_path_buf(),
        train_limit: None,
        test_limit: None,
        dataset: "bands".into(),
        population: None,
    }
}

fn weights(session: &Session) -> Vec<f32> {
    let record = session.net.clone().valid();
    let mut all = Vec::new();
    for stage in &record.stages {
        if let nerve::models::spiking_net::Stage::Conv(c) = stage {
            all.extend(c.conv.weight.val().into_data().iter::<f32>());
        }
        if let nerve::models::spiking_net::Stage::Linear(l) = stage {
            all.extend(l.linear.weight.val().into_data().iter::<f32>());
        }
    }
    all
}

#[test]
fn resumed_run_matches_an_uninterrupted_one() {
    let _turn = crate::common::rng_turn();
    let data = bands(48);
    let test = bands(16);
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();

    let straight_dir = dir.path().join("straight");
    let cfg = config(&straight_dir, 2, 1e-2);
    let session = Session::new(net_config(), &cfg, &device).unwrap();
    let straight = train(session, &data, &test, &cfg, &device, &mut |_| {}).unwrap();

    let split_dir = dir.path().join("split");
    let first = config(&split_dir, 1, 1e-2);
    let session = Session::new(net_config(), &first, &device).unwrap();
    train(session, &data, &test, &first, &device, &mut |_| {}).unwrap();
    let second = config(&split_dir, 2, 1e-2);
    let resumed = Session::resume(net_config(), &second, &device).unwrap();
    assert_eq!(resumed.history.records.len(), 1);
    let resumed = train(resumed, &data, &test, &second, &device, &mut |_| {}).unwrap();

    assert_eq!(resumed.history.records.len(), 2);
    let (a, b) = (weights(&straight), weights(&resumed));
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(worst == 0.0, "resumed weights differ by up to {worst}");
    assert_eq!(
        straight.history.records[1].train_loss, resumed.history.records[1].train_loss,
        "the resumed epoch saw the same batches"
    );
}

#[test]
fn training_learns_the_synthetic_task() {
    let _turn = crate::common::rng_turn();
    let data = bands(64);
    let test = bands(16);
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 3, 2e-2);
    let session = Session::new(net_config(), &cfg, &device).unwrap();
    let done = train(session, &data, &test, &cfg, &device, &mut |_| {}).unwrap();
    let last = done.history.records.last().unwrap();
    assert!(
        last.test_accuracy >= 0.75,
        "test accuracy {}",
        last.test_accuracy
    );
    assert!(checkpoint_path(dir.path()).exists());
    let meta = checkpoint::load_meta(checkpoint_path(dir.path())).unwrap();
    assert_eq!(meta.epoch, 3);
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_checkpoint() {
    let _turn = crate::common::rng_turn();
    let data = bands(32);
    let test = bands(8);
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let good = config(dir.path(), 1, 1e-2);
    let session = Session::new(net_config(), &good, &device).unwrap();
    train(session, &data, &test, &good, &device, &mut |_| {}).unwrap();
    let before = std::fs::read(checkpoint_path(dir.path())).unwrap();

    let nan = config(dir.path(), 2, f64::NAN);
    let err = nan.validate(&net_config()).unwrap_err().to_string();
    assert!(err.contains("learning rate"), "{err}");

    // A finite but absurd learning rate blows the weights up within a step or two.
    // Spike-count losses stay bounded however large the weights get; the membrane does not.
    let bad = TrainConfig {
        loss: LossKind::CeMaxMembrane,
        ..config(dir.path(), 2, 1e38)
    };
    let session = Session::resume(net_config(), &bad, &device).unwrap();
    let err = train(session, &data, &test, &bad, &device, &mut |_| {})
        .err()
        .expect("a huge learning rate diverges");
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("non-finite loss") && !msg.contains('\n'),
        "{msg}"
    );
    assert_eq!(before, std::fs::read(checkpoint_path(dir.path())).unwrap());
}
