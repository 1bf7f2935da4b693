//! `nerve nir`: export a trained checkpoint, describe and run graphs, refuse bad ones; and
//! interop with the Python `nir` package, when a Python that has it is available
//! (`NERVE_NIR_PYTHON`, which `.ci/run` sets up, or `python3`): it reads every file Nerve
//! writes (type checking on), and writes graphs that Nerve runs against an independent NumPy
//! simulation.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

/// A Python that can `import nir`, or `None` with a printed reason.
fn nir_python() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("NERVE_NIR_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("python3")])
        .collect();
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import nir, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    eprintln!(
        "skipping: no Python with the `nir` package (set NERVE_NIR_PYTHON; .ci/run installs it)"
    );
    None
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nir_interop.py")
}

fn npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    nerve::hw::nir::read_npy(path).expect("read .npy")
}

#[test]
fn export_info_run_and_refusals() {
    let tmp = Scratch::new("nir-export");
    let data = tmp.join("data");
    write_tiny_dataset(&data);
    let run = tmp.join("run");
    expect_success(&train(
        tmp.path(),
        &data,
        &run,
        &["--arch", "4C5-LIF-MP2-FC10", "--epochs", "1"],
    ));
    let graph = tmp.join("net.nir");
    let checkpoint = run.join("checkpoint.safetensors");
    let out = expect_success(&nerve(
        tmp.path(),
        &[
            "nir".as_ref(),
            "export".as_ref(),
            "--checkpoint".as_ref(),
            checkpoint.as_os_str(),
            "--out".as_ref(),
            graph.as_os_str(),
        ],
    ));
    for node in ["conv1", "lif1", "pool1", "any1", "flatten1", "fc1", "lif2"] {
        assert!(out.contains(node), "{node} missing from:\n{out}");
    }
    let info = expect_success(&nerve(tmp.path(), &["nir", "info", "net.nir"]));
    assert!(
        info.contains("SumPool2d") && info.contains("[10]"),
        "{info}"
    );
    // Inputs as the network reads them: 2 steps of 1×28×28 images.
    let x: Vec<f32> = noise(2 * 3 * 28 * 28, 9)
        .iter()
        .map(|&b| f32::from(b) / 255.0)
        .collect();
    nerve::hw::nir::write_npy(&tmp.join("x.npy"), &[2, 3, 1, 28, 28], &x).unwrap();
    expect_success(&nerve(
        tmp.path(),
        &[
            "nir",
            "run",
            "net.nir",
            "--input",
            "x.npy",
            "--output",
            "y.npy",
            "--membrane",
            "m.npy",
        ],
    ));
    let (shape, y) = npy(&tmp.join("y.npy"));
    assert_eq!(shape, vec![2, 3, 10]);
    assert!(y.iter().all(|&v| v == 0.0 || v == 1.0));
    // A wrong input shape, a corrupt file and a network NIR cannot express: one-line errors,
    // and the earlier output stays as it was.
    let y_before = read(&tmp.join("y.npy"));
    nerve::hw::nir::write_npy(
        &tmp.join("bad.npy"),
        &[2, 3, 1, 27, 28],
        &x[..2 * 3 * 27 * 28],
    )
    .unwrap();
    expect_error(
        &nerve(
            tmp.path(),
            &[
                "nir", "run", "net.nir", "--input", "bad.npy", "--output", "y.npy",
            ],
        ),
        &["input"],
    );
    assert_eq!(
        read(&tmp.join("y.npy")),
        y_before,
        "a failed run touched y.npy"
    );
    write(&tmp.join("broken.nir"), &read(&graph)[..300]);
    expect_error(
        &nerve(tmp.path(), &["nir", "info", "broken.nir"]),
        &["broken.nir"],
    );
    let run2 = tmp.join("run-mp");
    expect_success(&train(tmp.path(), &data, &run2, &["--epochs", "1"]));
    let ck2 = run2.join("checkpoint.safetensors");
    expect_error(
        &nerve(
            tmp.path(),
            &[
                "nir".as_ref(),
                "export".as_ref(),
                "--checkpoint".as_ref(),
                ck2.as_os_str(),
                "--out".as_ref(),
                tmp.join("mp.nir").as_os_str(),
            ],
        ),
        &["max pooling of currents"],
    );

    // The Python package reads what we wrote, with type checking.
    let Some(python) = nir_python() else {
        return;
    };
    let out = Command::new(&python)
        .arg(script())
        .args(["read".as_ref(), graph.as_os_str()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nir.read refused our file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("\"conv1\": \"Conv2d\"") && text.contains("\"lif2\": \"LIF\""),
        "{text}"
    );
}

#[test]
fn graphs_written_by_the_nir_package_run_as_numpy_simulates_them() {
    let Some(python) = nir_python() else {
        return;
    };
    let tmp = Scratch::new("nir-interop");
    let out = Command::new(&python)
        .arg(script())
        .args(["write".as_ref(), tmp.path().as_os_str()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut written = Vec::new();
    for case in ["fc", "cuba", "recurrent", "conv"] {
        let dir = tmp.join(case);
        let g = dir.join("graph.nir");
        expect_success(&nerve(
            &dir,
            &[
                "nir",
                "run",
                "graph.nir",
                "--input",
                "input.npy",
                "--output",
                "y.npy",
                "--membrane",
                "m.npy",
            ],
        ));
        let (_, y) = npy(&dir.join("y.npy"));
        let (_, want) = npy(&dir.join("expected.npy"));
        assert_eq!(y, want, "{case}: spikes differ from the NumPy simulation");
        let (_, m) = npy(&dir.join("m.npy"));
        let (_, want_m) = npy(&dir.join("expected_mem.npy"));
        let worst = m
            .iter()
            .zip(&want_m)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{case}: membrane off by {worst}");
        // Read and written back by Nerve, the graph still reads in Python.
        let again = dir.join("again.nir");
        let graph = nerve::hw::nir::read(&g).unwrap();
        nerve::hw::nir::write(&again, &graph).unwrap();
        written.push(again);
    }
    let out = Command::new(&python)
        .arg(script())
        .arg("read")
        .args(&written)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
}
