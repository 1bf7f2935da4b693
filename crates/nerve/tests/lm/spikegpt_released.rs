//! A SpikeGPT model directory as the authors' code releases one (`files/tiny_spikegpt/`, written
//! by `files/make_spikegpt_fixture.py` with the released `src/model.py` run on the CPU): the
//! `.pth` loads with its architecture inferred from the shapes, the UTF-16 character vocabulary
//! reads, and the logits and loss match those of the released training model.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use nerve::models::language_model::LanguageModel;
use nerve::models::spikegpt::lm_loss;
use nerve::models::spikegpt::released;
use nerve::text::Tokenizer;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lm/files/tiny_spikegpt")
}

struct Reference {
    tokens: Vec<i64>,
    targets: Vec<i64>,
    loss: f64,
    logits: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixture().join("reference.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ints = |k: &str| -> Vec<i64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    Reference {
        tokens: ints("tokens"),
        targets: ints("targets"),
        loss: v["loss"].as_f64().unwrap(),
        logits: v["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect(),
    }
}

fn row(ids: &[i64], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), device)
}

#[test]
fn released_model_matches_the_training_model_logits_and_loss() {
    let device = Device::flex();
    let r = reference();
    let loaded = released::load_dir(&fixture(), &device).unwrap();
    assert_eq!(loaded.ctx_len, Some(64));
    let config = loaded.model.config();
    assert_eq!(
        (
            config.vocab_size,
            config.n_embd,
            config.n_layer,
            config.ffn_mult
        ),
        (16, 8, 2, 4)
    );
    let logits = loaded.model.forward(row(&r.tokens, &device));
    assert_eq!(logits.dims(), [1, r.tokens.len(), 16]);
    let ours: Vec<f32> = logits.clone().into_data().iter::<f32>().collect();
    let theirs: Vec<f32> = r.logits.concat();
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest logit difference {worst}");
    let loss: f32 = lm_loss(logits, row(&r.targets, &device), 0.0).into_scalar();
    assert!(
        (loss as f64 - r.loss).abs() < 1e-5,
        "loss {loss} vs the training model's {}",
        r.loss
    );
}

#[test]
fn a_released_directory_loads_as_a_language_model_with_its_tokenizer() {
    let device = Device::flex();
    let r = reference();
    let model = LanguageModel::load_dir(&fixture(), &device).unwrap();
    assert_eq!(model.vocab_size(), 16);
    let tokenizer = Tokenizer::load_dir(fixture()).unwrap();
    let text = std::fs::read_to_string(fixture().join("text.txt")).unwrap();
    let ids: Vec<i64> = tokenizer
        .encode(&text)
        .unwrap()
        .iter()
        .map(|&i| i as i64)
        .collect();
    assert_eq!(ids[..ids.len() - 1], r.tokens[..]);
    assert_eq!(ids[1..], r.targets[..]);
    assert_eq!(
        tokenizer.decode(&tokenizer.encode(&text).unwrap()).unwrap(),
        text
    );
}

/// The fixture copied into a temporary directory, `edit` applied.
fn edited(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    edit(dir.path());
    dir
}

fn load_err(dir: &Path) -> String {
    released::load_dir(dir, &Device::flex())
        .unwrap_err()
        .to_string()
}

#[test]
fn shapes_decide_and_a_disagreeing_config_is_named() {
    // Without config.json the shapes alone describe the model.
    let dir = edited(|d| std::fs::remove_file(d.join("config.json")).unwrap());
    let loaded = released::load_dir(dir.path(), &Device::flex()).unwrap();
    assert_eq!((loaded.model.config().n_layer, loaded.ctx_len), (2, None));

    let dir = edited(|d| {
        let cfg =
            r#"{"n_layer": 3, "n_embd": 8, "ctx_len": 64, "vocab_size": 16, "model_type": "RWKV"}"#;
        std::fs::write(d.join("config.json"), cfg).unwrap();
    });
    let msg = load_err(dir.path());
    assert!(
        msg.contains("config.json: n_layer is 3 but the weights"),
        "{msg}"
    );

    let dir = edited(|d| {
        let cfg = r#"{"n_layer": 2, "model_type": "RWKV-ffnPre"}"#;
        std::fs::write(d.join("config.json"), cfg).unwrap();
    });
    assert!(released::is_released_dir(dir.path()));
    let msg = load_err(dir.path());
    assert!(
        msg.contains("model_type 'RWKV-ffnPre' is not supported"),
        "{msg}"
    );

    let dir = edited(|d| {
        std::fs::copy(d.join("tiny-spikegpt.pth"), d.join("other.pth"))
            .map(drop)
            .unwrap()
    });
    assert!(load_err(dir.path()).contains("2 .pth files"));

    let dir =
        edited(|d| std::fs::write(d.join("tiny-spikegpt.pth"), b"PK\x03\x04garbage").unwrap());
    let msg = load_err(dir.path());
    assert!(
        msg.contains("tiny-spikegpt.pth") && !msg.contains('\n'),
        "{msg}"
    );
}

#[test]
fn released_character_vocabularies_read_in_their_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vocab_book.json");
    // UTF-8 without a byte-order mark is accepted too.
    std::fs::write(&path, r#"{"0": "\n", "1": " ", "2": "a", "3": "é"}"#).unwrap();
    let tok = Tokenizer::load_dir(dir.path()).unwrap();
    assert_eq!(tok.encode("a é\n").unwrap(), [2, 1, 3, 0]);
    for (bad, want) in [
        (r#"{"0": "a", "2": "b"}"#, "not an id below 2"),
        (r#"{"0": "ab"}"#, "not one character"),
        (r#"{"0": "a", "1": "a"}"#, "map two ids to one character"),
        ("[1, 2]", "not a SpikeGPT character vocabulary"),
    ] {
        std::fs::write(&path, bad).unwrap();
        let msg = Tokenizer::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains(want) && msg.contains("vocab_book.json"),
            "{bad}: {msg}"
        );
    }
}
