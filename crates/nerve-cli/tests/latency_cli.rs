//! `nerve train --task latency` (BPLC + NOSO) end to end on the embedded MNIST subset.

mod common;
use common::*;

/// A tiny run prints the spike count and then, last, the accuracy, and writes its files.
#[test]
fn tiny_latency_run_reports_spikes_and_accuracy() {
    let tmp = Scratch::new("latency");
    let run = tmp.join("run");
    let out = nerve(
        tmp.path(),
        &[
            "train",
            "--task",
            "latency",
            "--dataset",
            "embedded",
            "--train-limit",
            "64",
            "--test-limit",
            "32",
            "--epochs",
            "1",
            "--steps",
            "40",
            "--batch-size",
            "32",
            "--noso-arch",
            "4C5-MP2-FC10",
            "--optimizer",
            "sgd:0",
            "--lr",
            "5e-3",
            "--out",
            run.to_str().unwrap(),
        ],
    );
    let stdout = expect_success(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("test accuracy: ") && last.ends_with('%'),
        "{stdout}"
    );
    let accuracy: f64 = last["test accuracy: ".len()..last.len() - 1]
        .parse()
        .unwrap();
    assert!((0.0..=100.0).contains(&accuracy));
    let spikes = lines[lines.len() - 2];
    assert!(spikes.starts_with("spikes per inference: "), "{stdout}");
    let count: f64 = spikes["spikes per inference: ".len()..].parse().unwrap();
    assert!(count > 0.0, "a NOSONet inference needs spikes: {stdout}");
    for file in [
        "checkpoint.safetensors",
        "checkpoint.optim.bpk",
        "history.json",
    ] {
        assert!(!read(&run.join(file)).is_empty(), "{file} is missing");
    }
    for png in ["curves.png", "raster.png"] {
        assert!(
            read(&run.join(png)).starts_with(b"\x89PNG\r\n\x1a\n"),
            "{png}"
        );
    }
    let csv = String::from_utf8(read(&run.join("history.csv"))).unwrap();
    assert!(
        csv.lines().next().unwrap().contains("spikes_conv1"),
        "{csv}"
    );
}

/// The latency task's options show in the help, and a classify `--arch` is refused with a
/// pointer to `--noso-arch`.
#[test]
fn latency_options_parse_and_misuse_is_an_error() {
    let tmp = Scratch::new("latency-help");
    let help = expect_success(&nerve(tmp.path(), &["train", "--help"]));
    for option in ["--noso-tau-m", "--noso-threshold", "--noso-arch", "--task"] {
        assert!(help.contains(option), "help lacks {option}");
    }
    let out = nerve(
        tmp.path(),
        &[
            "train",
            "--task",
            "latency",
            "--arch",
            "8C5-FC10",
            "--dataset",
            "embedded",
        ],
    );
    expect_error(&out, &["--arch", "--noso-arch"]);
    let out = nerve(
        tmp.path(),
        &[
            "train",
            "--task",
            "latency",
            "--dataset",
            "embedded",
            "--noso-tau-s",
            "300",
            "--train-limit",
            "8",
            "--out",
            tmp.join("bad").to_str().unwrap(),
        ],
    );
    expect_error(&out, &["tau_s"]);
}
