//! `nerve train --task regression`: each regression recipe's setup, shrunk to a few iterations,
//! runs end to end, prints its metric and writes `regression.png`; file inputs work and bad
//! ones fail with one `error:` line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

mod common;
use common::*;

fn recipe_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes")
        .join(name)
}

/// A recipe's top-level options as `nerve train` arguments (a minimal reader for the flat
/// `key = value` lines the recipes use: strings, numbers, `true` flags), with `overrides`
/// (`--option`, value) replacing the recipe's value or added.
fn recipe_args(name: &str, overrides: &[(&str, &str)]) -> Vec<OsString> {
    let text = std::fs::read_to_string(recipe_path(name)).expect("read the recipe");
    let mut args: Vec<OsString> = vec!["train".into()];
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        let value = value.split(" #").next().unwrap().trim();
        let key = format!("--{}", key.trim().replace('_', "-"));
        if overrides.iter().any(|(k, _)| *k == key) {
            continue;
        }
        match value {
            "true" => args.push(key.into()),
            "false" => {}
            v => {
                args.push(key.into());
                args.push(v.trim_matches('"').into());
            }
        }
    }
    for (k, v) in overrides {
        args.push(k.into());
        args.push(v.into());
    }
    args
}

fn png(path: &Path) -> bool {
    read(path).starts_with(b"\x89PNG\r\n\x1a\n")
}

#[test]
fn recipe_1_tiny_run_prints_relative_error_and_plots() {
    let tmp = Scratch::new("regression-1");
    let run = tmp.join("run");
    // A tiny network, a few iterations.
    let out = run.to_str().unwrap();
    let tiny = [
        ("--hidden", "8"),
        ("--steps", "12"),
        ("--epochs", "3"),
        ("--out", out),
    ];
    let args = recipe_args("regression-1.toml", &tiny);
    assert!(args.contains(&"--random-neurons".into()), "{args:?}");
    let stdout = expect_success(&nerve(tmp.path(), &args));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("relative error: "))
        .unwrap_or_else(|| panic!("no relative error line:\n{stdout}"));
    let value: f64 = line["relative error: ".len()..].parse().expect("a number");
    assert!(value.is_finite() && value >= 0.0, "{line}");
    assert!(
        stdout.contains("regression leaky-published in=1 hidden=8 out=1 T=12"),
        "{stdout}"
    );
    for file in ["regression.png", "curves.png"] {
        assert!(png(&run.join(file)), "{file} is not a PNG");
    }
    let csv = String::from_utf8(read(&run.join("history.csv"))).unwrap();
    assert_eq!(csv.lines().count(), 4, "header and 3 epochs:\n{csv}");
    assert!(
        csv.lines().next().unwrap().contains("relative_error"),
        "{csv}"
    );
    assert!(run.join("checkpoint.safetensors").exists());
}

#[test]
fn recipe_2_tiny_run_prints_accuracy_and_plots() {
    let tmp = Scratch::new("regression-2");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    let tiny = [
        ("--hidden", "8"),
        ("--steps", "3"),
        ("--epochs", "1"),
        ("--batch-size", "16"),
        ("--data", data.to_str().unwrap()),
        ("--out", run.to_str().unwrap()),
    ];
    let args = recipe_args("regression-2.toml", &tiny);
    assert!(args.contains(&"rleaky".into()), "{args:?}");
    let stdout = expect_success(&nerve(tmp.path(), &args));
    assert!(stdout.contains("test accuracy: "), "{stdout}");
    assert!(stdout.contains("loss mse-count:0.8:0.2"), "{stdout}");
    assert!(
        stdout.contains("regression rleaky in=784 hidden=8 out=10 T=3"),
        "{stdout}"
    );
    assert!(png(&run.join("regression.png")), "regression.png");
    assert!(png(&run.join("curves.png")), "curves.png");
}

#[test]
fn regression_from_csv_files_and_bad_files() {
    let tmp = Scratch::new("regression-files");
    let x = tmp.join("x.csv");
    let y = tmp.join("y.csv");
    let mut xs = String::from("step,sample,x\n");
    let mut ys = String::from("step,sample,y\n");
    for t in 0..8 {
        for s in 0..2 {
            let v = (t as f64 + 1.0) * (s as f64 + 1.0) / 10.0;
            xs.push_str(&format!("{t},{s},{v}\n"));
            ys.push_str(&format!("{t},{s},{}\n", v.sqrt()));
        }
    }
    write(&x, xs.as_bytes());
    write(&y, ys.as_bytes());
    let run = tmp.join("run");
    let out = nerve(
        tmp.path(),
        &[
            "train".as_ref(),
            "--task".as_ref(),
            "regression".as_ref(),
            "--inputs".as_ref(),
            x.as_os_str(),
            "--targets".as_ref(),
            y.as_os_str(),
            "--hidden".as_ref(),
            "8".as_ref(),
            "--epochs".as_ref(),
            "2".as_ref(),
            "--out".as_ref(),
            run.as_os_str(),
        ],
    );
    let stdout = expect_success(&out);
    assert!(stdout.contains("relative error: "), "{stdout}");
    assert!(stdout.contains("2 series of 8 steps"), "{stdout}");
    assert!(png(&run.join("regression.png")));

    write(&y, b"0,0,1\n0,0,2\n");
    let out = nerve(
        tmp.path(),
        &[
            "train".as_ref(),
            "--task".as_ref(),
            "regression".as_ref(),
            "--inputs".as_ref(),
            x.as_os_str(),
            "--targets".as_ref(),
            y.as_os_str(),
            "--out".as_ref(),
            tmp.join("run2").as_os_str(),
        ],
    );
    expect_error(&out, &["y.csv", "more than once"]);
}

#[test]
fn train_help_lists_the_regression_options() {
    let tmp = Scratch::new("regression-help");
    let stdout = expect_success(&nerve(tmp.path(), &["train", "--help"]));
    for option in [
        "--task",
        "--model",
        "--hidden",
        "--trajectory",
        "--targets",
        "--random-neurons",
    ] {
        assert!(stdout.contains(option), "help lacks {option}");
    }
}
