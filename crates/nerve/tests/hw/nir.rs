//! NIR: the shared samples reproduce exactly, files round-trip, Nerve → NIR → Nerve is exact,
//! the Euler semantics hold on hand-computed cases, and bad graphs get one-line errors.

use std::path::Path;

use burn::tensor::{Device, Distribution, Tensor};
use nerve::hw::nir::graph::{Array, Conv, MetaValue, NirGraph, Node, NodeKind, Padding, Pool};
use nerve::hw::nir::{self, file, run::run};
use nerve::models::SpikingNetConfig;

use crate::common::fuzz::no_panic_loop;

fn node(kind: NodeKind) -> Node {
    Node::new(kind)
}

fn v(x: &[f32]) -> Array {
    Array::vector(x.to_vec())
}

/// A graph from `(name, kind)` pairs and edges given as `"a>b"`.
fn graph(nodes: Vec<(&str, NodeKind)>, edges: &[&str]) -> NirGraph {
    let mut g = NirGraph::default();
    for (name, kind) in nodes {
        g.nodes.insert(name.into(), node(kind));
    }
    g.edges = edges
        .iter()
        .map(|e| {
            let (a, b) = e.split_once('>').unwrap();
            (a.into(), b.into())
        })
        .collect();
    g
}

fn lif(n: usize, tau: f32, r: f32, thr: f32) -> NodeKind {
    NodeKind::LIF {
        tau: Array::filled(&[n], tau),
        r: Array::filled(&[n], r),
        v_leak: Array::filled(&[n], 0.0),
        v_threshold: Array::filled(&[n], thr),
        v_reset: Array::filled(&[n], 0.0),
    }
}

#[test]
fn shared_samples_reproduce_exactly() {
    let Some(shared) = crate::common::shared_dir() else {
        return;
    };
    let dir = shared.join("reference/nir");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 2,
        "expected the two public samples in {}",
        dir.display()
    );
    for case in cases {
        let g = nir::read(&case.join("graph.nir")).unwrap();
        let (dims, input) = nir::read_npy(&case.join("input.npy")).unwrap();
        let (edims, expected) = nir::read_npy(&case.join("expected.npy")).unwrap();
        let (_, mem) = nir::read_npy(&case.join("expected_mem.npy")).unwrap();
        let out = run(&g, &input, &dims, nir::DEFAULT_DT).unwrap();
        assert_eq!(out.values.len(), expected.len(), "{}", case.display());
        assert_eq!(edims[2], out.shape.iter().product::<usize>());
        let flips = out
            .values
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(flips, 0, "{}: {flips} spikes differ", case.display());
        let got = out.membrane.expect("the output layer is a neuron");
        let worst = got
            .iter()
            .zip(&mem)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{}: membrane off by {worst}", case.display());
        assert!(
            expected.contains(&1.0),
            "a sample without spikes tests little"
        );
    }
}

/// A graph using every node type, nested graphs and metadata of both kinds.
fn every_node_type() -> NirGraph {
    let conv = Conv {
        input_shape: Some(vec![6, 6]),
        weight: Array::new(vec![2, 1, 3, 3], (0..18).map(|i| i as f32 * 0.1).collect()),
        stride: vec![1, 1],
        padding: Padding::Explicit(vec![1, 1]),
        dilation: vec![1, 1],
        groups: 1,
        bias: v(&[0.1, -0.2]),
    };
    let conv1 = Conv {
        input_shape: None,
        weight: Array::new(vec![1, 1, 3], vec![0.5, 1.0, 0.5]),
        stride: vec![1],
        padding: Padding::Same,
        dilation: vec![1],
        groups: 1,
        bias: v(&[0.0]),
    };
    let pool = Pool {
        kernel_size: vec![2, 2],
        stride: vec![2, 2],
        padding: vec![0, 0],
    };
    let inner = graph(
        vec![
            ("input", NodeKind::Input { shape: vec![4] }),
            ("lif", lif(4, 2e-4, 2.0, 0.5)),
            (
                "w",
                NodeKind::Linear {
                    weight: Array::new(vec![4, 4], vec![0.1; 16]),
                },
            ),
            ("output", NodeKind::Output { shape: vec![4] }),
        ],
        &["input>lif", "lif>w", "w>lif", "lif>output"],
    );
    let mut g = graph(
        vec![
            (
                "input",
                NodeKind::Input {
                    shape: vec![1, 6, 6],
                },
            ),
            ("conv", NodeKind::Conv2d(conv)),
            ("sum", NodeKind::SumPool2d(pool.clone())),
            ("avg", NodeKind::AvgPool2d(pool)),
            (
                "flat",
                NodeKind::Flatten {
                    start_dim: 0,
                    end_dim: -1,
                    input_type: Some(vec![2, 3, 3]),
                },
            ),
            (
                "affine",
                NodeKind::Affine {
                    weight: Array::new(vec![4, 18], vec![0.05; 72]),
                    bias: v(&[0.0; 4]),
                },
            ),
            (
                "scale",
                NodeKind::Scale {
                    scale: v(&[1.0, 2.0, 3.0, 4.0]),
                },
            ),
            (
                "thr",
                NodeKind::Threshold {
                    threshold: v(&[0.5; 4]),
                },
            ),
            ("i", NodeKind::I { r: v(&[1.0; 4]) }),
            (
                "if",
                NodeKind::IF {
                    r: v(&[1.0; 4]),
                    v_threshold: v(&[1.0; 4]),
                    v_reset: v(&[0.0; 4]),
                },
            ),
            (
                "li",
                NodeKind::LI {
                    tau: v(&[1e-3; 4]),
                    r: v(&[1.0; 4]),
                    v_leak: v(&[0.0; 4]),
                },
            ),
            (
                "culi",
                NodeKind::CubaLI {
                    tau_mem: v(&[1e-3; 4]),
                    tau_syn: v(&[5e-4; 4]),
                    r: v(&[1.0; 4]),
                    v_leak: v(&[0.0; 4]),
                    w_in: v(&[1.0; 4]),
                },
            ),
            (
                "culif",
                NodeKind::CubaLIF {
                    tau_mem: v(&[1e-3; 4]),
                    tau_syn: v(&[5e-4; 4]),
                    r: v(&[1.0; 4]),
                    v_leak: v(&[0.0; 4]),
                    v_threshold: v(&[1.0; 4]),
                    v_reset: v(&[0.0; 4]),
                    w_in: v(&[1.0; 4]),
                },
            ),
            (
                "delay",
                NodeKind::Delay {
                    delay: v(&[1e-4, 2e-4, 0.0, 3e-4]),
                },
            ),
            ("conv1", NodeKind::Conv1d(conv1)),
            ("rnn", NodeKind::Graph(inner)),
            ("output", NodeKind::Output { shape: vec![4] }),
        ],
        &[],
    );
    g.edges = [
        "input>conv",
        "conv>sum",
        "conv>avg",
        "sum>flat",
        "avg>flat",
        "flat>affine",
        "affine>scale",
        "scale>thr",
        "thr>i",
        "thr>if",
        "thr>li",
        "thr>culi",
        "thr>culif",
        "i>delay",
        "if>delay",
        "li>delay",
        "culi>delay",
        "culif>delay",
        "delay>rnn",
        "rnn>output",
    ]
    .iter()
    .map(|e| {
        let (a, b) = e.split_once('>').unwrap();
        (a.to_string(), b.to_string())
    })
    .collect();
    g.metadata
        .insert("note".into(), MetaValue::Text("every node".into()));
    g.nodes
        .get_mut("affine")
        .unwrap()
        .metadata
        .insert("gain".into(), MetaValue::Numbers(vec![1.5, 2.5]));
    g
}

#[test]
fn every_node_type_survives_a_file_round_trip_and_runs() {
    let g = every_node_type();
    let bytes = file::encode(&g).unwrap();
    let back = file::decode(&bytes, Path::new("every.nir")).unwrap();
    assert_eq!(back, g);
    // The conv1d node is written and read but sits outside the path from the input: a graph
    // must reach every node from its Input, so running names it.
    let err = run(&back, &vec![0.5; 2 * 36], &[2, 1, 1, 6, 6], 1e-4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv1") && !err.contains('\n'), "{err}");
    let mut runnable = back.clone();
    runnable.nodes.remove("conv1");
    let out = run(&runnable, &vec![0.5; 5 * 2 * 36], &[5, 2, 1, 6, 6], 1e-4).unwrap();
    assert_eq!(out.node, "rnn.lif");
    assert_eq!(out.values.len(), 5 * 2 * 4);
    let shapes = nir::run::output_shapes(&runnable).unwrap();
    assert_eq!(shapes["conv"], vec![2, 6, 6]);
    assert_eq!(shapes["sum"], vec![2, 3, 3]);
    assert_eq!(shapes["flat"], vec![18]);
    assert_eq!(shapes["rnn.lif"], vec![4]);
}

#[test]
fn euler_semantics_by_hand() {
    // CubaLIF with α = 1 − dt/τ_syn = 0.5 and β = 1 − dt/τ_mem = 0.75, w_in·dt/τ_syn = 1 and
    // r·dt/τ_mem = 1: I = 0.5·I + x, v = 0.75·v + I, spike above 1 and reset to 0.
    let g = graph(
        vec![
            ("input", NodeKind::Input { shape: vec![1] }),
            (
                "n",
                NodeKind::CubaLIF {
                    tau_mem: v(&[4e-4]),
                    tau_syn: v(&[2e-4]),
                    r: v(&[4.0]),
                    v_leak: v(&[0.0]),
                    v_threshold: v(&[1.0]),
                    v_reset: v(&[0.0]),
                    w_in: v(&[2.0]),
                },
            ),
            ("output", NodeKind::Output { shape: vec![1] }),
        ],
        &["input>n", "n>output"],
    );
    let out = run(&g, &[0.4, 0.4, 0.0, 0.0], &[4, 1, 1], 1e-4).unwrap();
    // I: 0.4, 0.6, 0.3, 0.15; v: 0.4, 0.9, 0.975, 0.88125 — no spike yet.
    let mem = out.membrane.unwrap();
    for (a, b) in mem.iter().zip([0.4, 0.9, 0.975, 0.88125]) {
        assert!((a - b).abs() < 1e-6, "{mem:?}");
    }
    assert_eq!(out.values, vec![0.0; 4]);
    // A recurrent LIF: the self-connection reads the previous step's spike.
    let g = graph(
        vec![
            ("input", NodeKind::Input { shape: vec![1] }),
            ("lif", lif(1, 2e-4, 2.0, 0.5)),
            (
                "rec",
                NodeKind::Linear {
                    weight: Array::new(vec![1, 1], vec![0.45]),
                },
            ),
            ("output", NodeKind::Output { shape: vec![1] }),
        ],
        &["input>lif", "lif>rec", "rec>lif", "lif>output"],
    );
    // v = 0.5·v + x + 0.45·s(t−1): 0.6 spikes; then 0 + 0.45 (no input) stays below 0.5.
    let out = run(&g, &[0.6, 0.0, 0.0], &[3, 1, 1], 1e-4).unwrap();
    assert_eq!(out.values, vec![1.0, 0.0, 0.0]);
    assert!((out.membrane.unwrap()[1] - 0.45).abs() < 1e-6);
    // A delay of two steps.
    let g = graph(
        vec![
            ("input", NodeKind::Input { shape: vec![2] }),
            (
                "d",
                NodeKind::Delay {
                    delay: v(&[2e-4, 0.0]),
                },
            ),
            ("output", NodeKind::Output { shape: vec![2] }),
        ],
        &["input>d", "d>output"],
    );
    let out = run(&g, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 1, 2], 1e-4).unwrap();
    assert_eq!(out.values, vec![0.0, 2.0, 0.0, 4.0, 1.0, 6.0]);
}

fn tiny_config(arch: &str, input: [usize; 3]) -> SpikingNetConfig {
    let mut c = SpikingNetConfig {
        arch: arch.into(),
        input,
        steps: 6,
        beta: 0.8,
        ..SpikingNetConfig::tutorial_conv()
    };
    c.firing.threshold = 0.3;
    c
}

#[test]
fn nerve_to_nir_to_nerve_gives_identical_spikes() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    device.seed(7);
    for (arch, input) in [
        ("FC24-FC10", [1, 4, 6]),
        ("6C3-LIF-MP2-FC5", [1, 8, 8]),
        ("4C3-AP2-FC16-FC3", [2, 9, 9]),
        ("4C3-BN2D-FC3", [1, 6, 6]),
    ] {
        let net = tiny_config(arch, input).init(&device).unwrap();
        let [c, h, w] = input;
        let x = Tensor::<5>::random([6, 3, c, h, w], Distribution::Uniform(0.0, 1.5), &device);
        let expected = net.forward(x.clone(), None, false).unwrap();
        let g = nir::export_net(&net).unwrap();
        let g = file::decode(&file::encode(&g).unwrap(), Path::new("net.nir")).unwrap();
        let values: Vec<f32> = x.into_data().iter::<f32>().collect();
        let out = run(&g, &values, &[6, 3, c, h, w], nir::DEFAULT_DT).unwrap();
        let want: Vec<f32> = expected.spk.into_data().iter::<f32>().collect();
        assert!(want.contains(&1.0), "{arch}: no output spikes to compare");
        if arch.contains("BN2D") {
            // The batch norm folds into the convolution: spikes may flip only where a membrane
            // sits within float rounding of the threshold.
            let flips = out.values.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(flips <= 1, "{arch}: {flips} spikes differ");
        } else {
            assert_eq!(out.values, want, "{arch}");
            let mem: Vec<f32> = expected.mem.into_data().iter::<f32>().collect();
            assert_eq!(out.membrane.unwrap(), mem, "{arch}");
        }
    }
}

#[test]
fn export_refuses_what_nir_cannot_say() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    let net = tiny_config("4C3-MP2-FC3", [1, 8, 8]).init(&device).unwrap();
    let err = nir::export_net(&net).unwrap_err().to_string();
    assert!(
        err.contains("max pooling of currents") && !err.contains('\n'),
        "{err}"
    );
    let net = tiny_config("4C3-BN-FC3", [1, 8, 8]).init(&device).unwrap();
    let err = nir::export_net(&net).unwrap_err().to_string();
    assert!(err.contains("BNTT"), "{err}");
}

#[test]
fn bad_graphs_get_one_line_errors_naming_the_problem() {
    let one_line = |e: nerve::Error| {
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        s
    };
    // Mismatched shapes along an edge.
    let g = graph(
        vec![
            ("input", NodeKind::Input { shape: vec![5] }),
            (
                "fc",
                NodeKind::Affine {
                    weight: Array::new(vec![4, 3], vec![0.0; 12]),
                    bias: v(&[0.0; 4]),
                },
            ),
            ("output", NodeKind::Output { shape: vec![4] }),
        ],
        &["input>fc", "fc>output"],
    );
    let err = one_line(run(&g, &[0.0; 5], &[1, 1, 5], 1e-4).unwrap_err());
    assert!(err.contains("'fc'") && err.contains("[5]"), "{err}");
    // A cycle through weights only.
    let g = graph(
        vec![
            ("input", NodeKind::Input { shape: vec![2] }),
            (
                "a",
                NodeKind::Linear {
                    weight: Array::new(vec![2, 2], vec![0.5; 4]),
                },
            ),
            (
                "b",
                NodeKind::Linear {
                    weight: Array::new(vec![2, 2], vec![0.5; 4]),
                },
            ),
            ("output", NodeKind::Output { shape: vec![2] }),
        ],
        &["input>a", "a>b", "b>a", "b>output"],
    );
    let err = one_line(run(&g, &[0.0; 2], &[1, 1, 2], 1e-4).unwrap_err());
    assert!(
        err.contains("cycle through a, b") && err.contains("no neuron"),
        "{err}"
    );
    // An edge to a node that does not exist; a weight whose values do not fill its shape.
    let mut g2 = g.clone();
    g2.edges.push(("b".into(), "ghost".into()));
    assert!(one_line(g2.validate().unwrap_err()).contains("'ghost'"));
    let mut g3 = g.clone();
    g3.nodes.insert(
        "a".into(),
        node(NodeKind::Linear {
            weight: Array::new(vec![2, 2], vec![0.5; 3]),
        }),
    );
    assert!(one_line(g3.validate().unwrap_err()).contains("field 'weight'"));
    // An input of the wrong shape.
    let ok = graph(
        vec![
            ("input", NodeKind::Input { shape: vec![2] }),
            ("lif", lif(2, 1e-3, 10.0, 1.0)),
            ("output", NodeKind::Output { shape: vec![2] }),
        ],
        &["input>lif", "lif>output"],
    );
    let err = one_line(run(&ok, &[0.0; 3], &[1, 1, 3], 1e-4).unwrap_err());
    assert!(err.contains("'input'"), "{err}");
}

/// A file with a node of a type NIR does not define, written with the HDF5 crate directly.
fn file_with_unknown_node() -> Vec<u8> {
    let mut f = hdf5_pure::FileBuilder::new();
    f.create_dataset("version")
        .with_vlen_strings(&["1.0.8"])
        .with_shape(&[]);
    let mut root = f.create_group("node");
    root.create_dataset("type")
        .with_vlen_strings(&["NIRGraph"])
        .with_shape(&[]);
    root.create_dataset("edges")
        .with_vlen_strings(&["input", "weird"])
        .with_shape(&[1, 2]);
    let mut nodes = root.create_group("nodes");
    let mut input = nodes.create_group("input");
    input
        .create_dataset("type")
        .with_vlen_strings(&["Input"])
        .with_shape(&[]);
    input
        .create_dataset("shape")
        .with_i64_data(&[3])
        .with_shape(&[1]);
    nodes.add_group(input.finish());
    let mut weird = nodes.create_group("weird");
    weird
        .create_dataset("type")
        .with_vlen_strings(&["Izhikevich"])
        .with_shape(&[]);
    nodes.add_group(weird.finish());
    root.add_group(nodes.finish());
    f.add_group(root.finish());
    f.finish().unwrap()
}

#[test]
fn corrupt_files_and_unknown_nodes_are_refused_by_name() {
    let path = Path::new("g.nir");
    let err = file::decode(&file_with_unknown_node(), path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("weird") && err.contains("Izhikevich") && !err.contains('\n'),
        "{err}"
    );
    let good = file::encode(&every_node_type()).unwrap();
    for cut in [0, 8, 100, good.len() / 2, good.len() * 3 / 4] {
        let err = file::decode(&good[..cut], path).unwrap_err().to_string();
        assert!(
            err.starts_with("g.nir:") && !err.contains('\n'),
            "cut {cut}: {err}"
        );
    }
    // Seeded damage: an error or a graph, never a panic; a graph that reads still runs or errs.
    let (_, refused) = no_panic_loop(
        21,
        std::slice::from_ref(&good),
        300,
        &["g.nir", "NIR graph"],
        |b| {
            let g = file::decode(b, path)?;
            nir::run::output_shapes(&g).map(|_| ())
        },
    );
    assert!(refused > 100, "only {refused} of 300 damaged files refused");
}

#[test]
fn npy_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    nir::write_npy(&p, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
    let (shape, values) = nir::read_npy(&p).unwrap();
    assert_eq!(shape, vec![2, 3]);
    assert_eq!(values[5], 6.5);
    let bytes = std::fs::read(&p).unwrap();
    let err = nir::decode_npy(&bytes[..bytes.len() - 4], &p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.npy") && !err.contains('\n'), "{err}");
    let err = nir::decode_npy(b"not numpy", &p).unwrap_err().to_string();
    assert!(err.contains("a.npy"), "{err}");
}
