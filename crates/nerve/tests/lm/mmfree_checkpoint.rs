//! The MatMul-free LM's Hugging Face checkpoint directories: round trips in every dtype,
//! shards, and errors that name the broken file or tensor.

use burn::tensor::Device;
use nerve::models::mmfree::hf_checkpoint::{load_dir, save_dir, SaveDtype, INDEX_FILE, MODEL_FILE};
use nerve::models::mmfree::model::MmFreeLm;
use safetensors::Dtype;

use crate::mmfree_fixtures::*;

#[test]
fn f32_directory_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(1);
    save_dir(&w, dir.path(), SaveDtype::F32, None).unwrap();
    assert!(dir.path().join(MODEL_FILE).is_file());
    let back = load_dir(dir.path()).unwrap();
    assert_eq!(back.tensors, w.tensors);
    assert_eq!(back.config.torch_dtype.as_deref(), Some("float32"));

    // Header metadata as transformers writes it.
    let bytes = std::fs::read(dir.path().join(MODEL_FILE)).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let md = meta.metadata().as_ref().unwrap();
    assert_eq!(md.get("format").map(String::as_str), Some("pt"));
}

#[test]
fn bf16_directory_loads_within_bf16_precision() {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(2);
    save_dir(&w, dir.path(), SaveDtype::Bf16, None).unwrap();
    let bytes = std::fs::read(dir.path().join(MODEL_FILE)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.iter().all(|(_, v)| v.dtype() == Dtype::BF16));

    let back = load_dir(dir.path()).unwrap();
    assert_eq!(back.config.torch_dtype.as_deref(), Some("bfloat16"));
    let mut exact = 0;
    for (name, t) in &w.tensors {
        let b = &back.tensors[name];
        assert_eq!(b.shape, t.shape);
        for (x, y) in t.data.iter().zip(&b.data) {
            // bf16 keeps 8 significant bits: relative rounding error at most 2^-8.
            assert!((x - y).abs() <= x.abs() / 256.0, "{name}: {x} vs {y}");
            exact += usize::from(x == y);
        }
    }
    // Random matrices are not bf16 values, so rounding really happened.
    assert!(exact < w.num_params());
}

#[test]
fn f16_tensors_load() {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(3);
    w.config.save(dir.path().join("config.json")).unwrap();
    let raw: Vec<_> = w
        .tensors
        .iter()
        .map(|(n, t)| {
            let bytes = t
                .data
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
                .collect();
            (n.clone(), Dtype::F16, t.shape.clone(), bytes)
        })
        .collect();
    write_raw(&dir.path().join(MODEL_FILE), &raw);
    let back = load_dir(dir.path()).unwrap();
    for (name, t) in &w.tensors {
        let want: Vec<f32> = t
            .data
            .iter()
            .map(|v| half::f16::from_f32(*v).to_f32())
            .collect();
        assert_eq!(back.tensors[name].data, want, "{name}");
    }
}

#[test]
fn sharded_directory_loads_and_a_later_single_save_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(4);
    // ~1.2 KB of bf16 per layer; 600-byte shards force several files.
    save_dir(&w, dir.path(), SaveDtype::Bf16, Some(600)).unwrap();
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap())
            .unwrap();
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(map.len(), w.tensors.len());
    let files: std::collections::BTreeSet<&str> =
        map.values().map(|v| v.as_str().unwrap()).collect();
    assert!(files.len() >= 3, "{files:?}");
    assert!(files
        .iter()
        .all(|f| f.starts_with("model-000") && f.ends_with(".safetensors")));
    assert!(!dir.path().join(MODEL_FILE).exists());

    let sharded = load_dir(dir.path()).unwrap();
    save_dir(&w, dir.path(), SaveDtype::Bf16, None).unwrap();
    // The old shards and index are gone; the single file holds the same values.
    assert!(!dir.path().join(INDEX_FILE).exists());
    for f in &files {
        assert!(!dir.path().join(f).exists(), "{f} left behind");
    }
    assert_eq!(load_dir(dir.path()).unwrap().tensors, sharded.tensors);
}

#[test]
fn a_trainer_checkpoint_is_a_valid_published_file() {
    // The trainer saves the Burn record under module paths straight into the directory.
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(6);
    let m = MmFreeLm::from_weights(&w, &Device::flex()).unwrap();
    let meta = nerve::store::checkpoint::CheckpointMeta {
        arch: "mmfree".into(),
        epoch: 1,
        step: 10,
        config: serde_json::json!({}),
        seed: 0,
    };
    nerve::store::checkpoint::save_model(dir.path().join(MODEL_FILE), &m, &meta).unwrap();
    w.config.save(dir.path().join("config.json")).unwrap();
    assert_eq!(load_dir(dir.path()).unwrap().tensors, w.tensors);
}

#[test]
fn missing_config_and_model_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = err_text(load_dir(dir.path()));
    assert!(err.contains("config.json"), "{err}");

    tiny_config().save(dir.path().join("config.json")).unwrap();
    let err = err_text(load_dir(dir.path()));
    assert!(
        err.contains(MODEL_FILE) && err.contains(INDEX_FILE),
        "{err}"
    );
}

#[test]
fn bad_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(7);
    w.config.save(dir.path().join("config.json")).unwrap();
    let path = dir.path().join(MODEL_FILE);
    let check = |raw: &[(String, Dtype, Vec<usize>, Vec<u8>)], needles: &[&str]| {
        write_raw(&path, raw);
        let err = err_text(load_dir(dir.path()));
        for n in needles {
            assert!(err.contains(n), "'{n}' not in: {err}");
        }
        assert!(err.contains(MODEL_FILE), "{err}");
    };

    let good = raw_f32(&w);
    let name = "model.layers.1.attn.f_proj.norm.weight";
    let without: Vec<_> = good.iter().filter(|t| t.0 != name).cloned().collect();
    check(&without, &[name, "missing"]);

    let mut misshapen = good.clone();
    let t = misshapen
        .iter_mut()
        .find(|t| t.0 == "model.lower_bounds")
        .unwrap();
    t.2 = vec![8, 3];
    check(&misshapen, &["model.lower_bounds", "[8, 3]", "[3, 8]"]);

    let mut int8 = good.clone();
    let t = int8
        .iter_mut()
        .find(|t| t.0 == "lm_head.norm.weight")
        .unwrap();
    t.1 = Dtype::I8;
    t.3 = vec![1; 8];
    check(&int8, &["lm_head.norm.weight", "I8", "BF16, F16 and F32"]);

    let mut f64s = good.clone();
    let t = f64s
        .iter_mut()
        .find(|t| t.0 == "model.norm.weight")
        .unwrap();
    t.1 = Dtype::F64;
    t.3 = vec![0; 64];
    check(&f64s, &["model.norm.weight", "F64"]);

    let mut extra = good.clone();
    extra.push((
        "model.layers.0.attn.rotary.inv_freq".into(),
        Dtype::F32,
        vec![1],
        vec![0; 4],
    ));
    check(&extra, &["model.layers.0.attn.rotary.inv_freq", "not part"]);

    // A file cut short, and one that is not safetensors at all.
    write_raw(&path, &good);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = err_text(load_dir(dir.path()));
    assert!(
        err.contains(MODEL_FILE) && err.contains("truncated or corrupt"),
        "{err}"
    );
    for junk in [&b"not a safetensors file at all"[..], b""] {
        std::fs::write(&path, junk).unwrap();
        let err = err_text(load_dir(dir.path()));
        assert!(
            err.contains(MODEL_FILE) && err.contains("truncated or corrupt"),
            "{err}"
        );
    }
}

#[test]
fn sharded_errors_name_the_shard_or_index() {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny_weights(8);
    save_dir(&w, dir.path(), SaveDtype::F32, Some(2000)).unwrap();
    let index_path = dir.path().join(INDEX_FILE);
    let text = std::fs::read_to_string(&index_path).unwrap();
    let index: serde_json::Value = serde_json::from_str(&text).unwrap();
    let shard = index["weight_map"]["lm_head.weight"]
        .as_str()
        .unwrap()
        .to_string();

    // A tensor the index does not list.
    let mut less = index.clone();
    less["weight_map"]
        .as_object_mut()
        .unwrap()
        .remove("model.norm.weight");
    std::fs::write(&index_path, less.to_string()).unwrap();
    let err = err_text(load_dir(dir.path()));
    assert!(
        err.contains("model.norm.weight") && err.contains(INDEX_FILE),
        "{err}"
    );

    // A tensor listed in a shard that does not hold it.
    let mut wrong = index.clone();
    let other = index["weight_map"]["model.embeddings.weight"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(other, shard);
    wrong["weight_map"]["lm_head.weight"] = other.clone().into();
    std::fs::write(&index_path, wrong.to_string()).unwrap();
    let err = err_text(load_dir(dir.path()));
    assert!(
        err.contains("lm_head.weight") && err.contains(&other),
        "{err}"
    );

    // A shard that is gone.
    std::fs::write(&index_path, &text).unwrap();
    std::fs::remove_file(dir.path().join(&shard)).unwrap();
    let err = err_text(load_dir(dir.path()));
    assert!(err.contains(&shard) && err.contains("missing"), "{err}");
}

#[test]
fn a_config_claiming_billions_of_layers_is_refused_before_listing_them() {
    let dir = tempfile::tempdir().unwrap();
    save_dir(&tiny_weights(1), dir.path(), SaveDtype::F32, None).unwrap();
    let path = dir.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["num_hidden_layers"] = 4_000_000_000u64.into();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let err = err_text(load_dir(dir.path()));
    assert!(
        err.contains("config.json") && err.contains("num_hidden_layers 4000000000"),
        "{err}"
    );
}
