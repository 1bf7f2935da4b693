//! Event data sets from folders train spiking networks end to end: emulated N-MNIST
//! (`Train/<digit>/<i>.bin`) and ST-MNIST `.mat` recordings (`<digit>/<file>.mat`, split 80/20)
//! through snnTorch's ST-MNIST tutorial network.

use std::path::Path;

use burn::tensor::Device;
use nerve::data::events::dataset::{load_event_folder, EventFolderOptions};
use nerve::data::events::saccade::{write_emulated_nmnist, SaccadeConfig};
use nerve::data::mnist::load_embedded_mnist;
use nerve::data::{Encoding, Samples};
use nerve::models::SpikingNetConfig;
use nerve::train::optimizer::OptimizerKind;
use nerve::train::schedule::Schedule;
use nerve::train::trainer::{evaluate, train, LossKind, Session, TrainConfig};

fn config(out: &Path, epochs: usize, batch_size: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
        lr: 1e-2,
        optimizer: OptimizerKind::Adam,
        schedule: Schedule::Constant,
        grad_clip: None,
        seed: 3,
        loss: LossKind::CeRate,
        encoding: Encoding::Direct,
        tbptt: None,
        out_dir: out.to_path_buf(),
        train_limit: None,
        test_limit: None,
        dataset: "events".into(),
        population: None,
    }
}

/// Writes the first `n` embedded MNIST digits of a split as emulated N-MNIST files.
fn emulated_nmnist(dir: &Path, train: usize, test: usize) {
    let mnist = load_embedded_mnist().unwrap();
    for (split, data, n) in [("Train", &mnist.train, train), ("Test", &mnist.test, test)] {
        write_emulated_nmnist(
            &data.images[..n * 784],
            &data.labels[..n],
            dir,
            split,
            &SaccadeConfig::default(),
            0,
            |_, _| {},
        )
        .unwrap();
    }
}

#[test]
fn emulated_nmnist_folder_loads_in_mnist_order_and_trains() {
    let _turn = crate::common::rng_turn();
    let tmp = tempfile::tempdir().unwrap();
    emulated_nmnist(tmp.path(), 96, 32);
    let options = EventFolderOptions {
        bins: 5,
        train_limit: None,
        test_limit: None,
    };
    let splits = load_event_folder(tmp.path(), &options, &|_, _| {}).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (96, 32));
    assert_eq!(splits.train.input_shape(), [2, 34, 34]);
    assert_eq!(
        splits.train.class_names,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    // Files are read in index order across class folders, so labels follow MNIST's.
    let mnist = load_embedded_mnist().unwrap();
    assert_eq!(splits.train.labels, mnist.train.labels[..96]);
    // Every event lands in a bin: the frames sum to the events read (no count reaches 255).
    let total: u64 = splits.train.frames.iter().map(|&c| u64::from(c)).sum();
    assert_eq!(total, splits.train.events);
    // The default saccade settings give about as many events per digit as real N-MNIST (4,325).
    let per_digit = splits.train.events as f64 / 96.0;
    assert!(
        (2_500.0..7_000.0).contains(&per_digit),
        "{per_digit} events per digit"
    );

    // A limit takes the first samples in index order, not the first class folder.
    let limited = EventFolderOptions {
        train_limit: Some(20),
        test_limit: Some(5),
        ..options.clone()
    };
    let small = load_event_folder(tmp.path(), &limited, &|_, _| {}).unwrap();
    assert_eq!(small.train.labels, mnist.train.labels[..20]);
    assert_eq!(small.test.len(), 5);

    let device = Device::flex().autodiff();
    let net = SpikingNetConfig {
        arch: "8C5-MP4-FC10".into(),
        input: [2, 34, 34],
        steps: 5,
        ..SpikingNetConfig::tutorial_conv()
    };
    let out = tempfile::tempdir().unwrap();
    let cfg = config(out.path(), 3, 32);
    let session = Session::new(net, &cfg, &device).unwrap();
    let session = train(
        session,
        &splits.train,
        &splits.test,
        &cfg,
        &device,
        &mut |_| {},
    )
    .unwrap();
    let records = &session.history.records;
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.train_loss.is_finite()));
    assert!(
        records[2].train_loss < records[0].train_loss,
        "loss did not fall: {:?}",
        records.iter().map(|r| r.train_loss).collect::<Vec<_>>()
    );
    assert!(out.path().join("checkpoint.safetensors").exists());

    // Frames binned for another number of steps are refused, naming both.
    let wrong = SpikingNetConfig {
        arch: "8C5-MP4-FC10".into(),
        input: [2, 34, 34],
        steps: 7,
        ..SpikingNetConfig::tutorial_conv()
    }
    .init(&Device::flex())
    .unwrap();
    let err = evaluate(&wrong, &splits.test, &cfg, &Device::flex(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("5 time bins"), "{err}");
}

#[test]
fn folder_errors_name_the_problem() {
    let _turn = crate::common::rng_turn();
    let tmp = tempfile::tempdir().unwrap();
    let options = EventFolderOptions {
        bins: 4,
        train_limit: None,
        test_limit: None,
    };
    let missing = tmp.path().join("nope");
    let err = load_event_folder(&missing, &options, &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    // Train without Test.
    std::fs::create_dir_all(tmp.path().join("Train/0")).unwrap();
    let err = load_event_folder(tmp.path(), &options, &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
    // A corrupt recording names its file.
    std::fs::create_dir_all(tmp.path().join("Test/0")).unwrap();
    std::fs::write(tmp.path().join("Train/0/00001.bin"), [1u8, 2, 3]).unwrap();
    std::fs::write(tmp.path().join("Test/0/00002.bin"), [0u8; 5]).unwrap();
    let err = load_event_folder(tmp.path(), &options, &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("00001.bin"), "{err}");
}

#[test]
fn stmnist_tutorial_network_runs_end_to_end_on_mat_files() {
    let _turn = crate::common::rng_turn();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/events/sample_stmnist.mat");
    if !sample.exists() {
        eprintln!(
            "skipped: {} not found (../shared is absent)",
            sample.display()
        );
        return;
    }
    // ST-MNIST's own layout: one folder per digit, no train/test split. The one published
    // sample recording stands in for each digit's files.
    let tmp = tempfile::tempdir().unwrap();
    for digit in 0..10 {
        let dir = tmp.path().join(digit.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..5 {
            std::fs::copy(&sample, dir.join(format!("{digit}_{k}.mat"))).unwrap();
        }
    }
    let options = EventFolderOptions {
        bins: 20,
        train_limit: None,
        test_limit: None,
    };
    let splits = load_event_folder(tmp.path(), &options, &|_, _| {}).unwrap();
    // Every fifth file of each digit is a test sample.
    assert_eq!((splits.train.len(), splits.test.len()), (40, 10));
    assert_eq!(splits.train.input_shape(), [2, 10, 10]);
    assert_eq!(splits.train.events, 40 * 2_346);

    // snnTorch's tutorial: Conv 2→32 k4 – LIF – Conv 32→64 k3 – LIF – MaxPool2 – FC → 10 – LIF,
    // beta 0.95.
    let device = Device::flex().autodiff();
    let net = SpikingNetConfig {
        arch: "32C4-LIF-64C3-LIF-MP2-FC10".into(),
        input: [2, 10, 10],
        steps: 20,
        beta: 0.95,
        ..SpikingNetConfig::tutorial_conv()
    };
    let out = tempfile::tempdir().unwrap();
    let cfg = config(out.path(), 1, 16);
    let session = Session::new(net, &cfg, &device).unwrap();
    let session = train(
        session,
        &splits.train,
        &splits.test,
        &cfg,
        &device,
        &mut |_| {},
    )
    .unwrap();
    let record = &session.history.records[0];
    assert!(record.train_loss.is_finite() && record.test_loss.is_finite());
    let sizes: Vec<usize> = session.net.layer_names.iter().map(|(_, n)| *n).collect();
    assert_eq!(sizes, [32 * 7 * 7, 64 * 5 * 5, 10]);
    assert!(record.spikes_per_sample > 0.0, "the network never spiked");
}
