//! Targets for the other files users hand to Nerve: IDX data sets, Nerve's safetensors
//! checkpoints, Hugging Face checkpoint directories and tokenizers.
//!
//! The checkpoint, model-directory and tokenizer readers take paths, not bytes, so each input
//! is written to a per-process scratch directory under `/dev/shm` (memory, not disk) first.

use std::path::{Path, PathBuf};

use burn::store::ModuleSnapshot;
use burn::tensor::Device;
use nerve::data::{encode_idx, parse_idx, IdxArray};
use nerve::layers::TimeLinear;
use nerve::models::mmfree::{
    load_dir, save_dir, tensor_specs, MmFreeConfig, MmFreeWeights, SaveDtype,
};
use nerve::models::spikegpt::SpikeGptConfig;
use nerve::store::checkpoint::{self, CheckpointMeta};
use nerve::text::tokenizer::{CHARS_FILE, HF_FILE};
use nerve::text::Tokenizer;

use crate::check_err;

/// The files of a Hugging Face checkpoint directory.
const CONFIG_FILE: &str = "config.json";
const MODEL_FILE: &str = "model.safetensors";
const INDEX_FILE: &str = "model.safetensors.index.json";
/// Architecture string of the checkpoint target's model.
const ARCH: &str = "fuzz-FC3x2";
/// The one shard name the sharded seeds' index points to.
const SHARD_FILE: &str = "model-00001-of-00001.safetensors";
/// Text every loaded tokenizer must encode and decode without panicking.
const SAMPLE_TEXT: &str = "to be or not to be, hello world";

/// A scratch directory `/dev/shm/nerve-fuzz-<pid>/<name>`, emptied (best effort).
fn scratch(name: &str) -> PathBuf {
    let base = Path::new("/dev/shm");
    let root = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = root
        .join(format!("nerve-fuzz-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fuzz scratch directory");
    dir
}

/// Writes `bytes` to `dir/name`.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a fuzz input file");
    path
}

/// The CPU device every model in these targets lives on.
fn device() -> Device {
    nerve::device::parse("flex").expect("the flex backend is built in")
}

/// An integer program (`.nq`): an accepted file encodes back to the same bytes, and a small
/// one runs through the engine and its dense twin to the same result.
pub fn nq(data: &[u8]) {
    use nerve::hw::integer::{self, IntInput};
    match integer::decode(data) {
        Ok(program) => {
            let again = integer::encode(&program).expect("re-encode an accepted program");
            assert_eq!(integer::decode(&again).expect("re-read"), program);
            let size: usize = program.input.iter().product();
            if size <= 4096 && program.steps <= 16 {
                let x: Vec<u8> = (0..size).map(|i| (i * 37 % 256) as u8).collect();
                let a = integer::run(&program, IntInput::Static(&x));
                let b = integer::run_reference(&program, IntInput::Static(&x));
                assert_eq!(a.ok(), b.ok(), "engine and reference disagree");
            }
        }
        Err(msg) => assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}"),
    }
}

/// Small integer programs of each layer kind, as `nerve quantize` writes them.
pub fn nq_seeds() -> Vec<(String, Vec<u8>)> {
    use nerve::hw::integer::{self, IntProgram};
    use nerve::models::SpikingNetConfig;
    use nerve::quant::WeightQuantConfig;
    let device = device();
    [
        ("conv", "3C3-MP2-FC4", Some("4")),
        ("bn", "2C3-AP2-BN2D-FC3", Some("ternary")),
        ("fc", "FC5-FC3", None),
    ]
    .into_iter()
    .map(|(name, arch, weights)| {
        let config = SpikingNetConfig {
            arch: arch.into(),
            input: [1, 6, 6],
            steps: 3,
            weight_quant: weights.map(|w| WeightQuantConfig::parse(w).expect("a spec")),
            ..SpikingNetConfig::tutorial_conv()
        };
        let net = config.init(&device).expect("a small network");
        let program = IntProgram::from_net(&net, &config, 8).expect("convertible");
        (
            name.to_string(),
            integer::encode(&program).expect("encodable"),
        )
    })
    .collect()
}

/// IDX, raw or gzip: an accepted array is exactly what the writer produces for it (raw input
/// byte for byte; gzip input decodes to the same array after writing and reading).
pub fn idx(data: &[u8]) {
    let origin = Path::new("fuzz.idx");
    match parse_idx(data, origin) {
        Ok(array) => {
            let raw = encode_idx(&array, false).expect("re-encode IDX");
            if data.starts_with(&nerve::data::idx::GZIP_MAGIC) {
                let gz = encode_idx(&array, true).expect("re-encode gzip IDX");
                assert_eq!(parse_idx(&gz, origin).expect("re-read gzip IDX"), array);
            } else {
                assert_eq!(raw, data);
            }
        }
        Err(e) => check_err(&e, "fuzz.idx"),
    }
}

/// A Nerve checkpoint (safetensors with `nerve.*` metadata) loaded into a 3→2 linear layer:
/// `load_meta` and `load` agree, and an accepted checkpoint saved again loads to the same
/// metadata and weights.
pub fn checkpoint(data: &[u8]) {
    let dir = scratch("checkpoint");
    let path = put(&dir, "fuzz.safetensors", data);
    let meta = checkpoint::load_meta(&path);
    let loaded = checkpoint::load(&path, TimeLinear::new(3, 2, &device()), ARCH);
    match (&meta, loaded) {
        (_, Ok((model, loaded_meta))) => {
            assert_eq!(
                meta.as_ref().ok(),
                Some(&loaded_meta),
                "load_meta disagrees"
            );
            let again = dir.join("again.safetensors");
            checkpoint::save_model(&again, &model, &loaded_meta).expect("re-save checkpoint");
            assert_eq!(
                checkpoint::load_meta(&again).expect("re-read metadata"),
                loaded_meta
            );
            let (back, _) = checkpoint::load(&again, TimeLinear::new(3, 2, &device()), ARCH)
                .expect("re-load checkpoint");
            assert_eq!(weights(&back), weights(&model));
        }
        (_, Err(e)) => check_err(&e, "fuzz.safetensors"),
    }
    if let Err(e) = meta {
        check_err(&e, "fuzz.safetensors");
    }
}

/// Every parameter of `model` as `(name, shape, raw bytes)`, for exact comparison.
fn weights(model: &TimeLinear) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let bytes = t.to_bytes().expect("parameter bytes").to_vec();
            (t.name, t.shape.to_vec(), bytes)
        })
        .collect()
}

/// A Hugging Face model directory. The first byte picks the layout (even: `config.json` and
/// `model.safetensors`; odd: `config.json`, `model.safetensors.index.json` and one shard);
/// the parts follow, separated by the first NUL bytes (JSON never holds a raw NUL).
///
/// Checks: the `config.json` readers of both models and the checkpoint loader return or name
/// the file at fault; an accepted config saved again describes the same tensors; accepted
/// weights saved again (F32, exact) load to the same values.
pub fn hf_checkpoint(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let dir = scratch("hf");
    let (config, rest) = split_nul(rest);
    put(&dir, CONFIG_FILE, config);
    if pick % 2 == 0 {
        put(&dir, MODEL_FILE, rest);
    } else {
        let (index, shard) = split_nul(rest);
        put(&dir, INDEX_FILE, index);
        put(&dir, SHARD_FILE, shard);
    }
    check_configs(&dir);
    match load_dir(&dir) {
        Ok(weights) => {
            let again = scratch("hf-again");
            save_dir(&weights, &again, SaveDtype::F32, None).expect("re-save checkpoint");
            let back = load_dir(&again).expect("re-load checkpoint");
            assert_same_weights(&weights, &back);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                [CONFIG_FILE, MODEL_FILE, INDEX_FILE, SHARD_FILE]
                    .iter()
                    .any(|f| msg.contains(f)),
                "error names no file of the checkpoint: {msg}"
            );
        }
    }
}

/// `config.json` through both models' readers, with a save/load round trip when accepted.
fn check_configs(dir: &Path) {
    let path = dir.join(CONFIG_FILE);
    match MmFreeConfig::load(&path) {
        Ok(cfg) => {
            let again = scratch("hf-config");
            let copy = again.join(CONFIG_FILE);
            cfg.save(&copy).expect("re-save config");
            let back = MmFreeConfig::load(&copy).expect("re-read config");
            assert_eq!(shape(&back), shape(&cfg));
        }
        Err(e) => check_err(&e, CONFIG_FILE),
    }
    match SpikeGptConfig::load(&path) {
        Ok(cfg) => {
            let again = scratch("hf-config");
            let copy = again.join(CONFIG_FILE);
            cfg.save(&copy).expect("re-save config");
            let back = SpikeGptConfig::load(&copy).expect("re-read config");
            assert_eq!(
                (back.vocab_size, back.n_embd, back.n_layer, back.ffn_mult),
                (cfg.vocab_size, cfg.n_embd, cfg.n_layer, cfg.ffn_mult)
            );
        }
        Err(e) => check_err(&e, CONFIG_FILE),
    }
}

/// What fixes an HGRNBit model's tensors (the list itself may be too long to build).
fn shape(cfg: &MmFreeConfig) -> (usize, usize, usize, usize, bool) {
    (
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.num_hidden_layers,
        cfg.intermediate(),
        cfg.use_lower_bound,
    )
}

/// Same tensors, same shapes, bit-identical values (NaN payloads included).
fn assert_same_weights(a: &MmFreeWeights, b: &MmFreeWeights) {
    for spec in tensor_specs(&a.config) {
        let (x, y) = (a.get(&spec.name).unwrap(), b.get(&spec.name).unwrap());
        assert_eq!(x.shape, y.shape, "{}", spec.name);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x.data), bits(&y.data), "{}", spec.name);
    }
}

/// The bytes before the first NUL and those after it (all and nothing without one).
fn split_nul(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == 0) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

/// A model directory's tokenizer: the first byte picks the file (even: `tokenizer.json`,
/// odd: `chars.json`), the rest is its content. An accepted tokenizer encodes and decodes
/// without panicking and, saved again, loads to the same vocabulary and encoding.
pub fn tokenizer(data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let dir = scratch("tokenizer");
    let name = if pick % 2 == 0 { HF_FILE } else { CHARS_FILE };
    put(&dir, name, content);
    match Tokenizer::load_dir(&dir) {
        Ok(tok) => {
            let encoded = tok.encode(SAMPLE_TEXT);
            if let Ok(ids) = &encoded {
                let _ = tok.decode(ids);
            }
            let n = tok.vocab_size().min(16) as u32;
            let _ = tok.decode(&(0..n).collect::<Vec<_>>());
            let again = scratch("tokenizer-again");
            tok.save_dir(&again).expect("re-save tokenizer");
            let back = Tokenizer::load_dir(&again).expect("re-load tokenizer");
            assert_eq!(back.vocab_size(), tok.vocab_size());
            assert_eq!(
                back.encode(SAMPLE_TEXT).ok(),
                encoded.ok(),
                "encoding changed"
            );
        }
        Err(e) => check_err(&e, name),
    }
}

/// Seed IDX files: a few arrays, raw and gzip-compressed.
pub fn idx_seeds() -> Vec<(String, Vec<u8>)> {
    let arrays = [
        IdxArray::new(vec![2, 3, 2], (0..12).collect()).expect("seed array"),
        IdxArray::new(vec![5], vec![7, 0, 255, 3, 9]).expect("seed array"),
        IdxArray::new(vec![0, 28, 28], vec![]).expect("seed array"),
    ];
    let mut out = Vec::new();
    for (i, a) in arrays.iter().enumerate() {
        for gzip in [false, true] {
            let bytes = encode_idx(a, gzip).expect("seed IDX");
            out.push((format!("idx{i}-{}", if gzip { "gz" } else { "raw" }), bytes));
        }
    }
    out
}

/// A seed checkpoint of the target's 3→2 layer, as `save_model` writes it.
pub fn checkpoint_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = scratch("checkpoint-seed");
    let path = dir.join("seed.safetensors");
    let meta = CheckpointMeta {
        arch: ARCH.into(),
        epoch: 3,
        step: 120,
        config: serde_json::json!({"lr": 0.01, "layers": [3, 2]}),
        seed: 42,
    };
    let model = TimeLinear::new(3, 2, &device());
    checkpoint::save_model(&path, &model, &meta).expect("seed checkpoint");
    vec![(
        "checkpoint".into(),
        std::fs::read(&path).expect("read seed"),
    )]
}

/// Seed model directories: a tiny MatMul-free LM saved single-file (F32, BF16) and sharded,
/// plus a SpikeGPT `config.json` with no usable weights.
pub fn hf_seeds() -> Vec<(String, Vec<u8>)> {
    let mut cfg = MmFreeConfig::new(5, 2, 1);
    cfg.intermediate_size = Some(2);
    let weights = MmFreeWeights::random(cfg, 7).expect("seed weights");
    let mut out = Vec::new();
    for (name, dtype, shard) in [
        ("f32", SaveDtype::F32, None),
        ("bf16", SaveDtype::Bf16, None),
        ("sharded", SaveDtype::Bf16, Some(1usize << 30)),
    ] {
        let dir = scratch("hf-seed");
        save_dir(&weights, &dir, dtype, shard).expect("seed checkpoint");
        let mut bytes = vec![u8::from(shard.is_some())];
        bytes.extend(std::fs::read(dir.join(CONFIG_FILE)).expect("seed config"));
        bytes.push(0);
        if shard.is_some() {
            let index = serde_json::json!({
                "weight_map": tensor_specs(&weights.config)
                    .iter()
                    .map(|s| (s.name.clone(), SHARD_FILE.into()))
                    .collect::<serde_json::Map<String, serde_json::Value>>(),
            });
            bytes.extend(index.to_string().into_bytes());
            bytes.push(0);
        }
        bytes.extend(std::fs::read(dir.join(MODEL_FILE)).expect("seed weights"));
        out.push((format!("mmfree-{name}"), bytes));
    }
    let dir = scratch("hf-seed");
    SpikeGptConfig::new(5, 4, 1)
        .save(dir.join(CONFIG_FILE))
        .expect("seed config");
    let mut bytes = vec![0];
    bytes.extend(std::fs::read(dir.join(CONFIG_FILE)).expect("seed config"));
    out.push(("spikegpt-config".into(), bytes));
    out
}

/// Seed tokenizers: a character vocabulary and two Hugging Face `tokenizer.json` files
/// (word level and BPE), the latter written by the library after loading.
pub fn tokenizer_seeds() -> Vec<(String, Vec<u8>)> {
    let word_level = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,
        "decoder":null,"model":{"type":"WordLevel","vocab":{"[UNK]":0,"to":1,"be":2,"or":3,
        "not":4},"unk_token":"[UNK]"}}"#;
    let bpe = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,
        "trim_offsets":true,"use_regex":true},"post_processor":null,
        "decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,
        "use_regex":true},"model":{"type":"BPE","dropout":null,"unk_token":null,
        "continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,
        "byte_fallback":false,"vocab":{"t":0,"o":1,"b":2,"e":3,"to":4,"be":5},
        "merges":["t o","b e"]}}"#;
    let mut out = Vec::new();
    let chars = Tokenizer::chars_from_text("hello world").expect("seed tokenizer");
    for (name, tok) in [
        ("chars", Ok(chars)),
        ("wordlevel", load_hf_text(word_level)),
        ("bpe", load_hf_text(bpe)),
    ] {
        let Ok(tok) = tok else { continue };
        let dir = scratch("tokenizer-seed");
        let path = tok.save_dir(&dir).expect("seed tokenizer");
        let mut bytes = vec![u8::from(path.ends_with(CHARS_FILE))];
        bytes.extend(std::fs::read(&path).expect("read seed"));
        out.push((name.into(), bytes));
    }
    out
}

/// Loads a `tokenizer.json` given as text, through a scratch file.
fn load_hf_text(json: &str) -> nerve::Result<Tokenizer> {
    let dir = scratch("tokenizer-text");
    Tokenizer::from_hf_file(put(&dir, HF_FILE, json.as_bytes()))
}

/// An OpenSpike case file (`openspike-case-v1`): accepted cases written back read as the same
/// cases and replay without a panic; a refusal is one line naming the file.
pub fn openspike_case(data: &[u8]) {
    use nerve::hw::openspike::{check_cases, encode_cases, parse_cases};
    let path = Path::new("fuzz.json");
    match parse_cases(data, path) {
        Ok(cases) => {
            let again = parse_cases(&encode_cases(&cases), path).expect("re-read written cases");
            assert_eq!(again, cases);
            check_cases(&cases);
        }
        Err(e) => {
            check_err(&e, "fuzz.json");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}

/// Small case files recorded by the simulator: a two-layer chain and a four-layer one.
pub fn openspike_case_seeds() -> Vec<(String, Vec<u8>)> {
    use nerve::hw::openspike::{encode_cases, Layer, Network, OpenSpikeCase};
    [("chain", vec![6, 4, 3]), ("deep", vec![3, 5, 2, 4, 2])]
        .into_iter()
        .map(|(name, sizes)| {
            let layers: Vec<Layer> = sizes
                .windows(2)
                .map(|w| {
                    let beta = (0..w[1]).map(|j| (j % 9) as u8).collect();
                    Layer::from_fn(w[0], beta, |j, i| (i + j) % 3 != 0).expect("a small layer")
                })
                .collect();
            let network = Network::new(layers).expect("a chain");
            let mut init = network.rest_state();
            for (k, u) in init.u.iter_mut().flatten().enumerate() {
                *u = (k * 61 % 256) as u8;
            }
            let inputs = (0..4)
                .map(|t| (0..sizes[0]).map(|i| (i + t) % 2 == 0).collect())
                .collect();
            let case = OpenSpikeCase::record(name, network, init, inputs).expect("recordable");
            (name.to_string(), encode_cases(&[case]))
        })
        .collect()
}

/// A NIR graph (HDF5): an accepted file encodes back to a graph equal to it, and its shapes
/// are inferred (or refused) without a panic; errors name the file on one line.
pub fn nir(data: &[u8]) {
    use nerve::hw::nir::{file, run::output_shapes};
    let origin = Path::new("fuzz.nir");
    match file::decode(data, origin) {
        Ok(graph) => {
            let again = file::encode(&graph).expect("re-encode an accepted graph");
            assert_eq!(file::decode(&again, origin).expect("re-read"), graph);
            if let Err(e) = output_shapes(&graph) {
                assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
        Err(e) => {
            check_err(&e, "fuzz.nir");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}

/// NIR graphs as `nerve nir export` writes them: fully connected and convolutional.
pub fn nir_seeds() -> Vec<(String, Vec<u8>)> {
    use nerve::hw::nir::{export_net, file};
    use nerve::models::SpikingNetConfig;
    let device = device();
    [
        ("fc", "FC5-FC3"),
        ("conv", "3C3-LIF-MP2-FC4"),
        ("avg", "2C3-AP2-FC3"),
    ]
    .into_iter()
    .map(|(name, arch)| {
        let config = SpikingNetConfig {
            arch: arch.into(),
            input: [1, 6, 6],
            steps: 3,
            ..SpikingNetConfig::tutorial_conv()
        };
        let net = config.init(&device).expect("a small network");
        let graph = export_net(&net).expect("exportable");
        (name.to_string(), file::encode(&graph).expect("encodable"))
    })
    .collect()
}

/// Recipe files (`nerve train --config`): any text parses to a recipe or a one-line error naming
/// the file; an accepted recipe's arguments name only its own keys.
pub fn recipe(data: &[u8]) {
    use nerve::train::recipe::{option_name, Recipe};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Recipe::parse(text, "fuzz.toml") {
        Ok(recipe) => {
            let args = recipe.to_args::<&str>(&[]);
            assert_eq!(args.len(), recipe.options.len());
            for (arg, (key, value)) in args.iter().zip(&recipe.options) {
                let expected = match value {
                    Some(v) => format!("--{}={v}", option_name(key)),
                    None => format!("--{}", option_name(key)),
                };
                assert_eq!(arg, &expected);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("fuzz.toml: ") && !msg.contains('\n'),
                "{msg:?}"
            );
        }
    }
}

/// Seeds for [`recipe`]: the repository's recipes.
pub fn recipe_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).ok()?,
            ))
        })
        .collect();
    seeds.push((
        "minimal".into(),
        b"epochs = 3\nlearn_beta = true\n[recipe]\nfigure = 1.0\n".to_vec(),
    ));
    seeds
}
