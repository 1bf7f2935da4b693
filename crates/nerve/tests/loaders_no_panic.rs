//! The no-panic loop of `events.rs`, for the other files users hand to Nerve: IDX data sets,
//! Nerve checkpoints, Hugging Face checkpoint directories and tokenizers. Valid files made by
//! the library's own writers are truncated and have bytes overwritten by a seeded RNG; every
//! reader must return `Ok` or an error naming the file, never panic. (The cargo-fuzz targets
//! in `fuzz/` run the same checks without bounds.)

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use nerve::data::{encode_idx, parse_idx, IdxArray};
use nerve::layers::TimeLinear;
use nerve::models::mmfree::{load_dir, save_dir, MmFreeConfig, MmFreeWeights, SaveDtype};
use nerve::models::spikegpt::SpikeGptConfig;
use nerve::store::checkpoint::{self, CheckpointMeta};
use nerve::text::Tokenizer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A damaged copy of `seed`: cut at a random length (every other case), then up to four
/// bytes overwritten, inserted or deleted.
fn mutate(rng: &mut StdRng, seed: &[u8], case: usize) -> Vec<u8> {
    let mut b = seed.to_vec();
    if case % 2 == 1 {
        b.truncate(rng.random_range(0..=b.len()));
    }
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..4) {
            0 => b.insert(i, rng.random()),
            1 => {
                b.remove(i);
            }
            // Digits and JSON punctuation reach deeper into the text formats than noise.
            2 => b[i] = b"0123456789{}[]\":,-e."[rng.random_range(0..20)],
            _ => b[i] = rng.random(),
        }
    }
    b
}

/// Runs `read` on `cases` mutations of the seeds (and the seeds themselves), requiring no
/// panic and errors that contain `names`' first match; returns `(accepted, refused)`.
fn no_panic_loop(
    rng_seed: u64,
    seeds: &[Vec<u8>],
    cases: usize,
    names: &[&str],
    mut read: impl FnMut(&[u8]) -> nerve::Result<()>,
) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let (mut ok, mut err) = (0, 0);
    for case in 0..cases + seeds.len() {
        let bytes = match case.checked_sub(cases) {
            Some(i) => seeds[i].clone(),
            None => mutate(&mut rng, &seeds[case % seeds.len()], case),
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&bytes))) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(
                    names.iter().any(|n| msg.contains(n)),
                    "case {case}: error names none of {names:?}: {msg}"
                );
                err += 1;
            }
            Err(_) => panic!(
                "reader panicked on case {case}: {:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    println!("{names:?}: {ok} accepted, {err} refused");
    (ok, err)
}

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
