//! Data loading (real data sets when shared/ is present, the embedded subset, error cases)
//! and PNG plotting.

use std::path::{Path, PathBuf};

use nerve::data::idx::{encode_idx, read_idx, write_idx, IdxArray};
use nerve::data::mnist::IDX_FILE_NAMES;
use nerve::data::{load_dataset, load_dataset_dir, load_embedded_mnist, locate_dataset};
use nerve::viz::{self as plot, Panel, RasterLayer, Series};
use nerve::Error;

/// The repository's `shared/data/<name>`, found like the library does, or `None`.
fn shared_dataset(name: &str) -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared").join("data").join(name))
        .find(|p| p.is_dir())
}

fn check_real(name: &str, first_train_label: u8) {
    let Some(dir) = shared_dataset(name) else {
        eprintln!(
            "skipping: shared/data not found (no shared/data/{name} above {})",
            env!("CARGO_MANIFEST_DIR")
        );
        return;
    };
    for splits in [
        load_dataset(name, None).unwrap(),
        load_dataset(name, Some(&dir)).unwrap(),
    ] {
        assert_eq!(splits.name, name);
        assert_eq!((splits.train.len(), splits.test.len()), (60_000, 10_000));
        assert_eq!((splits.train.rows, splits.train.cols), (28, 28));
        assert_eq!((splits.test.rows, splits.test.cols), (28, 28));
        assert_eq!(splits.train.images.len(), 60_000 * 784);
        assert_eq!(splits.train.labels[0], first_train_label);
        assert!(
            splits.train.class_counts().iter().all(|&c| c > 5000),
            "{name}"
        );
        assert!(!splits.source.is_empty());
    }
}

#[test]
fn real_mnist_loads_through_lookup() {
    check_real("mnist", 5);
}

#[test]
fn real_fashion_mnist_loads_through_lookup() {
    check_real("fashion-mnist", 9);
}

#[test]
fn embedded_subset_is_sane() {
    let s = load_embedded_mnist().unwrap();
    assert_eq!((s.train.len(), s.test.len()), (6000, 1000));
    assert_eq!(s.source, "embedded MNIST subset");
    assert_eq!(s.name, "mnist");
    assert_eq!(s.train.labels[0], 5);
    assert_eq!(s.test.labels[0], 7);
    assert!(s.train.labels.iter().chain(&s.test.labels).all(|&l| l < 10));
    for (split, n) in [(&s.train, 6000), (&s.test, 1000)] {
        let counts = split.class_counts();
        assert_eq!(counts.iter().sum::<usize>(), n);
        // Each digit is roughly a tenth of the data.
        assert!(
            counts.iter().all(|&c| c * 100 > n * 6 && c * 100 < n * 15),
            "{counts:?}"
        );
    }
    // Digits are ink on black: most pixels are 0, some are bright.
    let img = s.train.image(0);
    assert_eq!(img.len(), 784);
    assert!(img.iter().filter(|&&p| p == 0).count() > 400);
    assert!(img.iter().any(|&p| p > 200));
}

#[test]
fn embedded_subset_matches_real_mnist() {
    let Some(dir) = shared_dataset("mnist") else {
        eprintln!("skipping: shared/data not found (no shared/data/mnist above the crate)");
        return;
    };
    let real = load_dataset("mnist", Some(&dir)).unwrap();
    let sub = load_embedded_mnist().unwrap();
    assert_eq!(sub.train, real.train.take(6000));
    assert_eq!(sub.test, real.test.take(1000));
}

#[test]
fn missing_explicit_directory_is_data_not_found() {
    let dir = Path::new("/nonexistent/nerve-data-dir");
    let err = load_dataset("mnist", Some(dir)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::DataNotFound { .. }), "{msg}");
    assert!(msg.contains("data set 'mnist' not found"), "{msg}");
    assert!(msg.contains("/nonexistent/nerve-data-dir"), "{msg}");
    assert!(
        !msg.contains("/usr/share/datasets"),
        "no fallback expected: {msg}"
    );
}

#[test]
fn incomplete_directory_names_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    write_split(tmp.path(), 3, 3, true);
    std::fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let msg = locate_dataset("mnist", Some(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing t10k-labels-idx1-ubyte[.gz]"), "{msg}");
}

/// Writes a tiny four-file data set of 2x2 images into `dir`.
fn write_split(dir: &Path, n_images: usize, n_labels: usize, gzip: bool) {
    let images = |n: usize| IdxArray::new(vec![n, 2, 2], (0..n * 4).map(|i| i as u8).collect());
    let labels = |n: usize| IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect());
    let arrays = [
        images(n_images),
        labels(n_labels),
        images(n_images),
        labels(n_images),
    ];
    for (base, array) in IDX_FILE_NAMES.iter().zip(arrays) {
        let name = if gzip {
            format!("{base}.gz")
        } else {
            base.to_string()
        };
        write_idx(&dir.join(name), &array.unwrap(), gzip).unwrap();
    }
}

#[test]
fn tiny_directory_loads_raw_and_gzip() {
    for gzip in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        write_split(tmp.path(), 12, 12, gzip);
        let s = load_dataset_dir("tiny", tmp.path(), 10).unwrap();
        assert_eq!((s.train.len(), s.train.rows, s.train.cols), (12, 2, 2));
        assert_eq!(s.train.image(1), &[4, 5, 6, 7]);
        assert_eq!(s.source, tmp.path().display().to_string());
    }
}

#[test]
fn label_image_count_mismatch_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_split(tmp.path(), 5, 4, true);
    let msg = load_dataset("mnist", Some(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("train-labels-idx1-ubyte.gz"), "{msg}");
    assert!(
        msg.contains("label count 4 does not match image count 5"),
        "{msg}"
    );
}

#[test]
fn labels_out_of_range_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_split(tmp.path(), 12, 12, false);
    let msg = load_dataset_dir("tiny", tmp.path(), 5)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("label 5 at index 5 is out of range for 5 classes"),
        "{msg}"
    );
}

#[test]
fn truncated_raw_and_gzip_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let array = IdxArray::new(vec![10, 28, 28], vec![7; 7840]).unwrap();
    let raw = encode_idx(&array, false).unwrap();
    let header = 4 + 3 * 4;

    let path = tmp.path().join("cut-raw");
    std::fs::write(&path, &raw[..header + 1000]).unwrap();
    let msg = read_idx(&path).unwrap_err().to_string();
    let want = format!(
        "{}: truncated IDX file: expected 7840 bytes of data, found 1000",
        path.display()
    );
    assert!(msg.contains(&want), "{msg}");

    // A complete gzip stream of a truncated IDX file.
    let path = tmp.path().join("cut-content.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &raw[..raw.len() - 40]).unwrap();
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    let msg = read_idx(&path).unwrap_err().to_string();
    assert!(
        msg.contains("truncated IDX file: expected 7840 bytes of data, found 7800"),
        "{msg}"
    );

    // A gzip stream cut short.
    let gz = encode_idx(&array, true).unwrap();
    let path = tmp.path().join("cut-stream.gz");
    std::fs::write(&path, &gz[..gz.len() - 12]).unwrap();
    let msg = read_idx(&path).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("{}: truncated gzip stream", path.display())),
        "{msg}"
    );
}

#[test]
fn bad_magic_and_corrupt_gzip_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("not-idx");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n").unwrap();
    let msg = read_idx(&path).unwrap_err().to_string();
    assert!(
        msg.contains("not-idx: not an IDX file: magic number 0x89504e47"),
        "{msg}"
    );

    let path = tmp.path().join("float.idx");
    std::fs::write(&path, [0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
    let msg = read_idx(&path).unwrap_err().to_string();
    assert!(
        msg.contains("unsupported IDX element type 0x0d (32-bit float)"),
        "{msg}"
    );

    let array = IdxArray::new(vec![100], (0..100).collect()).unwrap();
    let mut gz = encode_idx(&array, true).unwrap();
    // Flip the stored CRC-32 so that only the checksum is wrong.
    let crc_at = gz.len() - 8;
    gz[crc_at] ^= 0xff;
    let path = tmp.path().join("bad-crc.gz");
    std::fs::write(&path, &gz).unwrap();
    let msg = read_idx(&path).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("{}: corrupt gzip stream", path.display())),
        "{msg}"
    );

    let path = tmp.path().join("bad-header.gz");
    std::fs::write(&path, [0x1f, 0x8b, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 2, 3]).unwrap();
    let msg = read_idx(&path).unwrap_err().to_string();
    assert!(msg.contains("bad-header.gz: corrupt gzip stream"), "{msg}");
}

/// Decodes a PNG, returning its size and RGB(A) bytes.
fn decode_png(path: &Path) -> (u32, u32, Vec<u8>, usize) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf, info.color_type.samples())
}

/// How many pixels are neither white nor grey (coloured marks), and how many are dark (text).
fn pixel_stats(rgb: &[u8], samples: usize) -> (usize, usize) {
    let mut coloured = 0;
    let mut dark = 0;
    for px in rgb.chunks_exact(samples) {
        let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
        if (r - g).abs() > 40 || (g - b).abs() > 40 || (r - b).abs() > 40 {
            coloured += 1;
        }
        if r < 80 && g < 80 && b < 80 {
            dark += 1;
        }
    }
    (coloured, dark)
}

fn assert_no_temp_files(dir: &Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".png")), "{names:?}");
}

#[test]
fn training_curves_render_to_png() {
    let tmp = tempfile::tempdir().unwrap();
    let loss: Vec<(f64, f64)> = (1..=20).map(|e| (e as f64, 2.3 / e as f64)).collect();
    let test_loss: Vec<(f64, f64)> = (1..=20)
        .map(|e| (e as f64, 2.5 / e as f64 + 0.05))
        .collect();
    let acc: Vec<(f64, f64)> = (1..=20)
        .map(|e| (e as f64, 100.0 - 60.0 / e as f64))
        .collect();
    let two = [
        Panel::new(
            "Loss",
            "cross-entropy",
            vec![
                Series::new("train", loss.clone()),
                Series::new("test", test_loss),
            ],
        ),
        Panel::new(
            "Accuracy",
            "accuracy (%)",
            vec![Series::new("test accuracy", acc)],
        )
        .with_y_range(0.0, 100.0),
    ];
    let path = tmp.path().join("curves.png");
    plot::panels(&path, "Spiking MLP on MNIST", "epoch", &two).unwrap();
    let (w, h, px, samples) = decode_png(&path);
    assert_eq!((w, h), plot::panels_size(2));
    let (coloured, dark) = pixel_stats(&px, samples);
    assert!(coloured > 500, "curves missing: {coloured} coloured pixels");
    assert!(dark > 500, "text missing: {dark} dark pixels");

    let single = tmp.path().join("single.png");
    let series = [
        Series::new("loss", loss),
        Series::new("diverged", vec![(1.0, f64::NAN)]),
    ];
    plot::training_curves(&single, "One panel", &series).unwrap();
    let (w, h, ..) = decode_png(&single);
    assert_eq!((w, h), plot::panels_size(1));
    // Rewriting replaces the file in place.
    plot::training_curves(&single, "One panel, again", &series).unwrap();
    assert_no_temp_files(tmp.path());
}

#[test]
fn spike_raster_renders_to_png() {
    let tmp = tempfile::tempdir().unwrap();
    // A cheap deterministic pseudo-random pattern; the exact spikes do not matter.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut layer = |name: &str, neurons: usize, steps: usize, per_mille: u64| {
        let mut spikes = Vec::new();
        for t in 0..steps {
            for n in 0..neurons {
                if next() % 1000 < per_mille {
                    spikes.push((t, n));
                }
            }
        }
        RasterLayer {
            name: name.into(),
            num_neurons: neurons,
            num_steps: steps,
            spikes,
        }
    };
    let layers = [
        layer("input", 784, 25, 60),
        layer("conv", 12 * 12 * 12, 25, 30),
        layer("output", 10, 25, 300),
    ];
    let path = tmp.path().join("raster.png");
    plot::spike_raster(&path, "Spikes for one test digit", &layers).unwrap();
    let (w, h, px, samples) = decode_png(&path);
    assert_eq!((w, h), plot::raster_size(&layers));
    let (coloured, dark) = pixel_stats(&px, samples);
    assert!(
        coloured > 1000,
        "spikes missing: {coloured} coloured pixels"
    );
    assert!(dark > 500, "text missing: {dark} dark pixels");
    assert_no_temp_files(tmp.path());

    let bad = RasterLayer {
        name: "bad".into(),
        num_neurons: 4,
        num_steps: 4,
        spikes: vec![(0, 4)],
    };
    let msg = plot::spike_raster(&tmp.path().join("bad.png"), "x", &[bad])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("spike raster layer 'bad'"), "{msg}");
}

#[test]
fn plotting_into_a_missing_directory_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("no-such-dir").join("curves.png");
    let err = plot::training_curves(
        &path,
        "t",
        &[Series::new("a", vec![(0.0, 1.0), (1.0, 0.5)])],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{msg}");
    assert!(msg.contains("no-such-dir/curves.png"), "{msg}");
}
