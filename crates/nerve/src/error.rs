//! The one error type of the library: every message names the file, tensor or argument at fault.

use std::path::PathBuf;

/// Errors returned by Nerve's fallible functions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file whose content does not follow its format.
    #[error("{path}: {msg}")]
    Format {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A data set that could not be found in any of the searched places.
    #[error("data set '{name}' not found; looked in: {searched}")]
    DataNotFound {
        /// The data set's name.
        name: String,
        /// The places searched, in order.
        searched: String,
    },
    /// A tensor whose shape does not fit where it is used.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// The tensor or argument involved.
        what: String,
        /// The expected shape.
        expected: String,
        /// The shape found.
        got: String,
    },
    /// An invalid argument or configuration value.
    #[error("invalid {what}: {msg}")]
    Invalid {
        /// The argument or option involved.
        what: String,
        /// Why it is invalid.
        msg: String,
    },
    /// Training diverged: a loss or gradient became NaN or infinite.
    #[error("non-finite loss {value} at epoch {epoch}, step {step}; lower the learning rate or enable gradient clipping")]
    NonFinite {
        /// The offending loss value.
        value: f64,
        /// The epoch (1-based).
        epoch: usize,
        /// The step within the epoch (1-based).
        step: usize,
    },
    /// A checkpoint that does not fit the model it is loaded into.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What does not fit.
        msg: String,
    },
}

/// Result alias using [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error for a file.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An invalid-argument error.
    pub fn invalid(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            msg: msg.into(),
        }
    }
}
