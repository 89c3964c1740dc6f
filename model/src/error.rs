//! Errors of the model crate. Every error about a file names the file.

use std::path::PathBuf;

/// What went wrong while loading, running or evaluating a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A directory expected to hold a Hugging Face checkpoint lacks a file.
    #[error("{}: {what}", path.display())]
    MissingFile { path: PathBuf, what: String },
    /// The config is malformed or uses something this decoder does not support.
    #[error("{}: config field `{field}`: {message}", path.display())]
    Config { path: PathBuf, field: String, message: String },
    /// A tensor is missing, has the wrong shape or dtype, or a weights file is malformed.
    #[error("{}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    /// A tokenizer file is malformed, or text could not be encoded.
    #[error("{}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    /// The evaluation data cannot be used (empty, too short, ...).
    #[error("{}: {message}", path.display())]
    Data { path: PathBuf, message: String },
    /// Token ids or other arguments that do not fit the model.
    #[error("{0}")]
    Input(String),
    /// A OneBit linear backend failed.
    #[error(transparent)]
    Backend(#[from] onebit_core::backend::BackendError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io { path: path.into(), source }
    }
    pub(crate) fn config(path: impl Into<PathBuf>, field: &str, message: impl ToString) -> Self {
        ModelError::Config { path: path.into(), field: field.into(), message: message.to_string() }
    }
    pub(crate) fn checkpoint(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        ModelError::Checkpoint { path: path.into(), message: message.to_string() }
    }
}
