//! PyTorch `.pth` state dicts: the checked-in files written by real `torch.save`
//! (`files/make_pth_fixtures.py`), the same script rerun when a Python with torch is at hand, and
//! every refusal (foreign globals, legacy format, corrupt archives) as one named error.

use std::path::{Path, PathBuf};
use std::process::Command;

use nerve::store::pth::{parse_pth, read_pth, StateDict, StorageDtype};

fn files() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lm/files")
}

/// A Python that can import torch: `NERVE_TORCH_PYTHON`, else `python3` if it has torch.
fn torch_python() -> Option<String> {
    let candidates = std::env::var("NERVE_TORCH_PYTHON")
        .into_iter()
        .chain(["python3".to_string()]);
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    None
}

fn check_tiny(dict: &StateDict) {
    let names: Vec<&str> = dict.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "model.f32",
            "model.f16_transposed",
            "model.bf16",
            "model.f64_slice",
            "model.i64",
            "model.u8",
            "model.bool",
            "model.scalar",
            "model.empty",
            "model.param",
            "model.shared_row1",
            "model.shared_col2"
        ]
    );
    let t = |name: &str| dict.get(&format!("model.{name}")).expect(name).clone();
    let f32 = t("f32");
    assert_eq!(
        (f32.dtype, f32.shape.as_slice()),
        (StorageDtype::F32, &[2, 3][..])
    );
    assert_eq!(f32.values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let tr = t("f16_transposed");
    assert_eq!(
        (tr.dtype, tr.shape.as_slice()),
        (StorageDtype::F16, &[3, 2][..])
    );
    assert_eq!(tr.values, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(t("bf16").values, [1.5, -2.0, 0.25]);
    assert_eq!(t("bf16").dtype, StorageDtype::BF16);
    let slice = t("f64_slice");
    assert_eq!(
        (slice.dtype, slice.values.as_slice()),
        (StorageDtype::F64, &[3.0, 4.0, 5.0, 6.0][..])
    );
    assert_eq!(t("i64").values, [-1.0, 7.0]);
    assert_eq!(t("u8").values, [0.0, 255.0]);
    assert_eq!(t("bool").values, [1.0, 0.0, 1.0]);
    let scalar = t("scalar");
    assert!(scalar.shape.is_empty());
    assert_eq!(scalar.values, [3.5]);
    let empty = t("empty");
    assert_eq!(
        (empty.shape.as_slice(), empty.values.len()),
        (&[0, 3][..], 0)
    );
    assert_eq!(t("param").values, [0.5, 0.5]);
    assert_eq!(t("shared_row1").values, [4.0, 5.0, 6.0, 7.0]);
    assert_eq!(t("shared_col2").values, [2.0, 6.0, 10.0]);
    assert_eq!(dict.num_values(), 6 + 6 + 3 + 4 + 2 + 2 + 3 + 1 + 2 + 4 + 3);
}

#[test]
fn reads_the_checked_in_torch_save_file() {
    check_tiny(&read_pth(&files().join("tiny_state_dict.pth")).unwrap());
}

#[test]
fn reads_a_file_written_now_by_torch() {
    let Some(py) = torch_python() else {
        eprintln!("skipped: no Python with torch (set NERVE_TORCH_PYTHON); the checked-in file is tested instead");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(py)
        .arg(files().join("make_pth_fixtures.py"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    check_tiny(&read_pth(&dir.path().join("tiny_state_dict.pth")).unwrap());
}

fn err(bytes: &[u8]) -> String {
    parse_pth(bytes, Path::new("bad.pth"))
        .unwrap_err()
        .to_string()
}

/// A zip archive holding `entries`, stored as torch stores them.
fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    buf.into_inner()
}

#[test]
fn refuses_code_by_name_and_never_runs_it() {
    // pickle.dumps(os.system) followed by a call: what a malicious checkpoint does.
    let program = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.";
    let bytes = archive(&[("evil/data.pkl", program), ("evil/byteorder", b"little")]);
    let msg = err(&bytes);
    assert!(
        msg.contains("refusing pickle global 'posix.system'"),
        "{msg}"
    );
    assert!(msg.starts_with("bad.pth: evil/data.pkl:"), "{msg}");
    // builtins.eval through STACK_GLOBAL (protocol 4).
    let program = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
    let msg = err(&archive(&[("a/data.pkl", program)]));
    assert!(msg.contains("'builtins.eval'"), "{msg}");
    // Object construction opcodes are refused by name.
    let program = b"\x80\x02cos\nsystem\n)\x81.";
    assert!(err(&archive(&[("a/data.pkl", program)])).contains("'os.system'"));
    let program = b"\x80\x02(I1\ni__main__\nEvil\n.";
    let msg = err(&archive(&[("a/data.pkl", program)]));
    assert!(msg.contains("opcode INT"), "{msg}");
}

#[test]
fn every_malformed_file_gets_one_named_line() {
    let legacy = std::fs::read(files().join("legacy_state_dict.pth")).unwrap();
    let msg = err(&legacy);
    assert!(msg.contains("legacy (non-zip) torch.save format"), "{msg}");
    assert!(err(b"").contains("no zip signature"));
    assert!(err(b"hello world").contains("no zip signature"));
    let good = std::fs::read(files().join("tiny_state_dict.pth")).unwrap();
    assert!(err(&good[..good.len() / 2]).contains("not a readable zip archive"));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (archive(&[("x/other.txt", b"hi")]), "without data.pkl"),
        (
            archive(&[("m/constants.pkl", b""), ("m/code/x.py", b"")]),
            "TorchScript archive",
        ),
        (
            archive(&[("a/data.pkl", b"\x80\x02}q\x00.")]),
            "holds no tensors",
        ),
        (
            archive(&[("a/data.pkl", b"\x80\x02}q\x00")]),
            "without STOP",
        ),
        (
            archive(&[("a/data.pkl", b"\x80\x02h\x05.")]),
            "memo entry 5",
        ),
        (
            archive(&[("a/data.pkl", b"\x80\x02}."), ("a/byteorder", b"big")]),
            "byte order 'big'",
        ),
    ];
    for (bytes, want) in cases {
        let msg = err(&bytes);
        assert!(msg.contains(want), "wanted '{want}' in: {msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}

/// The tiny file with storage entries replaced (`Some`) or removed (`None`).
fn tiny_with(storages: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    use std::io::Read;
    let good = std::fs::read(files().join("tiny_state_dict.pth")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(good)).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        match storages
            .iter()
            .find(|(k, _)| name.ends_with(&format!("/data/{k}")))
        {
            Some((_, Some(b))) => entries.push((name, b.to_vec())),
            Some((_, None)) => {}
            None => entries.push((name, bytes)),
        }
    }
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    archive(&refs)
}

#[test]
fn short_or_missing_storages_name_the_tensor() {
    let msg = err(&tiny_with(&[("0", Some(b"\0\0\0\0"))]));
    assert!(
        msg.contains("tensor 'model.f32'") && msg.contains("need 24"),
        "{msg}"
    );
    let msg = err(&tiny_with(&[("2", None)]));
    assert!(
        msg.contains("tensor 'model.bf16'") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn cycles_and_deep_nesting_neither_leak_nor_overflow() {
    use nerve::store::pth::pickle::unpickle_with;
    // A list that holds itself, and a dict that holds a list that holds the dict.
    let cyclic: &[&[u8]] = &[
        b"\x80\x02]q\x00h\x00a.",
        b"\x80\x02}q\x00X\x01\x00\x00\x00k]q\x01h\x00as.",
    ];
    for program in cyclic {
        assert!(unpickle_with(program, |_| ()).is_ok());
        let msg = err(&archive(&[("a/data.pkl", program)]));
        assert!(msg.contains("holds no tensors"), "{msg}");
    }
    // A million nested tuples (one byte each) and half a million nested lists: released
    // without deep recursion.
    let mut tuples = b"\x80\x02N".to_vec();
    tuples.extend(std::iter::repeat_n(0x85u8, 1_000_000));
    tuples.push(b'.');
    assert!(unpickle_with(&tuples, |_| ()).is_ok());
    let mut lists = b"\x80\x02".to_vec();
    lists.extend(std::iter::repeat_n(b']', 500_000));
    lists.extend(std::iter::repeat_n(b'a', 499_999));
    lists.push(b'.');
    assert!(unpickle_with(&lists, |_| ()).is_ok());
    let msg = err(&archive(&[("a/data.pkl", &lists)]));
    assert!(msg.contains("holds no tensors"), "{msg}");
}
