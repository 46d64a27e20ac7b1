//! tracehound's tables: Arrow schemas, the chunked Parquet store with its atomic manifest, SQL
//! over the stored tables with Apache DataFusion, exports, and the result formatting both share.
//!
//! ```no_run
//! # async fn run() -> Result<(), tracehound_tables::Error> {
//! let store = tracehound_tables::Store::open("tracehound-data")?;
//! let ctx = tracehound_tables::sql::session(&store, None).await?;
//! let batches = ctx.sql("SELECT count(*) FROM transactions").await?.collect().await?;
//! # Ok(()) }
//! ```

pub mod etl;
pub mod etl_evm;
pub mod evm_schema;
pub mod export;
pub mod format;
pub mod schema;
pub mod sql;
pub mod store;

pub use store::{ChainKind, ChainManifest, Chunk, ClosedChunk, ImportedFile, Manifest, NewImport, OpenChunk, Store, SyncedChunk};

use std::path::{Path, PathBuf};

/// Result of the tables crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the store, SQL and exports. Each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A Parquet file could not be written or read.
    #[error("{path}: {reason}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The manifest is unreadable or a commit would break it.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another process is writing to the data directory.
    #[error("data directory {0} is in use by another tracehound process (lock held on .lock); wait for it or use another --data-dir")]
    Locked(PathBuf),
    /// A write on a store opened for reading.
    #[error("data directory {0} was opened read-only")]
    ReadOnly(PathBuf),
    /// A query failed.
    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Something the user asked for does not exist.
    #[error("{0}")]
    NotFound(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn parquet(path: &Path, e: impl std::fmt::Display) -> Error {
        Error::Parquet { path: path.to_path_buf(), reason: e.to_string() }
    }
}
