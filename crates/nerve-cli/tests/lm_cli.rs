//! End-to-end tests of `nerve lm train | generate | eval` on a tiny text written by the test.
//! Every failure must be one `error: ...` line naming what is at fault.

use std::path::Path;
use std::process::Output;

mod common;
use common::*;

/// A few lines of verse, long enough for windows of 16 characters and a held-out tail.
const TEXT: &str = "Shall I compare thee to a summer's day?\n\
Thou art more lovely and more temperate:\n\
Rough winds do shake the darling buds of May,\n\
And summer's lease hath all too short a date;\n\
Sometime too hot the eye of heaven shines,\n\
And often is his gold complexion dimm'd;\n";

/// Options that keep a language-model run to about a second even in a debug build.
const TINY: [&str; 18] = [
    "--d-model",
    "16",
    "--layers",
    "1",
    "--seq-len",
    "16",
    "--batch-size",
    "4",
    "--steps",
    "6",
    "--warmup",
    "2",
    "--eval-every",
    "3",
    "--eval-tokens",
    "64",
    "--sample-tokens",
    "20",
];

fn lm_train(cwd: &Path, arch: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "lm", "train", "--arch", arch, "--text", "text.txt", "--out", out,
    ];
    args.extend(TINY);
    args.extend(extra);
    nerve(cwd, &args)
}

fn setup(test: &str) -> Scratch {
    let s = Scratch::new(test);
    write(&s.join("text.txt"), TEXT.as_bytes());
    s
}

fn bits_per_char(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("bits per character:"))
        .unwrap_or_else(|| panic!("no 'bits per character' line in\n{stdout}"));
    line.rsplit(' ').next().unwrap().parse().expect("a number")
}

#[test]
fn mmfree_trains_generates_with_every_engine_evaluates_and_resumes() {
    let s = setup("lm-mmfree");
    let out = expect_success(&lm_train(s.path(), "mmfree", "m", &[]));
    assert!(
        out.contains("held-out:") && out.contains("bits/char"),
        "{out}"
    );
    assert!(out.contains("--- sample"), "{out}");
    for f in [
        "config.json",
        "model.safetensors",
        "model.optim.bpk",
        "chars.json",
        "history.json",
        "curves.png",
    ] {
        assert!(s.join("m").join(f).exists(), "{f} missing");
    }
    let config = String::from_utf8(read(&s.join("m/config.json"))).unwrap();
    assert!(config.contains("\"model_type\": \"hgrn_bit\""), "{config}");

    let mut outputs = Vec::new();
    for engine in ["packed", "reference", "burn"] {
        let out = expect_success(&nerve(
            s.path(),
            &[
                "lm",
                "generate",
                "--model",
                "m",
                "--prompt",
                "Thou ",
                "--max-tokens",
                "12",
                "--temperature",
                "0",
                "--engine",
                engine,
            ],
        ));
        assert!(out.starts_with("Thou "), "{out}");
        assert_eq!(
            out.trim_end_matches('\n').chars().count(),
            5 + 12,
            "{engine}: {out:?}"
        );
        outputs.push(out);
    }
    // Greedy decoding through three implementations of the same ternary model.
    assert_eq!(
        outputs[0], outputs[1],
        "packed and reference engines disagree"
    );
    assert_eq!(
        outputs[1], outputs[2],
        "reference engine and Burn model disagree"
    );

    let eval = expect_success(&nerve(
        s.path(),
        &[
            "lm", "eval", "--model", "m", "--text", "text.txt", "--window", "16",
        ],
    ));
    let bpc = bits_per_char(&eval);
    assert!(bpc > 0.5 && bpc < 8.0, "{eval}");
    assert!(eval.contains("nats/token"), "{eval}");

    let before = read(&s.join("m/history.json"));
    let out = expect_success(&lm_train(
        s.path(),
        "mmfree",
        "m",
        &["--resume", "--steps", "9"],
    ));
    assert!(out.contains("steps 6..9"), "{out}");
    let history: serde_json::Value =
        serde_json::from_slice(&read(&s.join("m/history.json"))).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 9);
    assert_ne!(before, read(&s.join("m/history.json")));
}

#[test]
fn spikegpt_trains_generates_and_evaluates() {
    let s = setup("lm-spikegpt");
    let out = expect_success(&lm_train(s.path(), "spikegpt", "g", &[]));
    assert!(
        out.contains("held-out:") && out.contains("--- sample"),
        "{out}"
    );
    let config = String::from_utf8(read(&s.join("g/config.json"))).unwrap();
    assert!(config.contains("spikegpt"), "{config}");
    let out = expect_success(&nerve(
        s.path(),
        &[
            "lm",
            "generate",
            "--model",
            "g",
            "--prompt",
            "And ",
            "--max-tokens",
            "10",
            "--seed",
            "3",
        ],
    ));
    assert!(out.starts_with("And "), "{out}");
    let eval = expect_success(&nerve(
        s.path(),
        &[
            "lm",
            "eval",
            "--model",
            "g",
            "--text",
            "text.txt",
            "--held-out-only",
        ],
    ));
    assert!(bits_per_char(&eval) > 0.5, "{eval}");
}

#[test]
fn lm_errors_name_what_is_wrong_and_keep_earlier_files() {
    let s = setup("lm-errors");
    expect_error(
        &nerve(s.path(), &["lm", "train", "--text", "missing.txt"]),
        &["missing.txt"],
    );
    expect_error(
        &lm_train(s.path(), "transformer", "x", &[]),
        &["arch", "transformer"],
    );
    expect_error(&lm_train(s.path(), "mmfree", "x", &["--lr", "0"]), &["lr"]);
    write(&s.join("bad.txt"), &[0x66, 0xff, 0xfe]);
    expect_error(
        &nerve(
            s.path(),
            &["lm", "train", "--text", "bad.txt", "--out", "x"],
        ),
        &["bad.txt", "UTF-8"],
    );

    expect_success(&lm_train(s.path(), "mmfree", "m", &[]));
    let before = snapshot(&s.join("m"));
    expect_error(
        &lm_train(s.path(), "mmfree", "m", &[]),
        &["already holds a model", "--resume"],
    );
    expect_error(
        &lm_train(s.path(), "spikegpt", "m", &["--resume"]),
        &["resume", "MmFree"],
    );
    assert_unchanged(&s.join("m"), &before);

    // A character the model never saw, a model directory without config, a SentencePiece-only one.
    expect_error(
        &nerve(
            s.path(),
            &["lm", "generate", "--model", "m", "--prompt", "#"],
        ),
        &["'#'", "vocabulary"],
    );
    std::fs::create_dir_all(s.join("empty")).unwrap();
    expect_error(
        &nerve(s.path(), &["lm", "generate", "--model", "empty"]),
        &["empty"],
    );
    std::fs::create_dir_all(s.join("sp")).unwrap();
    std::fs::copy(s.join("m/config.json"), s.join("sp/config.json")).unwrap();
    write(&s.join("sp/tokenizer.model"), b"\x0a\x01x");
    expect_error(
        &nerve(s.path(), &["lm", "generate", "--model", "sp"]),
        &["tokenizer.model", "tokenizer.json"],
    );
    expect_error(
        &nerve(
            s.path(),
            &["lm", "generate", "--model", "m", "--top-p", "2"],
        ),
        &["top-p"],
    );
}

/// A Hugging Face WordLevel `tokenizer.json` over the words and punctuation of `TEXT`.
fn word_tokenizer_json() -> String {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut kind = None;
    for c in TEXT.chars().chain(std::iter::once(' ')) {
        let k = if c.is_whitespace() {
            None
        } else {
            Some(c.is_alphanumeric() || c == '_')
        };
        if k != kind && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        if k.is_some() {
            cur.push(c);
        }
        kind = k;
    }
    words.sort();
    words.dedup();
    let vocab: Vec<String> = std::iter::once("[UNK]".to_string())
        .chain(words)
        .enumerate()
        .map(|(i, w)| format!("{}: {i}", serde_json::to_string(&w).unwrap()))
        .collect();
    format!(
        r#"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
        "pre_tokenizer":{{"type":"Whitespace"}},"post_processor":null,"decoder":null,
        "model":{{"type":"WordLevel","vocab":{{{}}},"unk_token":"[UNK]"}}}}"#,
        vocab.join(",")
    )
}

#[test]
fn a_hugging_face_tokenizer_trains_generates_and_is_kept_with_the_model() {
    let s = setup("lm-hf-tokenizer");
    write(&s.join("tok.json"), word_tokenizer_json().as_bytes());
    let out = expect_success(&lm_train(
        s.path(),
        "mmfree",
        "w",
        &["--tokenizer", "tok.json", "--seq-len", "8"],
    ));
    assert!(out.contains("Hugging Face tokenizer"), "{out}");
    assert!(s.join("w/tokenizer.json").exists());
    assert!(!s.join("w/chars.json").exists());
    let out = expect_success(&nerve(
        s.path(),
        &[
            "lm",
            "generate",
            "--model",
            "w",
            "--prompt",
            "summer",
            "--max-tokens",
            "5",
        ],
    ));
    assert!(out.starts_with("summer"), "{out}");
    let eval = expect_success(&nerve(
        s.path(),
        &[
            "lm", "eval", "--model", "w", "--text", "text.txt", "--window", "8",
        ],
    ));
    // Several characters per word token: bits per character is far below bits per token.
    let bpc = bits_per_char(&eval);
    let nats: f64 = eval
        .lines()
        .find_map(|l| l.strip_prefix("cross-entropy: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("a cross-entropy line");
    assert!(bpc < nats / std::f64::consts::LN_2 / 2.0, "{eval}");
}

/// The cross-entropy `nerve lm eval` prints.
fn cross_entropy(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cross-entropy:"))
        .unwrap_or_else(|| panic!("no 'cross-entropy' line in\n{stdout}"));
    line.split(' ').nth(1).unwrap().parse().expect("a number")
}

#[test]
fn a_released_spikegpt_directory_scores_at_the_training_models_loss() {
    // Written by the released model.py (crates/nerve/tests/lm/files/make_spikegpt_fixture.py).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nerve/tests/lm/files/tiny_spikegpt");
    let reference: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("reference.json"))).unwrap();
    let want = reference["loss"].as_f64().unwrap();
    let s = Scratch::new("lm-released");
    let model = dir.to_str().unwrap();
    let text = dir.join("text.txt");
    for extra in [&[][..], &["--disjoint"][..]] {
        let mut args = vec![
            "lm",
            "eval",
            "--model",
            model,
            "--text",
            text.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = expect_success(&nerve(s.path(), &args));
        // The text is shorter than the config's ctx_len (64): one window, every token scored.
        assert!(
            out.contains("41 tokens scored") && out.contains("windows of 64"),
            "{out}"
        );
        assert!((cross_entropy(&out) - want).abs() < 1e-3, "{out} vs {want}");
    }
    // With windows of 10 the two ways of scoring see different contexts, so they differ.
    let mut args = vec![
        "lm",
        "eval",
        "--model",
        model,
        "--text",
        text.to_str().unwrap(),
    ];
    args.extend(["--window", "10"]);
    let overlapping = cross_entropy(&expect_success(&nerve(s.path(), &args)));
    args.push("--disjoint");
    let out = expect_success(&nerve(s.path(), &args));
    assert!(
        out.contains("41 tokens scored in disjoint windows of 10"),
        "{out}"
    );
    let disjoint = cross_entropy(&out);
    assert!(
        disjoint.is_finite() && (disjoint - overlapping).abs() > 1e-6,
        "{disjoint} {overlapping}"
    );
    let out = expect_success(&nerve(
        s.path(),
        &[
            "lm",
            "generate",
            "--model",
            model,
            "--prompt",
            "to be",
            "--max-tokens",
            "8",
            "--seed",
            "1",
        ],
    ));
    assert!(out.starts_with("to be"), "{out}");
    // A tokenizer with more ids than the model is an error, not a crash.
    let dir2 = s.join("released-bpe");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::copy(
        dir.join("tiny-spikegpt.pth"),
        dir2.join("tiny-spikegpt.pth"),
    )
    .unwrap();
    std::fs::write(
        dir2.join("20B_tokenizer.json"),
        r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
        "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"[UNK]":0,"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,
        "h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17},"unk_token":"[UNK]"}}"#,
    )
    .unwrap();
    write(&s.join("words.txt"), b"a q b");
    expect_error(
        &nerve(
            s.path(),
            &[
                "lm",
                "eval",
                "--model",
                dir2.to_str().unwrap(),
                "--text",
                "words.txt",
            ],
        ),
        &["token id", "17 is outside the model's vocabulary of 16"],
    );
}

/// Waits up to `secs` for `child` to exit.
fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed().as_secs() >= secs {
            let _ = child.kill();
            panic!("the server did not exit within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_trained_model_is_served_load_tested_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let s = setup("lm-serve");
    expect_success(&lm_train(s.path(), "mmfree", "m", &[]));
    let mut server = Command::new(env!("CARGO_BIN_EXE_nerve"))
        .args([
            "lm",
            "serve",
            "--model",
            "m",
            "--port",
            "0",
            "--max-batch",
            "4",
        ])
        .current_dir(s.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let out = nerve(
        s.path(),
        &[
            "lm",
            "load-test",
            "--addr",
            &addr,
            "--clients",
            "8",
            "--seconds",
            "1",
            "--prompt",
            "Shall",
            "--max-tokens",
            "8",
            "--plot",
            "load.png",
        ],
    );
    let report = expect_success(&out);
    assert!(read(&s.join("load.png")).starts_with(b"\x89PNG"));
    assert!(report.contains(" 0 errors"), "{report}");
    assert!(report.contains("| 8 |"), "{report}");
    // A prompt character the model has never seen is the request's fault, named.
    let out = nerve(
        s.path(),
        &[
            "lm",
            "load-test",
            "--addr",
            &addr,
            "--clients",
            "1",
            "--seconds",
            "0.2",
            "--prompt",
            "#",
        ],
    );
    expect_error(&out, &["requests failed", "prompt", "'#'"]);
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(&mut server, 30);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");

    expect_error(
        &nerve(
            s.path(),
            &["lm", "serve", "--model", "m", "--max-batch", "0"],
        ),
        &["max-batch"],
    );
    expect_error(
        &nerve(s.path(), &["lm", "serve", "--model", "missing"]),
        &["missing"],
    );
}
