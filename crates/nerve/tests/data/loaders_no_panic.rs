//! The seeded no-panic loop (`common/fuzz.rs`) over the files users hand to Nerve besides event
//! recordings: IDX data sets, Nerve checkpoints, Hugging Face checkpoint directories and
//! tokenizers, seeded with valid files made by the library's own writers.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use nerve::data::{encode_idx, parse_idx, IdxArray};
use nerve::layers::TimeLinear;
use nerve::models::mmfree::{load_dir, save_dir, MmFreeConfig, MmFreeWeights, SaveDtype};
use nerve::models::spikegpt::SpikeGptConfig;
use nerve::store::checkpoint::{self, CheckpointMeta};
use nerve::text::Tokenizer;

use crate::common::fuzz::no_panic_loop;

fn device() -> Device {
    nerve::device::parse("flex").unwrap()
}

#[test]
fn idx_mutations_never_panic() {
    let arrays = [
        IdxArray::new(vec![2, 3, 2], (0..12).collect()).unwrap(),
        IdxArray::new(vec![5], vec![7, 0, 255, 3, 9]).unwrap(),
    ];
    let seeds: Vec<Vec<u8>> = arrays
        .iter()
        .flat_map(|a| [false, true].map(|gz| encode_idx(a, gz).unwrap()))
        .collect();
    let (ok, err) = no_panic_loop(0x1D8, &seeds, 3000, &["fuzz.idx"], |b| {
        parse_idx(b, Path::new("fuzz.idx")).map(drop)
    });
    assert!(ok >= seeds.len() && err > 1000, "ok {ok}, err {err}");
}

#[test]
fn checkpoint_mutations_never_panic() {
    const ARCH: &str = "test-FC3x2";
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.safetensors");
    let meta = CheckpointMeta {
        arch: ARCH.into(),
        epoch: 2,
        step: 40,
        config: serde_json::json!({"lr": 0.01, "layers": [3, 2]}),
        seed: 7,
    };
    checkpoint::save_model(&seed_path, &TimeLinear::new(3, 2, &device()), &meta).unwrap();
    let seeds = vec![std::fs::read(&seed_path).unwrap()];
    let path = dir.path().join("fuzz.safetensors");
    let (ok, err) = no_panic_loop(0xC4EC, &seeds, 400, &["fuzz.safetensors"], |b| {
        std::fs::write(&path, b).unwrap();
        let meta = checkpoint::load_meta(&path);
        let loaded = checkpoint::load(&path, TimeLinear::new(3, 2, &device()), ARCH);
        // The two readers share the header parse; they must agree on what they both read.
        if let Ok((_, m)) = &loaded {
            assert_eq!(meta.as_ref().ok(), Some(m));
        }
        meta?;
        loaded.map(drop)
    });
    assert!(ok >= 1 && err > 100, "ok {ok}, err {err}");
}

/// Writes a model directory from a fuzz input: `config.json`, a NUL, `model.safetensors`.
fn write_model_dir(dir: &Path, bytes: &[u8]) {
    let (config, weights) = match bytes.iter().position(|&b| b == 0) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[][..]),
    };
    std::fs::write(dir.join("config.json"), config).unwrap();
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
}

#[test]
fn hugging_face_directory_mutations_never_panic() {
    let mut cfg = MmFreeConfig::new(5, 2, 1);
    cfg.intermediate_size = Some(2);
    let weights = MmFreeWeights::random(cfg, 3).unwrap();
    let made = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    for dtype in [SaveDtype::F32, SaveDtype::Bf16] {
        save_dir(&weights, made.path(), dtype, None).unwrap();
        let mut b = std::fs::read(made.path().join("config.json")).unwrap();
        b.push(0);
        b.extend(std::fs::read(made.path().join("model.safetensors")).unwrap());
        seeds.push(b);
    }
    SpikeGptConfig::new(5, 4, 1)
        .save(made.path().join("config.json"))
        .unwrap();
    seeds.push(std::fs::read(made.path().join("config.json")).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let files = ["config.json", "model.safetensors"];
    let (ok, err) = no_panic_loop(0x4F, &seeds, 600, &files, |b| {
        write_model_dir(dir.path(), b);
        let config = dir.path().join("config.json");
        for result in [
            MmFreeConfig::load(&config).map(drop),
            SpikeGptConfig::load(&config).map(drop),
        ] {
            if let Err(e) = result {
                assert!(e.to_string().contains("config.json"), "{e}");
            }
        }
        load_dir(dir.path()).map(drop)
    });
    assert!(ok >= 2 && err > 300, "ok {ok}, err {err}");
}

#[test]
fn tokenizer_mutations_never_panic() {
    let made = tempfile::tempdir().unwrap();
    let chars = Tokenizer::chars_from_text("hello world").unwrap();
    let chars_file: PathBuf = chars.save_dir(made.path()).unwrap();
    let word_level = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,
        "decoder":null,"model":{"type":"WordLevel","vocab":{"[UNK]":0,"to":1,"be":2,"or":3,
        "not":4},"unk_token":"[UNK]"}}"#;
    let hf_file = made.path().join("tokenizer.json");
    std::fs::write(&hf_file, word_level).unwrap();
    // Re-saved by the library, so the seed is the writer's own form.
    let hf = Tokenizer::from_hf_file(&hf_file).unwrap();
    std::fs::remove_file(&hf_file).unwrap();
    let hf_file = hf.save_dir(made.path()).unwrap();

    for (name, seed, rng_seed) in [
        ("chars.json", chars_file, 0xC4A5),
        ("tokenizer.json", hf_file, 0x70C),
    ] {
        let seeds = vec![std::fs::read(seed).unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let (ok, err) = no_panic_loop(rng_seed, &seeds, 500, &[name], |b| {
            std::fs::write(&path, b).unwrap();
            let tok = Tokenizer::load_dir(dir.path())?;
            if let Ok(ids) = tok.encode("to be or not to be, hello world") {
                let _ = tok.decode(&ids);
            }
            Ok(())
        });
        assert!(ok >= 1 && err > 100, "{name}: ok {ok}, err {err}");
    }
}

#[test]
fn recipe_mutations_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("the recipes directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read(p).expect("a recipe"))
        .collect();
    seeds.push(b"epochs = 3\nlearn_beta = true\n[recipe]\nfigure = 1.0\n".to_vec());
    let (ok, err) = no_panic_loop(0x7EC1, &seeds, 3000, &["fuzz.toml"], |b| {
        let text =
            std::str::from_utf8(b).map_err(|_| nerve::Error::format("fuzz.toml", "not UTF-8"))?;
        let recipe = nerve::train::recipe::Recipe::parse(text, "fuzz.toml")?;
        assert_eq!(recipe.to_args::<&str>(&[]).len(), recipe.options.len());
        Ok(())
    });
    assert!(ok >= seeds.len() && err > 300, "ok {ok}, err {err}");
}

#[test]
fn pth_mutations_never_panic() {
    use nerve::store::pth::{parse_pth, pickle};
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lm/files/tiny_state_dict.pth");
    let archive = std::fs::read(file).expect("the checked-in .pth file");
    // The pickle program alone, so that mutations reach the interpreter and not only the zip
    // reader's checksums.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive.clone())).unwrap();
    let mut program = Vec::new();
    std::io::Read::read_to_end(
        &mut zip.by_name("tiny_state_dict/data.pkl").unwrap(),
        &mut program,
    )
    .unwrap();
    assert_eq!(program[..2], [0x80, 0x02], "the pickle starts with PROTO 2");
    let (ok, err) = no_panic_loop(
        0x97A,
        std::slice::from_ref(&archive),
        1500,
        &["fuzz.pth"],
        |b| {
            let dict = parse_pth(b, Path::new("fuzz.pth"))?;
            for (name, t) in dict.iter() {
                assert_eq!(t.values.len(), t.shape.iter().product::<usize>(), "{name}");
            }
            Ok(())
        },
    );
    assert!(ok >= 1 && err > 500, "archive: ok {ok}, err {err}");
    let (ok, err) = no_panic_loop(0x91C, &[program], 3000, &["pickle"], |b| {
        pickle::unpickle_with(b, |_| ()).map_err(|e| nerve::Error::format("pickle", e))
    });
    assert!(ok >= 1 && err > 1000, "pickle: ok {ok}, err {err}");
}

#[test]
fn completion_request_mutations_never_panic() {
    use nerve::serve::request::{parse_completion, RequestLimits};
    let limits = RequestLimits {
        max_tokens: 1000,
        default_max_tokens: 16,
    };
    let seeds: Vec<Vec<u8>> = [
        r#"{"prompt": "ROMEO:", "max_tokens": 40, "temperature": 0.8, "top_p": 0.9, "top_k": 40, "seed": 1, "stop": ["\n\n", "END"], "stream": true}"#,
        r#"{"prompt": [1, 2, 3], "max_tokens": 5, "n": 1, "echo": false, "logprobs": null}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let (ok, err) = no_panic_loop(
        0x5E7,
        &seeds,
        3000,
        &["request"],
        |b| match parse_completion(b, &limits) {
            Ok(req) => {
                assert!((1..=1000).contains(&req.max_tokens));
                Ok(())
            }
            Err(e) => {
                assert!(!e.message.contains('\n'), "{}", e.message);
                Err(nerve::Error::invalid("request", e.message))
            }
        },
    );
    assert!(ok >= 2 && err > 1000, "ok {ok}, err {err}");
}
