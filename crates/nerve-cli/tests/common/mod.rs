//! Helpers shared by the end-to-end tests of the `nerve` binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nerve::data::idx::{encode_idx, IdxArray};

/// A scratch directory under Cargo's per-target temporary folder, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("nerve-cli-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs the `nerve` binary in `cwd` with `args`; `$NERVE_DATA` is cleared so only `--data` counts.
pub fn nerve<S: AsRef<std::ffi::OsStr>>(cwd: &Path, args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nerve"))
        .args(args)
        .current_dir(cwd)
        .env_remove("NERVE_DATA")
        .output()
        .expect("run the nerve binary")
}

pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success and returns stdout.
pub fn expect_success(out: &Output) -> String {
    assert!(out.status.success(), "expected success\n{}", describe(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a clean failure: exit status 1 (not a panic), one `error: ...` line on stderr that
/// contains every one of `needles`. Returns that line.
pub fn expect_error(out: &Output, needles: &[&str]) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit status 1\n{}",
        describe(out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr\n{}",
        describe(out)
    );
    let line = lines[0];
    assert!(
        line.starts_with("error: "),
        "expected 'error: ...'\n{}",
        describe(out)
    );
    for needle in needles {
        assert!(
            line.contains(needle),
            "the error should mention '{needle}'\n{}",
            describe(out)
        );
    }
    line.to_string()
}

/// Every file of `dir` with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, read(&path))
        })
        .collect()
}

pub fn assert_unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>) {
    let after = snapshot(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the files in {} changed",
        dir.display()
    );
    for (name, bytes) in before {
        assert!(
            after[name] == *bytes,
            "{} changed after the failed run",
            dir.join(name).display()
        );
    }
}

/// Images per split of the tiny data set.
pub const IMAGES: usize = 8;
/// Side of the (MNIST-sized) images.
pub const SIDE: usize = 28;

/// Options that keep a training run to a fraction of a second, even in a debug build.
pub const TINY_RUN: [&str; 8] = [
    "--dataset",
    "mnist",
    "--steps",
    "2",
    "--batch-size",
    "4",
    "--test-limit",
    "8",
];

/// The architecture of the tiny runs unless a test names another.
pub const TINY_ARCH: &str = "4C5-MP2-FC10";

/// Deterministic pseudo-random bytes (a 64-bit LCG), so failures reproduce exactly.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// Writes a valid MNIST-style data set of `IMAGES` train and test images (raw IDX) into `dir`.
pub fn write_tiny_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the data directory");
    for (i, split) in ["train", "t10k"].into_iter().enumerate() {
        let images = IdxArray::new(
            vec![IMAGES, SIDE, SIDE],
            noise(IMAGES * SIDE * SIDE, 1 + i as u64),
        )
        .expect("consistent image array");
        let labels = IdxArray::new(vec![IMAGES], (0..IMAGES as u8).map(|l| l % 10).collect())
            .expect("consistent label array");
        write(
            &dir.join(format!("{split}-images-idx3-ubyte")),
            &encode_idx(&images, false).expect("encode images"),
        );
        write(
            &dir.join(format!("{split}-labels-idx1-ubyte")),
            &encode_idx(&labels, false).expect("encode labels"),
        );
    }
}

/// `nerve train` with the tiny options, the data in `data`, output to `out`, and `extra` options
/// (which may name another `--arch`).
pub fn train(cwd: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<OsString> = vec!["train".into()];
    args.extend(TINY_RUN.iter().map(OsString::from));
    if !extra.contains(&"--arch") {
        args.extend(["--arch".into(), TINY_ARCH.into()]);
    }
    args.extend(["--data".into(), data.into(), "--out".into(), out.into()]);
    args.extend(extra.iter().map(OsString::from));
    nerve(cwd, &args)
}
