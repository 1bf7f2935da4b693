//! Recipes (`recipes/*.toml`, `--config FILE`): every recipe names only real options of the
//! command it configures, a tiny version of each classification recipe (and of its further rows)
//! trains, the command line overrides the file, and bad recipes fail with one line naming the
//! file and the key. Also population coding (`--population N`) end to end.

use std::path::{Path, PathBuf};

use nerve::train::recipe::Recipe;

mod common;
use common::*;

/// The recipe files of the repository.
fn recipe_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the recipes directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The recipe's `task` option (`classify` when it sets none).
fn task(recipe: &Recipe) -> String {
    recipe
        .options
        .iter()
        .find(|(k, _)| k == "task")
        .and_then(|(_, v)| v.clone())
        .unwrap_or_else(|| "classify".into())
}

/// Options that shrink a classification recipe to a few seconds on the embedded MNIST subset
/// (the same image shape as MNIST and Fashion-MNIST).
const TINY: [&str; 10] = [
    "--dataset",
    "embedded",
    "--epochs",
    "1",
    "--train-limit",
    "64",
    "--test-limit",
    "32",
    "--batch-size",
    "32",
];

#[test]
fn every_recipe_is_complete_and_sets_only_real_options() {
    let files = recipe_files();
    assert!(files.len() >= 3, "expected the recipes, found {files:?}");
    let tmp = Scratch::new("recipes-help");
    for file in &files {
        let recipe = Recipe::load(file).unwrap_or_else(|e| panic!("{e}"));
        let stem = file.file_stem().unwrap().to_string_lossy();
        assert_eq!(recipe.meta.name, stem, "{}: [recipe] name", file.display());
        // A source without a published figure says so in its goal (regression tutorial II).
        assert!(
            !recipe.meta.source.is_empty()
                && (recipe.meta.figure.is_some() || recipe.meta.goal.contains("none published")),
            "{}: [recipe] needs the source and its figure",
            file.display()
        );
        assert!(
            ["test accuracy", "relative error"].contains(&recipe.meta.metric.as_str()),
            "{}: metric '{}'",
            file.display(),
            recipe.meta.metric
        );
        // Keys are checked against `nerve train`'s options before clap prints the help.
        let out = nerve(
            tmp.path(),
            &[
                "train".as_ref(),
                "--config".as_ref(),
                file.as_os_str(),
                "--help".as_ref(),
            ],
        );
        expect_success(&out);
    }
}

#[test]
fn a_tiny_version_of_each_classification_recipe_trains() {
    let tmp = Scratch::new("recipes-tiny");
    for file in recipe_files() {
        let recipe = Recipe::load(&file).unwrap_or_else(|e| panic!("{e}"));
        if task(&recipe) != "classify" {
            continue; // regression and latency recipes have tests of their own
        }
        let rows =
            std::iter::once(Vec::new()).chain(recipe.meta.rows.iter().map(|r| r.args.clone()));
        for (i, extra) in rows.enumerate() {
            let out_dir = tmp.join(&format!("{}-{i}", recipe.meta.name));
            let mut args: Vec<std::ffi::OsString> = vec![
                "train".into(),
                "--config".into(),
                file.clone().into_os_string(),
            ];
            args.extend(extra.iter().map(Into::into));
            args.extend(TINY.iter().map(Into::into));
            args.extend(["--out".into(), out_dir.clone().into_os_string()]);
            let stdout = expect_success(&nerve(tmp.path(), &args));
            assert!(
                stdout.contains("recipe: ") && stdout.contains("test accuracy: "),
                "{}:\n{stdout}",
                file.display()
            );
            // The command line won: one epoch, not the recipe's.
            let csv = String::from_utf8(read(&out_dir.join("history.csv"))).unwrap();
            assert_eq!(csv.lines().count(), 2, "{}: {csv}", file.display());
            assert!(read(&out_dir.join("class_counts.png")).starts_with(b"\x89PNG"));
        }
    }
}

#[test]
fn bad_recipes_fail_with_one_line_naming_the_file_and_key() {
    let tmp = Scratch::new("recipes-bad");
    let bad = tmp.join("bad.toml");
    write(&bad, b"epoch = 3\n");
    let out = nerve(tmp.path(), &["train", "--config", bad.to_str().unwrap()]);
    expect_error(&out, &["bad.toml", "unknown option 'epoch'"]);

    write(&bad, b"epochs = [3]\n");
    let out = nerve(tmp.path(), &["train", "--config", bad.to_str().unwrap()]);
    expect_error(&out, &["bad.toml", "'epochs'", "array"]);

    write(&bad, b"epochs = \n");
    let out = nerve(tmp.path(), &["train", "--config", bad.to_str().unwrap()]);
    expect_error(&out, &["bad.toml", "not valid TOML"]);

    write(&bad, b"[recipe]\nfigur = 1.0\n");
    let out = nerve(tmp.path(), &["train", "--config", bad.to_str().unwrap()]);
    expect_error(&out, &["bad.toml", "figur"]);

    let missing = tmp.join("missing.toml");
    let out = nerve(
        tmp.path(),
        &["train", "--config", missing.to_str().unwrap()],
    );
    expect_error(&out, &["missing.toml"]);
}

#[test]
fn population_coding_trains_scores_and_draws_populations() {
    let tmp = Scratch::new("population");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    let args = ["--arch", "FC20", "--population", "2"];
    let stdout = expect_success(&train(tmp.path(), &data, &run, &args));
    assert!(stdout.contains("test accuracy: "), "{stdout}");
    // 20 neurons would be drawn as 20 columns; populations make 10 readable ones.
    assert!(read(&run.join("class_counts.png")).starts_with(b"\x89PNG"));
    let eval = nerve(
        tmp.path(),
        &[
            "eval".as_ref(),
            "--checkpoint".as_ref(),
            run.join("checkpoint.safetensors").as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
    );
    let eval_out = expect_success(&eval);
    let accuracy = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("test accuracy: "))
            .map(str::to_string)
    };
    assert_eq!(
        accuracy(&eval_out),
        accuracy(&stdout),
        "eval scores as train did"
    );

    let out = train(
        tmp.path(),
        &data,
        &tmp.join("wrong"),
        &["--arch", "FC25", "--population", "2"],
    );
    expect_error(&out, &["population", "25 output neurons", "20"]);
    let out = train(
        tmp.path(),
        &data,
        &tmp.join("membrane"),
        &[
            "--arch",
            "FC20",
            "--population",
            "2",
            "--loss",
            "ce-max-membrane",
        ],
    );
    expect_error(&out, &["population", "ce-max-membrane"]);
}
