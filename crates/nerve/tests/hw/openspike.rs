//! The OpenSpike simulator: the recorded RTL cases replay exactly; each decay code, the 255
//! saturations and the Schmitt trigger's re-arming against values worked out by hand; damaged
//! case files are refused with one line naming the case and field; memory images written,
//! read back and run equal the direct simulation, and their bits sit where the RTL reads them.

use std::path::Path;

use nerve::hw::openspike::{
    self, accumulate, decay, encode_cases, parse_cases, schmitt, ChipLayout, Images, Layer,
    LayerStep, Network, OpenSpikeCase, State,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common::fuzz::no_panic_loop;

#[test]
fn every_public_case_matches_bit_for_bit() {
    let Some(shared) = crate::common::shared_dir() else {
        return;
    };
    let file = shared.join("reference/openspike/cases-public.json");
    if !file.is_file() {
        eprintln!("skipping: {} not found", file.display());
        return;
    }
    let reports = openspike::check_file(&file).unwrap();
    assert!(reports.len() >= 2, "{reports:?}");
    for r in &reports {
        assert!(r.passed(), "{}: {}", r.name, r.mismatch.as_ref().unwrap());
        assert!(r.steps > 0);
    }
    // The check can fail: one recorded potential moved by one is found where it is.
    let mut json: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let v = &mut json["cases"][0]["expected"]["layers"][1]["potentials"][3][2];
    *v = json!((v.as_u64().unwrap() + 1) % 256);
    let cases = parse_cases(json.to_string().as_bytes(), Path::new("moved.json")).unwrap();
    let r = openspike::check_case(&cases[0]);
    let m = r.mismatch.expect("a moved potential must be found");
    assert_eq!((m.step, m.layer, m.neuron), (3, 1, 2), "{m}");
    assert_eq!(m.field, "layers[1].potentials");
    assert_eq!(m.expected, (m.got + 1) % 256);
}

/// `decay(β, u)` worked out by hand: each `u >> k` term truncated on its own.
#[test]
fn each_decay_code_truncates_each_shifted_term() {
    let table: [(u8, [u8; 9]); 4] = [
        (255, [0, 31, 63, 94, 127, 158, 190, 221, 255]),
        (77, [0, 9, 19, 28, 38, 47, 57, 66, 77]),
        (13, [0, 1, 3, 4, 6, 7, 9, 10, 13]),
        (7, [0, 0, 1, 1, 3, 3, 4, 4, 7]),
    ];
    for (u, want) in table {
        for (beta, &w) in want.iter().enumerate() {
            assert_eq!(decay(beta as u8, u).unwrap(), w, "β {beta}, u {u}");
            // Through the datapath: no input, a disarmed neuron, v = decay(β, u).
            let (v, spike) = one_neuron(beta as u8, u, false, &[0])[0];
            assert_eq!((v, spike), (w, false), "β {beta}, u {u}");
        }
    }
    // A product truncated once would give 11 and 223 here.
    assert_eq!(decay(7, 13).unwrap(), 10);
    assert_eq!(decay(7, 255).unwrap(), 221);
    for beta in 9..=15 {
        let err = decay(beta, 100).unwrap_err().to_string();
        assert!(
            err.contains("undefined") && err.contains(&beta.to_string()),
            "{err}"
        );
        let err = Layer::from_fn(4, vec![0, beta], |_, _| true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("neuron 1") && err.contains("undefined"),
            "{err}"
        );
    }
}

/// One neuron with 1024 inputs, all weights 1: step `t` has its first `ks[t]` inputs spiking.
/// Returns `(v, spike)` per step.
fn one_neuron(beta: u8, u: u8, able: bool, ks: &[usize]) -> Vec<(u8, bool)> {
    let layer = Layer::from_fn(1024, vec![beta], |_, _| true).unwrap();
    let net = Network::new(vec![layer]).unwrap();
    let mut state = State {
        u: vec![vec![u]],
        able: vec![vec![able]],
    };
    ks.iter()
        .map(|&k| {
            let x: Vec<bool> = (0..1024).map(|i| i < k).collect();
            let s = net.step(&mut state, &x).unwrap();
            (s[0].potentials[0], s[0].spikes[0])
        })
        .collect()
}

#[test]
fn accumulator_and_potential_stick_at_255() {
    assert_eq!(accumulate(254), 254);
    assert_eq!(accumulate(255), 255);
    assert_eq!(accumulate(256), 255);
    assert_eq!(accumulate(1024), 255);
    // β 0: v is the accumulator alone. 256 and 1024 active synapses would wrap to 0.
    let got: Vec<u8> = one_neuron(0, 0, false, &[254, 255, 256, 300, 1024, 0])
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(got, [254, 255, 255, 255, 255, 0]);
    // β 8 keeps u: 250 + 10 saturates; 250 + 5 is exactly 255.
    assert_eq!(one_neuron(8, 250, false, &[10])[0].0, 255);
    assert_eq!(one_neuron(8, 250, false, &[5])[0].0, 255);
    assert_eq!(one_neuron(8, 250, false, &[4])[0].0, 254);
    // Both saturate together: 255 + 255 is still 255.
    assert_eq!(one_neuron(8, 255, false, &[1024])[0].0, 255);
    // Only synapses with w AND s count.
    let layer = Layer::from_fn(8, vec![0], |_, i| i % 2 == 0).unwrap();
    let net = Network::new(vec![layer]).unwrap();
    let mut state = net.rest_state();
    let s = net
        .step(
            &mut state,
            &[true, true, true, false, false, true, true, true],
        )
        .unwrap();
    assert_eq!(s[0].potentials, [3]);
}

#[test]
fn schmitt_trigger_fires_above_230_and_rearms_only_below_200() {
    assert_eq!(schmitt(231, true), (true, false));
    assert_eq!(schmitt(230, true), (false, false));
    assert_eq!(schmitt(255, false), (false, false));
    assert_eq!(schmitt(200, true), (false, false));
    assert_eq!(schmitt(199, false), (false, true));
    assert_eq!(schmitt(0, false), (false, true));
    // β 4 halves u. Fire at 240 (stored 0); 240 again while disarmed; 120 + 100 = 220 stays
    // disarmed; 110 + 89 = 199 re-arms; 99 + 132 = 231 fires.
    assert_eq!(
        one_neuron(4, 0, true, &[240, 240, 100, 89, 132]),
        [
            (240, true),
            (240, false),
            (220, false),
            (199, false),
            (231, true)
        ]
    );
    // β 0, so v is the count: 230 does not fire and disarms; 200 does not re-arm; 199 does.
    assert_eq!(
        one_neuron(0, 0, true, &[230, 231, 200, 231, 199, 231]),
        [
            (230, false),
            (231, false),
            (200, false),
            (231, false),
            (199, false),
            (231, true)
        ]
    );
    // The stored potential is 0 after a spike, v otherwise (β 8 shows it).
    let layer = Layer::from_fn(1, vec![8], |_, _| true).unwrap();
    let net = Network::new(vec![layer]).unwrap();
    let mut state = State {
        u: vec![vec![230]],
        able: vec![vec![true]],
    };
    let s = net.step(&mut state, &[true]).unwrap();
    assert_eq!(
        (s[0].potentials[0], s[0].spikes[0], state.u[0][0]),
        (231, true, 0)
    );
    assert_eq!(s[0].stored(), [0]);
}

#[test]
fn layers_read_the_same_steps_spikes_of_the_layer_before() {
    // Layer 0 fires at step 0 from a high start; layer 1 sees it in the same step.
    let l0 = Layer::from_fn(1, vec![8], |_, _| true).unwrap();
    let l1 = Layer::from_fn(1, vec![8], |_, _| true).unwrap();
    let net = Network::new(vec![l0, l1]).unwrap();
    let mut state = State {
        u: vec![vec![230], vec![10]],
        able: vec![vec![true], vec![true]],
    };
    let s = net.step(&mut state, &[true]).unwrap();
    assert_eq!(s[0].spikes, [true]);
    assert_eq!(s[1].potentials, [11]);
    let err = Network::new(vec![
        Layer::from_fn(3, vec![0; 2], |_, _| true).unwrap(),
        Layer::from_fn(3, vec![0], |_, _| true).unwrap(),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("fan-in 3") && err.contains("2 neurons"),
        "{err}"
    );
    for (inputs, n, needle) in [
        (1025, 1, "fan-in 1025"),
        (4, 1025, "1025 neurons"),
        (0, 1, "fan-in 0"),
    ] {
        let err = Layer::from_fn(inputs, vec![0; n], |_, _| false)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}

/// A random network of the given sizes (input first), its random state and inputs.
fn random_net(rng: &mut StdRng, sizes: &[usize], density: f64) -> (Network, State) {
    let layers: Vec<Layer> = sizes
        .windows(2)
        .map(|w| {
            let beta = (0..w[1]).map(|_| rng.random_range(0..=8)).collect();
            let bits: Vec<bool> = (0..w[0] * w[1]).map(|_| rng.random_bool(density)).collect();
            Layer::from_fn(w[0], beta, |j, i| bits[j * w[0] + i]).unwrap()
        })
        .collect();
    let net = Network::new(layers).unwrap();
    let state = State {
        u: sizes[1..]
            .iter()
            .map(|&n| (0..n).map(|_| rng.random()).collect())
            .collect(),
        able: sizes[1..]
            .iter()
            .map(|&n| (0..n).map(|_| rng.random()).collect())
            .collect(),
    };
    (net, state)
}

fn random_inputs(rng: &mut StdRng, steps: usize, n: usize, p: f64) -> Vec<Vec<bool>> {
    (0..steps)
        .map(|_| (0..n).map(|_| rng.random_bool(p)).collect())
        .collect()
}

fn tiny_case_json() -> Value {
    let mut rng = StdRng::seed_from_u64(5);
    let (net, init) = random_net(&mut rng, &[6, 4, 3], 0.6);
    let inputs = random_inputs(&mut rng, 5, 6, 0.5);
    let case = OpenSpikeCase::record("tiny", net, init, inputs).unwrap();
    serde_json::from_slice(&encode_cases(&[case])).unwrap()
}

#[test]
fn written_cases_read_back_and_pass() {
    let mut rng = StdRng::seed_from_u64(9);
    let (net, init) = random_net(&mut rng, &[300, 1024, 70, 5], 0.3);
    let inputs = random_inputs(&mut rng, 9, 300, 0.4);
    let case = OpenSpikeCase::record("wide", net, init, inputs).unwrap();
    let bytes = encode_cases(std::slice::from_ref(&case));
    let back = parse_cases(&bytes, Path::new("wide.json")).unwrap();
    assert_eq!(back, std::slice::from_ref(&case));
    assert!(openspike::check_case(&back[0]).passed());
    // A flipped expected spike in the last layer is reported there.
    let mut bad = case;
    bad.expected.spikes[4][2] ^= true;
    let m = openspike::check_case(&bad).mismatch.unwrap();
    assert_eq!(
        (m.step, m.layer, m.neuron, m.field.as_str()),
        (4, 2, 2, "spikes")
    );
}

#[test]
fn damaged_case_files_are_refused_naming_case_and_field() {
    let good = tiny_case_json();
    assert!(parse_cases(good.to_string().as_bytes(), Path::new("c.json")).is_ok());
    type Edit = fn(&mut Value);
    let edits: [(Edit, &[&str]); 12] = [
        (
            |v| drop(v["cases"][0].as_object_mut().unwrap().remove("weights")),
            &["weights", "missing field"],
        ),
        (
            |v| {
                drop(
                    v["cases"][0]["params"]
                        .as_object_mut()
                        .unwrap()
                        .remove("u_init"),
                )
            },
            &["params.u_init", "missing field"],
        ),
        (
            |v| drop(v["cases"][0]["inputs"][2].as_array_mut().unwrap().pop()),
            &["inputs[2]", "has 5 entries, expected 6"],
        ),
        (
            |v| drop(v["cases"][0]["inputs"].as_array_mut().unwrap().pop()),
            &["inputs", "4 steps", "timesteps is 5"],
        ),
        (
            |v| v["cases"][0]["weights"][1][2] = json!([1, 0]),
            &["weights[1][2]", "expected 4"],
        ),
        (
            |v| v["cases"][0]["params"]["beta"][0][1] = json!(9),
            &["params.beta[0][1]", "9", "undefined"],
        ),
        (
            |v| v["cases"][0]["params"]["u_init"][1][0] = json!(256),
            &["params.u_init[1][0]", "256", "0..=255"],
        ),
        (
            |v| v["cases"][0]["params"]["spikeability_init"][0][0] = json!(2),
            &["spikeability_init[0][0]", "not a bit"],
        ),
        (
            |v| v["cases"][0]["expected"]["layers"][1]["potentials"][0] = json!([1, 2]),
            &["expected.layers[1].potentials[0]", "expected 3"],
        ),
        (
            |v| v["cases"][0]["params"]["thresholds"]["high"] = json!(231),
            &["params.thresholds.high", "230"],
        ),
        (
            |v| v["cases"][0]["params"]["layer_sizes"][1] = json!(1025),
            &["params.layer_sizes[1]", "1025"],
        ),
        (
            |v| v["cases"][0]["expected"]["membranes"][0][0] = json!(-1),
            &["expected.membranes[0][0]", "-1"],
        ),
    ];
    for (k, (edit, needles)) in edits.into_iter().enumerate() {
        let mut v = good.clone();
        edit(&mut v);
        let err = parse_cases(v.to_string().as_bytes(), Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "edit {k}: {err}");
        assert!(
            err.starts_with("c.json: case 0 \"tiny\": "),
            "edit {k}: {err}"
        );
        for n in needles {
            assert!(err.contains(n), "edit {k}: '{n}' not in: {err}");
        }
    }
    for (text, needle) in [
        ("{", "not JSON"),
        ("[]", "not an object"),
        (r#"{"format": "x", "cases": []}"#, "format"),
        (
            r#"{"format": "openspike-case-v1", "cases": []}"#,
            "no cases",
        ),
    ] {
        let err = parse_cases(text.as_bytes(), Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.json") && err.contains(needle), "{err}");
    }
}

#[test]
fn case_reader_never_panics_on_damaged_files() {
    let seeds = vec![tiny_case_json().to_string().into_bytes()];
    let (_, refused) = no_panic_loop(13, &seeds, 600, &["fuzz.json"], |b| {
        let cases = parse_cases(b, Path::new("fuzz.json"))?;
        openspike::check_cases(&cases);
        Ok(())
    });
    assert!(refused > 400, "only {refused} of 600 damaged files refused");
}

/// A random network in the chip's shape: one-to-one input layer, hidden, output.
fn random_chip(rng: &mut StdRng, n_in: usize, hidden: usize, out: usize) -> (Network, State) {
    let (net, state) = random_net(rng, &[n_in, n_in, hidden, out], 0.5);
    let first = &net.layers()[0];
    // Codes 6..=8 in the input and hidden layers: a neuron that decays fast seldom fires.
    let beta = first.beta().iter().map(|b| 6 + b % 3).collect();
    let diag = Layer::from_fn(n_in, beta, |j, i| i == j && first.weight(j, j)).unwrap();
    let h = &net.layers()[1];
    let beta = h
        .beta()
        .iter()
        .enumerate()
        .map(|(j, b)| if j % 4 == 0 { 8 } else { 6 + b % 3 });
    let hidden = Layer::from_fn(n_in, beta.collect(), |j, i| h.weight(j, i)).unwrap();
    let layers = vec![diag, hidden, net.layers()[2].clone()];
    (Network::new(layers).unwrap(), state)
}

#[test]
fn images_round_trip_and_run_as_the_direct_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(77);
    for (k, (n_in, hidden, out, steps)) in [(40, 50, 7, 12), (1024, 1024, 16, 3), (129, 17, 1, 64)]
        .into_iter()
        .enumerate()
    {
        let (net, state) = random_chip(&mut rng, n_in, hidden, out);
        // Input neurons start armed near threshold so that the one-synapse input layer fires.
        let mut state = state;
        state.u[0].iter_mut().for_each(|u| *u = 215 + *u % 20);
        state.able[0].iter_mut().for_each(|a| *a = true);
        state.u[1].iter_mut().for_each(|u| *u = 220 + *u % 36);
        state.able[1].iter_mut().for_each(|a| *a = true);
        let inputs = random_inputs(&mut rng, steps, n_in, 0.5);
        let images = Images::encode(&net, &state, &inputs).unwrap();
        let sub = dir.path().join(format!("im{k}"));
        openspike::write_images(&sub, &images).unwrap();
        let back = openspike::read_images(&sub).unwrap();
        assert_eq!(back, images, "{k}");
        let loaded = back.decode().unwrap();
        assert_eq!(
            (&loaded.network, &loaded.state, &loaded.inputs),
            (&net, &state, &inputs)
        );
        let mut direct_state = state.clone();
        let direct = net.run(&mut direct_state, &inputs).unwrap();
        let fired = |l: usize| -> usize {
            direct
                .iter()
                .map(|s| s[l].spikes.iter().filter(|&&b| b).count())
                .sum()
        };
        assert!(
            fired(0) > 0 && fired(1) > 0,
            "{k}: a silent network tests little: {} {} {}",
            fired(0),
            fired(1),
            fired(2)
        );
        let run = openspike::run_images(&sub, None).unwrap();
        assert_eq!(run.trace, direct, "{k}");
        assert_eq!(run.state, direct_state, "{k}");
        assert_eq!(run.clocks, 9 + 1092 * steps as u64);
        assert_eq!(run.time_ns, run.clocks * 40);
        let part = openspike::run_images(&sub, Some(2)).unwrap();
        assert_eq!(part.trace, direct[..2]);
        // Without the manifest the whole chip is reported; the neurons in use are unchanged.
        std::fs::remove_file(sub.join("openspike.json")).unwrap();
        let full = openspike::run_images(&sub, None).unwrap();
        assert_eq!(full.layout, ChipLayout::FULL);
        for (t, step) in full.trace.iter().enumerate() {
            for (l, layer) in step.iter().enumerate() {
                let n = direct[t][l].spikes.len();
                let cut = LayerStep {
                    potentials: layer.potentials[..n].to_vec(),
                    spikes: layer.spikes[..n].to_vec(),
                };
                assert_eq!(cut, direct[t][l], "{k}: step {t} layer {l}");
                assert!(layer.spikes[n..].iter().all(|&s| !s), "padding fired");
            }
        }
    }
}

#[test]
fn image_bits_sit_where_the_rtl_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    // Input neuron 5 gated; hidden neuron 5 from input neuron 3; output neuron 2 from hidden 6.
    let l0 = Layer::from_fn(8, vec![8; 8], |j, i| i == j && j == 5).unwrap();
    let l1 = Layer::from_fn(8, (0..18).map(|j| (j % 9) as u8).collect(), |j, p| {
        (j, p) == (5, 3)
    })
    .unwrap();
    let l2 = Layer::from_fn(18, vec![1; 3], |j, p| (j, p) == (2, 6)).unwrap();
    let net = Network::new(vec![l0, l1, l2]).unwrap();
    let mut state = net.rest_state();
    state.u[1][17] = 0xab;
    state.able[1][17] = false;
    let mut x = vec![false; 8];
    x[7] = true;
    let images = Images::encode(&net, &state, &[x.clone(), x]).unwrap();
    openspike::write_images(dir.path(), &images).unwrap();
    let lines = |f: &str| -> Vec<String> {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let w = lines("weights.hex");
    assert_eq!(w.len(), 1025);
    assert!(w.iter().all(|l| l.len() == 512));
    let tail =
        |l: &str, s: &str| l.ends_with(s) && l[..l.len() - s.len()].chars().all(|c| c == '0');
    assert!(tail(&w[0], "400"), "word 0 bit 10 = input neuron 5's gate");
    assert!(tail(&w[2], "800"), "word 1 + 3/2, bit 2*5 + 1");
    assert!(tail(&w[513 + 3], "10"), "word 513 + 6/2, bit 2*2 + 0");
    let u = lines("potentials.hex");
    assert_eq!(u.len(), 129);
    assert!(
        tail(&u[65], "ab00"),
        "hidden neuron 17: group 64 + 1, bits 15:8"
    );
    let b = lines("betas.hex");
    assert_eq!(b[0], "0000000088888888");
    assert_eq!(b[64], "6543210876543210");
    assert!(tail(&b[65], "87"), "hidden neurons 16, 17: codes 7, 8");
    assert_eq!(b[128], "0000000000000111");
    let a = lines("spikeability.hex");
    assert_eq!(
        [&a[0], &a[64], &a[65], &a[128]],
        ["00ff", "ffff", "0001", "0007"]
    );
    let one = format!("{:0>32}", "80");
    let zero = "0".repeat(32);
    let mut want = vec![zero.clone(); 16];
    want[0] = one.clone();
    want[8] = one;
    assert_eq!(lines("inputs.hex"), want);
    assert!(lines("spikes.hex").iter().all(|l| l == "0000"));
    // Edited images: a decay code of 9 and a missing weight word are named.
    let b9 = b
        .iter()
        .enumerate()
        .map(|(i, l)| if i == 64 { "9".repeat(16) } else { l.clone() });
    std::fs::write(
        dir.path().join("betas.hex"),
        b9.collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let err = openspike::run_images(dir.path(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("betas.hex word 64") && err.contains("decay code 9"),
        "{err}"
    );
    std::fs::write(dir.path().join("weights.hex"), w[..1000].join("\n")).unwrap();
    let err = openspike::read_images(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("weights.hex") && err.contains("word 1000 is missing"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("inputs.hex"),
        "@2 // comment\n/* a\nb */ 1_0 g1\n",
    )
    .unwrap();
    let err = openspike::read_images(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("inputs.hex: line 3") && err.contains("non-hex"),
        "{err}"
    );
}

#[test]
fn what_the_chip_cannot_hold_is_named() {
    let mut rng = StdRng::seed_from_u64(3);
    let (net, state) = random_chip(&mut rng, 8, 8, 4);
    let too_long = random_inputs(&mut rng, 65, 8, 0.5);
    let err = Images::encode(&net, &state, &too_long)
        .unwrap_err()
        .to_string();
    assert!(err.contains("65") && err.contains("holds 64"), "{err}");
    let (dense, state) = random_net(&mut rng, &[8, 8, 8, 4], 0.9);
    let err = Images::encode(&dense, &state, &[]).unwrap_err().to_string();
    assert!(
        err.contains("one-to-one") || err.contains("input j to neuron j"),
        "{err}"
    );
    let (two, state) = random_net(&mut rng, &[8, 8, 4], 0.5);
    let err = Images::encode(&two, &state, &[]).unwrap_err().to_string();
    assert!(
        err.contains("2 layers") && err.contains("exactly 3"),
        "{err}"
    );
    let (wide, state) = random_chip(&mut rng, 8, 8, 17);
    let err = Images::encode(&wide, &state, &[]).unwrap_err().to_string();
    assert!(err.contains("17 output neurons"), "{err}");
}

#[test]
fn clocks_per_step_follow_the_phases() {
    assert_eq!(openspike::CLOCKS_PER_STEP, 1 + 65 + 1 + 512 + 1 + 512);
    assert_eq!(openspike::CLOCKS_PER_STEP, 1092);
    assert_eq!(openspike::run_clocks(25), 9 + 1092 * 25);
    assert_eq!(openspike::run_time_ns(1), 1101 * 40);
}
