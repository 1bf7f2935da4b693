//! `nerve hw openspike-train`: a network trained for the OpenSpike chip's own arithmetic, its
//! accuracy in float and on the simulated chip, and its memory images.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nerve::hw::openspike::train::{self, ChipTrainConfig};
use nerve::hw::openspike::{Images, CLOCKS_PER_STEP, CLOCK_PERIOD_NS, START_CLOCKS};
use nerve::Result;

/// Options of `nerve hw openspike-train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data set name (mnist, fashion-mnist) found by the usual lookup, or `embedded`.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Directory holding the data set's IDX files.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Directory to write the memory images into (the first test image as the input).
    #[arg(long)]
    out: PathBuf,
    /// Hidden neurons (≤ 1024).
    #[arg(long, default_value_t = 1024)]
    hidden: usize,
    /// Passes over the training images.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Seed of the weights and the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use only the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    test_limit: Option<usize>,
}

/// Trains, evaluates in float and on the simulated chip, and writes the images.
pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    let data = if args.dataset == "embedded" {
        nerve::data::mnist::load_embedded_mnist()?
    } else {
        nerve::data::mnist::load_dataset(&args.dataset, args.data.as_deref())?
    };
    let take = |n: usize, limit: Option<usize>| limit.map_or(n, |l| l.min(n));
    let n_train = take(data.train.len(), args.train_limit);
    let n_test = take(data.test.len(), args.test_limit);
    let train_images: Vec<&[u8]> = (0..n_train).map(|i| data.train.image(i)).collect();
    let train_labels: Vec<u8> = (0..n_train).map(|i| data.train.label(i)).collect();
    let test_images: Vec<&[u8]> = (0..n_test).map(|i| data.test.image(i)).collect();
    let test_labels: Vec<u8> = (0..n_test).map(|i| data.test.label(i)).collect();
    let config = ChipTrainConfig {
        hidden: args.hidden,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        ..ChipTrainConfig::default()
    };
    println!(
        "{}: {n_train} training and {n_test} test images; {}-{}-10 for the chip, {} epochs",
        data.name,
        train_images.first().map_or(0, |im| im.len()),
        args.hidden,
        args.epochs
    );
    let bar = ProgressBar::new((args.epochs * n_train.div_ceil(args.batch_size.max(1))) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let net = train::train(
        &train_images,
        &train_labels,
        10,
        &config,
        |epoch, _, _, loss| {
            bar.inc(1);
            bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
        },
    )?;
    bar.finish_and_clear();
    let float = train::accuracy(&net, &test_images, &test_labels);
    let (network, init) = net.compile()?;
    let mut correct = 0usize;
    let mut agree = 0usize;
    let float_pred = train::predictions(&net, &test_images);
    for (k, image) in test_images.iter().enumerate() {
        let class = train::classify_on_chip(&network, &init, image)?;
        correct += usize::from(class == usize::from(test_labels[k]));
        agree += usize::from(class == float_pred[k]);
    }
    let chip = correct as f64 / n_test.max(1) as f64;
    println!(
        "float model (the chip's arithmetic in f32): {:.2}%",
        100.0 * float
    );
    println!(
        "simulated chip: {:.2}% ({agree} of {n_test} predictions equal the float model's)",
        100.0 * chip
    );
    let clocks = START_CLOCKS + CLOCKS_PER_STEP;
    println!(
        "one step per inference: {clocks} clocks, {:.2} µs at {CLOCK_PERIOD_NS} ns",
        (clocks * CLOCK_PERIOD_NS) as f64 / 1000.0
    );
    if let Some(first) = test_images.first() {
        let x: Vec<bool> = first.iter().map(|&p| p >= train::PIXEL_ON).collect();
        let images = Images::encode(&network, &init, &[x])?;
        nerve::hw::openspike::images::write_images(&args.out, &images)?;
        println!(
            "memory images (test image 0 as input) → {}",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
