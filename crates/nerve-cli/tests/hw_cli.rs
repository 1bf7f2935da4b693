//! End-to-end tests of the hardware path: quantization-aware training recorded in checkpoints,
//! energy estimates, integer programs (`nerve quantize`, `nerve eval --integer`) and the
//! state-quantization reference cases.

use std::ffi::OsStr;
use std::path::Path;

mod common;
use common::*;

#[test]
fn quantized_training_is_recorded_in_the_checkpoint_and_eval_applies_it() {
    let tmp = Scratch::new("quantized");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    let quant = [
        "--epochs",
        "1",
        "--weight-bits",
        "4:channel",
        "--state-bits",
        "3",
        "--state-levels",
        "threshold",
        "--loss",
        "mse-count:0.8:0.2",
        "--schedule",
        "loss-dependent:periodic-cosine:1",
        "--surrogate",
        "fast_sigmoid:13.84",
    ];
    let stdout = expect_success(&train(tmp.path(), &data, &run, &quant));
    let described = "weights=4:channel states=3bit threshold-centred";
    assert!(stdout.contains(described), "{stdout}");
    let checkpoint = run.join("checkpoint.safetensors");
    let eval = nerve(
        tmp.path(),
        &[
            "eval".as_ref(),
            "--checkpoint".as_ref(),
            checkpoint.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--test-limit".as_ref(),
            "8".as_ref(),
        ],
    );
    let stdout = expect_success(&eval);
    assert!(
        stdout.contains(described),
        "eval rebuilt another network:\n{stdout}"
    );
    assert!(stdout.contains("test accuracy:"), "{stdout}");
}

#[test]
fn bit_widths_outside_one_to_eight_are_named() {
    let tmp = Scratch::new("bad_bits");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    for (flag, value, needle) in [
        ("--weight-bits", "9", "weight bits"),
        ("--weight-bits", "0", "weight bits"),
        ("--weight-bits", "four", "weight quantization"),
        ("--state-bits", "0", "state bits"),
        ("--state-bits", "12", "state bits"),
    ] {
        let out = train(tmp.path(), &data, &run, &["--epochs", "1", flag, value]);
        expect_error(&out, &[needle, value]);
        assert!(!run.exists(), "{flag} {value} left a run behind");
    }
}

#[test]
fn reference_check_passes_the_state_quantization_cases() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, count) in [
        ("snntorch-state-quant.json", 3),
        ("snntorch-leaky-state-quant.json", 1),
    ] {
        let Some(file) = here
            .ancestors()
            .map(|a| a.join("shared/reference").join(name))
            .find(|p| p.is_file())
        else {
            eprintln!(
                "skipping: no shared/reference/{name} above {}",
                here.display()
            );
            continue;
        };
        let out = nerve(here, &[OsStr::new("reference-check"), file.as_os_str()]);
        let stdout = expect_success(&out);
        assert!(
            stdout.contains(&format!("{count} passed, 0 failed")),
            "{stdout}"
        );
        // One quantized value moved to another level must fail.
        let mut json: serde_json::Value = serde_json::from_slice(&read(&file)).unwrap();
        let output = if count == 3 { "q" } else { "mem" };
        let v = &mut json["cases"][0]["outputs"][output]["data"][5];
        *v = serde_json::json!(v.as_f64().unwrap() + 0.1);
        let dir = Scratch::new("state_quant_perturbed");
        let bad = dir.join("bad.json");
        write(&bad, &serde_json::to_vec(&json).unwrap());
        let out = nerve(
            dir.path(),
            &[OsStr::new("reference-check"), bad.as_os_str()],
        );
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("{} passed, 1 failed", count - 1)),
            "{stdout}"
        );
    }
}

#[test]
fn eval_energy_prints_the_table_and_draws_the_chart() {
    let tmp = Scratch::new("energy");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    expect_success(&train(tmp.path(), &data, &run, &["--epochs", "1"]));
    let checkpoint = run.join("checkpoint.safetensors");
    let eval = |extra: &[&OsStr]| {
        let mut args: Vec<&OsStr> = vec![
            "eval".as_ref(),
            "--checkpoint".as_ref(),
            checkpoint.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--energy".as_ref(),
        ];
        args.extend_from_slice(extra);
        nerve(tmp.path(), &args)
    };
    let stdout = expect_success(&eval(&[]));
    for needle in [
        "energy per inference",
        "conv1 4C5",
        "lif1",
        "fc1",
        "ANN twin total",
        "x the ANN twin",
    ] {
        assert!(stdout.contains(needle), "no '{needle}' in:\n{stdout}");
    }
    assert!(read(&run.join("energy.png")).starts_with(b"\x89PNG\r\n\x1a\n"));
    let costs = tmp.join("costs.toml");
    write(&costs, b"float_mac = 2.0\n");
    let out = eval(&["--energy-costs".as_ref(), costs.as_os_str()]);
    expect_error(&out, &["costs.toml", "float_mac"]);
}

#[test]
fn quantize_writes_a_program_that_eval_integer_runs_and_a_corrupt_one_is_named() {
    let tmp = Scratch::new("integer");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    expect_success(&train(
        tmp.path(),
        &data,
        &run,
        &["--epochs", "1", "--weight-bits", "4"],
    ));
    let checkpoint = run.join("checkpoint.safetensors");
    let program = tmp.join("model.nq");
    let quantize = |bits: &str| {
        nerve(
            tmp.path(),
            &[
                "quantize".as_ref(),
                "--checkpoint".as_ref(),
                checkpoint.as_os_str(),
                "--out".as_ref(),
                program.as_os_str(),
                "--weight-bits".as_ref(),
                bits.as_ref(),
            ],
        )
    };
    let stdout = expect_success(&quantize("8"));
    assert!(
        stdout.contains("4-bit weights"),
        "the QAT grid is kept:\n{stdout}"
    );
    assert!(read(&program).starts_with(b"NERVENQ\0"));
    let eval = |path: &Path| {
        nerve(
            tmp.path(),
            &[
                "eval".as_ref(),
                "--integer".as_ref(),
                path.as_os_str(),
                "--data".as_ref(),
                data.as_os_str(),
            ],
        )
    };
    let stdout = expect_success(&eval(&program));
    for needle in [
        "test accuracy:",
        "integer engine",
        "synaptic additions per inference",
    ] {
        assert!(stdout.contains(needle), "no '{needle}' in:\n{stdout}");
    }
    // A bit width outside 1..8 is refused and the program already written is kept.
    let before = read(&program);
    expect_error(&quantize("12"), &["weight bits", "12"]);
    assert_eq!(read(&program), before);
    // A truncated or corrupt program names the file and what is wrong.
    let bad = tmp.join("bad.nq");
    write(&bad, &before[..before.len() / 2]);
    expect_error(&eval(&bad), &["bad.nq", "truncated"]);
    let mut flipped = before.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x0f;
    write(&bad, &flipped);
    expect_error(&eval(&bad), &["bad.nq", "checksum"]);
    write(&bad, b"not a program");
    expect_error(&eval(&bad), &["bad.nq", "magic"]);
}

/// Two OpenSpike cases recorded from the simulator (a chain of layers and a chip-shaped one),
/// as case-file JSON.
fn openspike_cases() -> (Vec<nerve::hw::openspike::OpenSpikeCase>, serde_json::Value) {
    use nerve::hw::openspike::{self, Layer, Network, OpenSpikeCase};
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut bit = |p: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % 100 < p
    };
    let mut cases = Vec::new();
    for (name, sizes) in [("chain", vec![20, 12, 5]), ("deep", vec![9, 9, 30, 4])] {
        let layers: Vec<Layer> = sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let bits: Vec<bool> = (0..w[0] * w[1]).map(|_| bit(70)).collect();
                let beta = (0..w[1]).map(|j| ((j + l) % 9) as u8).collect();
                Layer::from_fn(w[0], beta, |j, i| bits[j * w[0] + i]).unwrap()
            })
            .collect();
        let network = Network::new(layers).unwrap();
        let mut init = network.rest_state();
        for u in init.u.iter_mut().flatten() {
            *u = 150 + (bit(50) as u8) * 90;
        }
        let inputs: Vec<Vec<bool>> = (0..8)
            .map(|_| (0..sizes[0]).map(|_| bit(60)).collect())
            .collect();
        cases.push(OpenSpikeCase::record(name, network, init, inputs).unwrap());
    }
    let json = serde_json::from_slice(&openspike::encode_cases(&cases)).unwrap();
    (cases, json)
}

#[test]
fn openspike_check_passes_recorded_cases_and_exits_1_on_a_mismatch() {
    let tmp = Scratch::new("openspike_check");
    let (_, mut json) = openspike_cases();
    let file = tmp.join("cases.json");
    write(&file, json.to_string().as_bytes());
    let check = |f: &Path| {
        nerve(
            tmp.path(),
            &[
                OsStr::new("hw"),
                OsStr::new("openspike-check"),
                f.as_os_str(),
            ],
        )
    };
    let stdout = expect_success(&check(&file));
    assert!(
        stdout.contains("pass  chain  (20-12-5, 8 steps)"),
        "{stdout}"
    );
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
    // One stored membrane of the second case moved: that case fails, naming where.
    let v = &mut json["cases"][1]["expected"]["membranes"][6][3];
    *v = serde_json::json!((v.as_u64().unwrap() + 1) % 256);
    write(&file, json.to_string().as_bytes());
    let out = check(&file);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("FAIL  deep") && stdout.contains("step 6, layer 2, neuron 3, membranes"),
        "{stdout}"
    );
    // A malformed file is one error line naming the case and field.
    json["cases"][0]["params"]["beta"][1][0] = serde_json::json!(9);
    write(&file, json.to_string().as_bytes());
    expect_error(
        &check(&file),
        &["cases.json", "\"chain\"", "params.beta[1][0]", "undefined"],
    );
    // The public cases, when the shared folder is there.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    match here
        .ancestors()
        .map(|a| a.join("shared/reference/openspike/cases-public.json"))
        .find(|p| p.is_file())
    {
        Some(public) => {
            let stdout = expect_success(&check(&public));
            assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
        }
        None => eprintln!(
            "skipping: no shared/reference/openspike above {}",
            here.display()
        ),
    }
}

#[test]
fn openspike_run_prints_the_output_spikes_of_memory_images() {
    use nerve::hw::openspike::{self, Images, Layer, Network};
    let tmp = Scratch::new("openspike_run");
    let l0 = Layer::from_fn(4, vec![8; 4], |j, i| i == j).unwrap();
    let l1 = Layer::from_fn(4, vec![8; 3], |_, _| true).unwrap();
    let l2 = Layer::from_fn(3, vec![0; 2], |j, p| j == 1 && p < 2).unwrap();
    let net = Network::new(vec![l0, l1, l2]).unwrap();
    let mut state = net.rest_state();
    state.u[0] = vec![230, 230, 0, 0];
    state.u[1] = vec![229, 229, 0];
    // Step 0: input neurons 0 and 1 fire (230 + 1), hidden 0 and 1 reach 231 and fire; output
    // neuron 1 gets 2 (β 0) and stays silent. Step 1 is quiet.
    let images = Images::encode(
        &net,
        &state,
        &[vec![true, true, false, false], vec![false; 4]],
    )
    .unwrap();
    let dir = tmp.join("images");
    openspike::write_images(&dir, &images).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            OsStr::new("hw"),
            OsStr::new("openspike-run"),
            OsStr::new("--images"),
            dir.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        nerve(tmp.path(), &args)
    };
    let stdout = expect_success(&run(&[]));
    assert!(
        stdout.contains("layout: 4 input, 3 hidden, 2 output neurons; 2 steps"),
        "{stdout}"
    );
    assert!(
        stdout.contains("step   0: output 00  (input layer 2 spikes, hidden 2)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("clocks: 2193 (9 + 1092 x 2), 87.72 us at 40 ns"),
        "{stdout}"
    );
    let stdout = expect_success(&run(&["--steps", "1"]));
    assert!(
        stdout.contains("1 steps") && !stdout.contains("step   1"),
        "{stdout}"
    );
    expect_error(&run(&["--steps", "3"]), &["3", "input images hold 2"]);
    std::fs::remove_file(dir.join("betas.hex")).unwrap();
    expect_error(&run(&[]), &["betas.hex"]);
}

#[test]
fn openspike_compile_writes_images_of_a_trained_network_and_names_what_does_not_fit() {
    let tmp = Scratch::new("openspike_compile");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    expect_success(&train(
        tmp.path(),
        &data,
        &run,
        &["--epochs", "1", "--arch", "FC24-FC10"],
    ));
    let checkpoint = run.join("checkpoint.safetensors");
    let images = tmp.join("images");
    let compile = |ckpt: &Path, extra: &[&str]| {
        let mut args = vec![
            OsStr::new("hw"),
            OsStr::new("openspike-compile"),
            OsStr::new("--checkpoint"),
            ckpt.as_os_str(),
            OsStr::new("--out"),
            images.as_os_str(),
            OsStr::new("--data"),
            data.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        nerve(tmp.path(), &args)
    };
    let stdout = expect_success(&compile(&checkpoint, &["--sample", "3", "--evaluate", "8"]));
    assert!(
        stdout.contains("OpenSpike: 784 input, 24 hidden, 10 output neurons"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 steps of input from test sample 3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("simulated chip:") && stdout.contains("of 8 test samples"),
        "{stdout}"
    );
    let out = nerve(
        tmp.path(),
        &[
            OsStr::new("hw"),
            OsStr::new("openspike-run"),
            OsStr::new("--images"),
            images.as_os_str(),
        ],
    );
    let stdout = expect_success(&out);
    assert!(
        stdout.contains("layout: 784 input, 24 hidden, 10 output neurons; 2 steps"),
        "{stdout}"
    );
    // The tutorial's convolutional network does not fit; the error names the checkpoint.
    let conv = tmp.join("conv");
    expect_success(&train(tmp.path(), &data, &conv, &["--epochs", "1"]));
    let conv = conv.join("checkpoint.safetensors");
    expect_error(
        &compile(&conv, &[]),
        &["checkpoint.safetensors", "convolution"],
    );
    expect_error(
        &compile(&checkpoint, &["--sample", "99"]),
        &["--sample", "99"],
    );
}

#[test]
fn openspike_train_reports_float_and_chip_accuracy_and_writes_images() {
    let tmp = Scratch::new("openspike-train");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let out = expect_success(&nerve(
        tmp.path(),
        &[
            "hw".as_ref(),
            "openspike-train".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--hidden".as_ref(),
            "16".as_ref(),
            "--epochs".as_ref(),
            "2".as_ref(),
            "--out".as_ref(),
            tmp.join("chip").as_os_str(),
        ],
    ));
    // The float model and the simulated chip agree on every test image.
    assert!(
        out.contains("(8 of 8 predictions equal the float model's)"),
        "{out}"
    );
    assert!(out.contains("1101 clocks"), "{out}");
    let run = expect_success(&nerve(
        tmp.path(),
        &["hw", "openspike-run", "--images", "chip", "--steps", "1"],
    ));
    assert!(run.contains("output potentials at step 0"), "{run}");
    expect_error(
        &nerve(
            tmp.path(),
            &[
                "hw".as_ref(),
                "openspike-train".as_ref(),
                "--data".as_ref(),
                data.as_os_str(),
                "--hidden".as_ref(),
                "2000".as_ref(),
                "--out".as_ref(),
                tmp.join("big").as_os_str(),
            ],
        ),
        &["2000 hidden neurons"],
    );
}
