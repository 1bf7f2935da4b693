//! The data sets of `nerve train` and `nerve eval`: the options that pick them and their
//! loading (IDX images or event folders), with the progress bars both commands show.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nerve::data::events::dataset::{load_event_folder, EventFolderOptions};
use nerve::data::mnist::{load_dataset, load_embedded_mnist};
use nerve::data::Samples;
use nerve::{Error, Result};

/// Options shared by `train` and `eval` that pick the data.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data set: `embedded` (a 6000/1000 MNIST subset inside the binary), `mnist`, `fashion-mnist`,
    /// or `nmnist` / `events` (event recordings in N-MNIST's folder layout, --data DIR with
    /// Train/<class>/ and Test/<class>/, binned into --steps frames)
    /// [train default: embedded; eval default: the data set the checkpoint was trained on].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Directory holding the IDX files (otherwise $NERVE_DATA, ../shared/data, /usr/share/datasets),
    /// or the event data folder.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N test samples.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Samples per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Backend: flex (pure-Rust CPU), or wgpu / cuda in builds with those features.
    #[arg(long, default_value = "flex")]
    pub device: String,
}

/// A data set's two splits, whatever their kind.
pub(crate) struct Data {
    /// The training split.
    pub train: Box<dyn Samples>,
    /// The test split.
    pub test: Box<dyn Samples>,
    /// The data set's name as the library reports it (e.g. `mnist`).
    pub name: String,
    /// Where the data came from (a directory, or the embedded subset).
    pub source: String,
}

/// Loads `name`; event folders are binned into `steps` frames, reading at most the samples the
/// limits let through.
pub(crate) fn load_data(
    name: &str,
    args: &DataArgs,
    steps: usize,
    train_limit: Option<usize>,
) -> Result<Data> {
    if name == "nmnist" || name == "events" {
        let dir = args.data.as_deref().ok_or_else(|| {
            Error::invalid(
                "--data",
                format!(
                    "--dataset {name} needs --data DIR (with Train/<class>/ and Test/<class>/)"
                ),
            )
        })?;
        let pb = bar(0, "reading".into());
        let options = EventFolderOptions {
            bins: steps,
            train_limit,
            test_limit: args.test_limit,
        };
        let splits = load_event_folder(dir, &options, &|done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        })?;
        pb.finish_and_clear();
        println!(
            "events: {} train / {} test recordings, {:.0} events per recording, binned into {} frames of 2x{}x{}",
            splits.train.len(),
            splits.test.len(),
            (splits.train.events + splits.test.events) as f64
                / (splits.train.len() + splits.test.len()).max(1) as f64,
            steps,
            splits.train.height,
            splits.train.width
        );
        return Ok(Data {
            train: Box::new(splits.train),
            test: Box::new(splits.test),
            name: name.to_string(),
            source: splits.source.display().to_string(),
        });
    }
    let splits = match name {
        "embedded" => load_embedded_mnist(),
        name => load_dataset(name, args.data.as_deref()),
    }?;
    Ok(Data {
        train: Box::new(splits.train),
        test: Box::new(splits.test),
        name: splits.name,
        source: splits.source.to_string(),
    })
}

/// A progress bar for `len` steps, labelled `prefix`.
pub(crate) fn bar(len: usize, prefix: String) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(prefix);
    pb
}
