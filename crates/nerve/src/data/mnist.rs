//! MNIST-style image data sets (MNIST, Fashion-MNIST): lookup on disk, loading, and an
//! embedded MNIST subset that needs no download.

use std::env;
use std::path::{Path, PathBuf};

use crate::data::idx::{parse_idx, read_idx, IdxArray};
use crate::error::{Error, Result};

/// The data sets that [`load_dataset`] knows by name.
pub const DATASET_NAMES: [&str; 2] = ["mnist", "fashion-mnist"];

/// Environment variable naming a directory that holds data sets.
pub const DATA_ENV_VAR: &str = "NERVE_DATA";

/// System-wide directory searched last (where Debian's `dataset-fashion-mnist` installs).
pub const SYSTEM_DATA_DIR: &str = "/usr/share/datasets";

/// Base names of the four IDX files of a data set: train images, train labels, test images, test labels.
pub const IDX_FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Where the embedded subset is said to come from in [`ImageSplits::source`].
pub const EMBEDDED_SOURCE: &str = "embedded MNIST subset";

const DIGIT_NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

const FASHION_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

// The first 6000 training and 1000 test digits of MNIST; see assets/mnist-subset/README.md.
const EMBEDDED_FILES: [&[u8]; 4] = [
    include_bytes!("../../assets/mnist-subset/train-images-idx3-ubyte.gz"),
    include_bytes!("../../assets/mnist-subset/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../assets/mnist-subset/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../assets/mnist-subset/t10k-labels-idx1-ubyte.gz"),
];

/// Grey-scale images of equal size with one class label each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDataset {
    /// Pixels of all images, row-major, `len() * rows * cols` bytes.
    pub images: Vec<u8>,
    /// One label per image, each below `num_classes`.
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// Number of classes; every label is below it.
    pub num_classes: usize,
}

impl ImageDataset {
    /// Builds a data set, checking sizes and label range.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        num_classes: usize,
    ) -> Result<Self> {
        let data = Self {
            images,
            labels,
            rows,
            cols,
            num_classes,
        };
        data.validate()
            .map_err(|msg| Error::invalid("image data set", msg))?;
        Ok(data)
    }

    /// Builds a data set from an `[N, rows, cols]` image array and an `[N]` label array;
    /// the paths name the arrays' files in error messages.
    pub fn from_idx(
        images: IdxArray,
        labels: IdxArray,
        num_classes: usize,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Self> {
        let [n, rows, cols] = images.dims[..] else {
            return Err(Error::format(
                images_path,
                format!(
                    "expected 3 dimensions [N, rows, cols] for images, found {:?}",
                    images.dims
                ),
            ));
        };
        let [num_labels] = labels.dims[..] else {
            return Err(Error::format(
                labels_path,
                format!(
                    "expected 1 dimension [N] for labels, found {:?}",
                    labels.dims
                ),
            ));
        };
        if num_labels != n {
            return Err(Error::format(
                labels_path,
                format!(
                    "label count {num_labels} does not match image count {n} in {}",
                    images_path.display()
                ),
            ));
        }
        let data = Self {
            images: images.data,
            labels: labels.data,
            rows,
            cols,
            num_classes,
        };
        data.validate()
            .map_err(|msg| Error::format(labels_path, msg))?;
        Ok(data)
    }

    /// Checks internal consistency, returning what is wrong.
    fn validate(&self) -> std::result::Result<(), String> {
        let pixels = self.rows.checked_mul(self.cols).filter(|&p| p > 0);
        let Some(pixels) = pixels else {
            return Err(format!(
                "image size {}x{} is empty or too large",
                self.rows, self.cols
            ));
        };
        if self.num_classes == 0 || self.num_classes > 256 {
            return Err(format!(
                "num_classes must be in 1..=256, got {}",
                self.num_classes
            ));
        }
        if self.labels.len().checked_mul(pixels) != Some(self.images.len()) {
            return Err(format!(
                "label count {} does not match image count ({} bytes of {}x{} images)",
                self.labels.len(),
                self.images.len(),
                self.rows,
                self.cols
            ));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= self.num_classes)
        {
            return Err(format!(
                "label {l} at index {i} is out of range for {} classes",
                self.num_classes
            ));
        }
        Ok(())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the data set has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (`rows * cols`).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`, row-major.
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The label of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// Image `i` and its label, or `None` when out of range.
    pub fn get(&self, i: usize) -> Option<(&[u8], u8)> {
        (i < self.len()).then(|| (self.image(i), self.labels[i]))
    }

    /// A copy of the first `n` images (all of them if `n >= len()`).
    pub fn take(&self, n: usize) -> ImageDataset {
        let n = n.min(self.len());
        ImageDataset {
            images: self.images[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
            num_classes: self.num_classes,
        }
    }

    /// How many images each class has, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        // The fields are public, so a label may have been changed after validation.
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }
}

/// A data set's training and test splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSplits {
    /// The training split.
    pub train: ImageDataset,
    /// The test split.
    pub test: ImageDataset,
    /// The data set's name, e.g. `"mnist"`.
    pub name: String,
    /// Where it was loaded from (a directory, or [`EMBEDDED_SOURCE`]), for printing.
    pub source: String,
}

/// Human-readable class names of a known data set, indexed by label.
pub fn class_names(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "mnist" => Some(&DIGIT_NAMES),
        "fashion-mnist" => Some(&FASHION_NAMES),
        _ => None,
    }
}

/// Checks that `name` is a known data set.
fn check_name(name: &str) -> Result<()> {
    if DATASET_NAMES.contains(&name) {
        Ok(())
    } else {
        Err(Error::invalid(
            "data set",
            format!(
                "unknown data set '{name}'; expected one of {}",
                DATASET_NAMES.join(", ")
            ),
        ))
    }
}

/// The paths of the four IDX files in `dir` (each `.gz` or raw), or the base names missing.
fn idx_files_in(dir: &Path) -> std::result::Result<[PathBuf; 4], Vec<&'static str>> {
    let mut found = Vec::with_capacity(4);
    let mut missing = Vec::new();
    for base in IDX_FILE_NAMES {
        let gz = dir.join(format!("{base}.gz"));
        let raw = dir.join(base);
        if gz.is_file() {
            found.push(gz);
        } else if raw.is_file() {
            found.push(raw);
        } else {
            missing.push(base);
        }
    }
    found.try_into().map_err(|_| missing)
}

/// The places searched, in order, besides an explicit directory.
struct SearchRoots {
    env_dir: Option<PathBuf>,
    starts: Vec<PathBuf>,
    system_dir: PathBuf,
}

impl SearchRoots {
    /// The roots of this process: `NERVE_DATA`, the current and crate directories, the system one.
    fn from_env() -> Self {
        let env_dir = env::var_os(DATA_ENV_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let mut starts = Vec::new();
        if let Ok(cwd) = env::current_dir() {
            starts.push(cwd);
        }
        // Tests and `cargo run` start inside the repository, but an installed binary may not.
        starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        Self {
            env_dir,
            starts,
            system_dir: PathBuf::from(SYSTEM_DATA_DIR),
        }
    }

    /// Candidate directories for data set `name`, in search order, without duplicates.
    fn candidates(&self, name: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut push = |p: PathBuf| {
            if !out.contains(&p) {
                out.push(p);
            }
        };
        if let Some(dir) = &self.env_dir {
            push(dir.join(name));
            push(dir.clone());
        }
        for start in &self.starts {
            for ancestor in start.ancestors() {
                push(ancestor.join("shared").join("data").join(name));
            }
        }
        push(self.system_dir.join(name));
        out
    }
}

/// Finds the directory holding data set `name` ("mnist" or "fashion-mnist").
///
/// Order: `explicit` (no fallback when given), then `$NERVE_DATA/<name>` and `$NERVE_DATA`,
/// then `shared/data/<name>` in every ancestor of the current and crate directories,
/// then `/usr/share/datasets/<name>`.
pub fn locate_dataset(name: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    check_name(name)?;
    locate_in(name, explicit, &SearchRoots::from_env())
}

fn locate_in(name: &str, explicit: Option<&Path>, roots: &SearchRoots) -> Result<PathBuf> {
    let candidates = match explicit {
        // An explicit directory may hold the files or a `<name>/` folder with them.
        Some(dir) => vec![dir.to_path_buf(), dir.join(name)],
        None => roots.candidates(name),
    };
    let mut searched = Vec::with_capacity(candidates.len());
    for dir in candidates {
        if !dir.is_dir() {
            searched.push(format!("{} (no such directory)", dir.display()));
            continue;
        }
        match idx_files_in(&dir) {
            Ok(_) => return Ok(dir),
            Err(missing) => searched.push(format!(
                "{} (missing {})",
                dir.display(),
                missing
                    .iter()
                    .map(|m| format!("{m}[.gz]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    Err(Error::DataNotFound {
        name: name.to_string(),
        searched: searched.join("; "),
    })
}

/// Loads a known data set by name, from `dir` if given, else from the first place that
/// [`locate_dataset`] finds.
pub fn load_dataset(name: &str, dir: Option<&Path>) -> Result<ImageSplits> {
    let dir = locate_dataset(name, dir)?;
    load_dataset_dir(name, &dir, 10)
}

/// Loads the four IDX files (each `.gz` or raw) directly from `dir`, naming the result `name`.
pub fn load_dataset_dir(name: &str, dir: &Path, num_classes: usize) -> Result<ImageSplits> {
    let files = idx_files_in(dir).map_err(|missing| Error::DataNotFound {
        name: name.to_string(),
        searched: format!(
            "{} (missing {})",
            dir.display(),
            missing
                .iter()
                .map(|m| format!("{m}[.gz]"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })?;
    let [train_images, train_labels, test_images, test_labels] = &files;
    let train = ImageDataset::from_idx(
        read_idx(train_images)?,
        read_idx(train_labels)?,
        num_classes,
        train_images,
        train_labels,
    )?;
    let test = ImageDataset::from_idx(
        read_idx(test_images)?,
        read_idx(test_labels)?,
        num_classes,
        test_images,
        test_labels,
    )?;
    check_same_shape(&train, &test, test_images)?;
    Ok(ImageSplits {
        train,
        test,
        name: name.to_string(),
        source: dir.display().to_string(),
    })
}

/// Both splits must have the same image size, or a model could not take both.
fn check_same_shape(train: &ImageDataset, test: &ImageDataset, test_path: &Path) -> Result<()> {
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(Error::format(
            test_path,
            format!(
                "test images are {}x{} but training images are {}x{}",
                test.rows, test.cols, train.rows, train.cols
            ),
        ));
    }
    Ok(())
}

/// The embedded MNIST subset: the first 6000 training and 1000 test digits.
pub fn load_embedded_mnist() -> Result<ImageSplits> {
    let origin = |i: usize| PathBuf::from(format!("<embedded>/{}.gz", IDX_FILE_NAMES[i]));
    let parsed = |i: usize| parse_idx(EMBEDDED_FILES[i], &origin(i));
    let train = ImageDataset::from_idx(parsed(0)?, parsed(1)?, 10, &origin(0), &origin(1))?;
    let test = ImageDataset::from_idx(parsed(2)?, parsed(3)?, 10, &origin(2), &origin(3))?;
    check_same_shape(&train, &test, &origin(2))?;
    Ok(ImageSplits {
        train,
        test,
        name: "mnist".to_string(),
        source: EMBEDDED_SOURCE.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(env_dir: Option<&Path>, start: &Path, system: &Path) -> SearchRoots {
        SearchRoots {
            env_dir: env_dir.map(Path::to_path_buf),
            starts: vec![start.to_path_buf()],
            system_dir: system.to_path_buf(),
        }
    }

    #[test]
    fn candidates_follow_the_documented_order() {
        let r = roots(
            Some(Path::new("/env")),
            Path::new("/a/b"),
            Path::new("/sys"),
        );
        let c: Vec<String> = r
            .candidates("mnist")
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            c,
            [
                "/env/mnist",
                "/env",
                "/a/b/shared/data/mnist",
                "/a/shared/data/mnist",
                "/shared/data/mnist",
                "/sys/mnist"
            ]
        );
    }

    #[test]
    fn not_found_lists_every_place() {
        let r = roots(
            None,
            Path::new("/nonexistent-nerve/x"),
            Path::new("/nonexistent-sys"),
        );
        let err = locate_in("mnist", None, &r).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::DataNotFound { .. }), "{msg}");
        for p in [
            "/nonexistent-nerve/x/shared/data/mnist",
            "/shared/data/mnist",
            "/nonexistent-sys/mnist",
        ] {
            assert!(msg.contains(p), "{msg}");
        }
    }

    #[test]
    fn explicit_directory_has_no_fallback() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR"));
        let r = roots(None, shared, Path::new("/nonexistent-sys"));
        let err = locate_in("mnist", Some(Path::new("/nonexistent-nerve/mine")), &r).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::DataNotFound { .. }), "{msg}");
        assert!(msg.contains("/nonexistent-nerve/mine"), "{msg}");
        assert!(!msg.contains("shared/data"), "{msg}");
    }

    #[test]
    fn class_names_cover_ten_classes() {
        assert_eq!(class_names("mnist").unwrap()[7], "7");
        assert_eq!(class_names("fashion-mnist").unwrap()[9], "Ankle boot");
        assert!(class_names("cifar").is_none());
    }

    #[test]
    fn unknown_name_is_rejected() {
        let msg = locate_dataset("cifar-10", None).unwrap_err().to_string();
        assert!(msg.contains("unknown data set 'cifar-10'"), "{msg}");
    }

    #[test]
    fn new_checks_labels_and_counts() {
        assert!(ImageDataset::new(vec![0; 8], vec![1, 2], 2, 2, 10).is_ok());
        let msg = ImageDataset::new(vec![0; 8], vec![1], 2, 2, 10)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("does not match"), "{msg}");
        let msg = ImageDataset::new(vec![0; 8], vec![1, 10], 2, 2, 10)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("label 10 at index 1 is out of range for 10 classes"),
            "{msg}"
        );
    }

    #[test]
    fn accessors_slice_images() {
        let d = ImageDataset::new((0..12).collect(), vec![3, 4, 5], 2, 2, 10).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.image(1), &[4, 5, 6, 7]);
        assert_eq!(d.get(2), Some((&[8u8, 9, 10, 11][..], 5)));
        assert_eq!(d.get(3), None);
        assert_eq!(d.take(2).len(), 2);
        assert_eq!(d.take(9).len(), 3);
        assert_eq!(d.class_counts()[3..6], [1, 1, 1]);
    }

    #[test]
    fn embedded_subset_loads() {
        let s = load_embedded_mnist().unwrap();
        assert_eq!((s.train.len(), s.test.len()), (6000, 1000));
        assert_eq!((s.train.rows, s.train.cols), (28, 28));
        assert_eq!(s.train.labels[0], 5);
        assert_eq!(s.source, EMBEDDED_SOURCE);
    }
}
