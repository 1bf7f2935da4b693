//! End-to-end tests of the `nerve` binary on a tiny IDX data set written by the test itself.
//!
//! Every failure must end the process with exit status 1 and exactly one line on stderr,
//! `error: ...`, naming the file, directory, architecture or value at fault; and a failed
//! run must leave the files of an earlier run byte-identical.

use std::ffi::OsStr;
use std::path::Path;

use nerve::data::idx::{encode_idx, IdxArray};

mod common;
use common::*;

#[test]
fn tiny_run_writes_checkpoint_history_and_plots_and_evaluates() {
    let tmp = Scratch::new("happy");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    let stdout = expect_success(&train(tmp.path(), &data, &run, &["--epochs", "1"]));
    for expected in [
        "epoch 1:",
        "test accuracy:",
        "spikes per inference:",
        "firing rate per layer",
    ] {
        assert!(
            stdout.contains(expected),
            "stdout lacks '{expected}':\n{stdout}"
        );
    }
    for file in [
        "checkpoint.safetensors",
        "checkpoint.optim.bpk",
        "history.csv",
        "history.json",
    ] {
        assert!(
            !read(&run.join(file)).is_empty(),
            "{file} is empty or missing"
        );
    }
    for png in ["curves.png", "raster.png"] {
        assert!(
            read(&run.join(png)).starts_with(b"\x89PNG\r\n\x1a\n"),
            "{png} is not a PNG"
        );
    }
    let csv = String::from_utf8(read(&run.join("history.csv"))).expect("UTF-8 CSV");
    assert_eq!(
        csv.lines().count(),
        2,
        "history.csv should hold a header and one epoch:\n{csv}"
    );

    let checkpoint = run.join("checkpoint.safetensors");
    let eval = nerve(
        tmp.path(),
        &[
            "eval".as_ref(),
            "--checkpoint".as_ref(),
            checkpoint.as_os_str(),
            "--dataset".as_ref(),
            "mnist".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--test-limit".as_ref(),
            "8".as_ref(),
        ],
    );
    let stdout = expect_success(&eval);
    assert!(stdout.contains("test accuracy:"), "{stdout}");
    assert!(stdout.contains("(8 samples)"), "{stdout}");
}

#[test]
fn truncated_idx_file_is_named() {
    let tmp = Scratch::new("truncated");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let images = data.join("train-images-idx3-ubyte");
    let bytes = read(&images);
    write(&images, &bytes[..bytes.len() / 2]);
    let out = train(tmp.path(), &data, &tmp.join("run"), &["--epochs", "1"]);
    expect_error(&out, &["train-images-idx3-ubyte", "truncated"]);
    assert!(
        !tmp.join("run").exists(),
        "a failed load must not create the run directory"
    );
}

#[test]
fn truncated_gzip_idx_file_is_named() {
    let tmp = Scratch::new("truncated-gz");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let raw = data.join("t10k-images-idx3-ubyte");
    let array = nerve::data::idx::read_idx(&raw).expect("the tiny test images parse");
    std::fs::remove_file(&raw).unwrap();
    let gz = encode_idx(&array, true).unwrap();
    write(
        &data.join("t10k-images-idx3-ubyte.gz"),
        &gz[..gz.len() * 2 / 3],
    );
    let out = train(tmp.path(), &data, &tmp.join("run"), &["--epochs", "1"]);
    expect_error(&out, &["t10k-images-idx3-ubyte.gz", "truncated"]);
}

#[test]
fn corrupt_idx_file_is_named() {
    let tmp = Scratch::new("corrupt");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    // Random bytes of the right length, as a damaged download would leave.
    let images = data.join("t10k-images-idx3-ubyte");
    write(&images, &noise(read(&images).len(), 99));
    let out = train(tmp.path(), &data, &tmp.join("run"), &["--epochs", "1"]);
    expect_error(&out, &["t10k-images-idx3-ubyte", "IDX"]);
}

#[test]
fn labels_that_do_not_match_the_images_are_named() {
    let tmp = Scratch::new("labels");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let labels = IdxArray::new(vec![IMAGES - 1], vec![0; IMAGES - 1]).unwrap();
    write(
        &data.join("train-labels-idx1-ubyte"),
        &encode_idx(&labels, false).unwrap(),
    );
    let out = train(tmp.path(), &data, &tmp.join("run"), &["--epochs", "1"]);
    expect_error(
        &out,
        &[
            "train-labels-idx1-ubyte",
            &format!("label count {}", IMAGES - 1),
        ],
    );
}

#[test]
fn missing_data_directory_is_named() {
    let tmp = Scratch::new("missing");
    let absent = tmp.join("no-such-data");
    let out = train(tmp.path(), &absent, &tmp.join("run"), &["--epochs", "1"]);
    expect_error(&out, &[&absent.display().to_string(), "no such directory"]);

    let out = nerve(
        tmp.path(),
        &["train", "--dataset", "mnist", "--data", "/nonexistent"],
    );
    expect_error(&out, &["/nonexistent"]);
}

#[test]
fn data_directory_without_idx_files_names_what_is_missing() {
    let tmp = Scratch::new("empty");
    let data = tmp.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let out = train(tmp.path(), &data, &tmp.join("run"), &["--epochs", "1"]);
    expect_error(
        &out,
        &[
            &data.display().to_string(),
            "missing train-images-idx3-ubyte",
        ],
    );
}

#[test]
fn resuming_with_another_architecture_is_refused_and_keeps_the_checkpoint() {
    let tmp = Scratch::new("arch");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    expect_success(&train(tmp.path(), &data, &run, &["--epochs", "1"]));
    let before = snapshot(&run);
    assert!(before.contains_key("checkpoint.safetensors"));

    let out = train(
        tmp.path(),
        &data,
        &run,
        &["--epochs", "2", "--resume", "--arch", "8C5-MP2-FC10"],
    );
    expect_error(&out, &["4C5-MP2-FC10", "8C5-MP2-FC10"]);
    assert_unchanged(&run, &before);
}

#[test]
fn training_into_an_existing_run_without_resume_is_refused() {
    let tmp = Scratch::new("no-resume");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    expect_success(&train(tmp.path(), &data, &run, &["--epochs", "1"]));
    let before = snapshot(&run);
    let out = train(tmp.path(), &data, &run, &["--epochs", "1"]);
    expect_error(&out, &["--resume"]);
    assert_unchanged(&run, &before);
}

#[test]
fn non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let tmp = Scratch::new("nan");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    // Epoch 1 at a sane learning rate; the cross entropy of the peak membrane (rather than of
    // 0/1 spikes) lets huge weights overflow the loss.
    let loss = ["--loss", "ce-max-membrane"];
    expect_success(&train(
        tmp.path(),
        &data,
        &run,
        &[loss[0], loss[1], "--epochs", "1"],
    ));
    let before = snapshot(&run);

    // Adam's first step moves every weight by about the learning rate: 1e38 overflows float32
    // in the next forward pass.
    let out = train(
        tmp.path(),
        &data,
        &run,
        &[
            loss[0], loss[1], "--epochs", "2", "--resume", "--lr", "1e38",
        ],
    );
    expect_error(&out, &["non-finite loss", "epoch 2"]);
    assert_unchanged(&run, &before);
}

#[test]
fn eval_refuses_a_file_that_is_not_a_checkpoint() {
    let tmp = Scratch::new("eval");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    for name in ["train-labels-idx1-ubyte", "train-images-idx3-ubyte"] {
        let file = data.join(name);
        let out = nerve(
            tmp.path(),
            &[
                "eval".as_ref(),
                "--checkpoint".as_ref(),
                file.as_os_str(),
                "--dataset".as_ref(),
                "mnist".as_ref(),
                "--data".as_ref(),
                data.as_os_str(),
            ],
        );
        expect_error(&out, &[&file.display().to_string(), "safetensors"]);
    }

    let absent = tmp.join("absent.safetensors");
    let out = nerve(
        tmp.path(),
        &["eval".as_ref(), "--checkpoint".as_ref(), absent.as_os_str()],
    );
    expect_error(&out, &[&absent.display().to_string()]);
}

#[test]
fn eval_refuses_a_truncated_checkpoint() {
    let tmp = Scratch::new("eval-truncated");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    expect_success(&train(tmp.path(), &data, &run, &["--epochs", "1"]));
    let full = read(&run.join("checkpoint.safetensors"));
    for keep in [100, full.len() / 2, full.len() - 1] {
        let cut = tmp.join(&format!("cut-{keep}.safetensors"));
        write(&cut, &full[..keep]);
        let out = nerve(
            tmp.path(),
            &[
                "eval".as_ref(),
                "--checkpoint".as_ref(),
                cut.as_os_str(),
                "--dataset".as_ref(),
                "mnist".as_ref(),
                "--data".as_ref(),
                data.as_os_str(),
            ],
        );
        expect_error(&out, &[&cut.display().to_string()]);
    }
}

#[test]
fn unknown_device_is_named() {
    let tmp = Scratch::new("device");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let out = train(
        tmp.path(),
        &data,
        &tmp.join("run"),
        &["--epochs", "1", "--device", "no-such-device"],
    );
    expect_error(&out, &["no-such-device", "flex"]);
    assert!(!tmp.join("run").exists());
}

#[test]
fn reference_check_passes_every_snntorch_case() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(file) = here
        .ancestors()
        .map(|a| a.join("shared/reference/snntorch-reference.json"))
        .find(|p| p.is_file())
    else {
        eprintln!(
            "skipping: no shared/reference/snntorch-reference.json above {}",
            here.display()
        );
        return;
    };
    let out = nerve(here, &[OsStr::new("reference-check"), file.as_os_str()]);
    let stdout = expect_success(&out);
    assert!(stdout.contains("53 passed, 0 failed"), "{stdout}");
    assert_eq!(stdout.matches("\npass ").count(), 53, "{stdout}");
}

#[test]
fn reference_check_fails_on_a_case_outside_tolerance() {
    let Some(file) = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/reference/snntorch-reference.json"))
        .find(|p| p.is_file())
    else {
        eprintln!("skipping: no shared/reference/snntorch-reference.json found");
        return;
    };
    // Perturb one recorded membrane value of the first case by far more than the tolerance.
    let mut json: serde_json::Value = serde_json::from_slice(&read(&file)).unwrap();
    let v = &mut json["cases"][0]["outputs"]["mem"]["data"][3];
    *v = serde_json::json!(v.as_f64().unwrap() + 0.5);
    let dir = Scratch::new("reference_check_fails");
    let bad = dir.join("bad.json");
    write(&bad, &serde_json::to_vec(&json).unwrap());
    let out = nerve(
        dir.path(),
        &[OsStr::new("reference-check"), bad.as_os_str()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("52 passed, 1 failed"), "{stdout}");
}
