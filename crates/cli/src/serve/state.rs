//! What the handlers share: the data directory, the key lookup, the rate limiter, metrics, the
//! indexes of the current manifest, and the bounds on heavy work (traces, bulk screening).

use super::auth::{Caller, RateLimiter, Role};
use super::metrics::Metrics;
use super::problem::ApiError;
use crate::chains::{ensure_chain_index, ChainIndex};
use crate::screening::Screener;
use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tracehound_labels::LabelStore;
use tracehound_tables::Store;

/// State shared by every request.
pub struct AppState {
    /// The data directory served.
    pub data_dir: PathBuf,
    /// A connection to the label store for key lookups (each lookup is one indexed query).
    keys: Mutex<LabelStore>,
    /// Per-key rate limit.
    pub limiter: RateLimiter,
    /// Request counts and latencies.
    pub metrics: Metrics,
    /// The index of each chain for the manifest it was opened under.
    indexes: Mutex<HashMap<String, (ManifestStamp, Arc<ChainIndex>)>>,
    /// The screener of each chain for the data, labels, clusters and incidents it was opened under.
    screeners: Mutex<HashMap<String, Opened<Screener>>>,
    /// Permits for heavy work running at once (a timed-out job keeps its permit until it ends).
    heavy: Arc<tokio::sync::Semaphore>,
    /// How long a trace or a screening may take before the client gets a 503.
    pub timeout: Duration,
    /// Writes to the label store and the `tags` table, one at a time.
    pub label_writes: Mutex<()>,
    /// Log every request on standard error (`-v`).
    pub access_log: bool,
}

/// What was opened, with the stamps of the files it was opened from.
type Opened<T> = (Vec<FileStamp>, Arc<T>);

/// What identifies a version of a file: size, modification time and inode (a file replaced by a
/// rename is a new inode; one written in place changes size or time).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp(Option<(u64, SystemTime, u64)>);

fn file_stamp(path: &Path) -> FileStamp {
    let m = std::fs::metadata(path).ok();
    #[cfg(unix)]
    let inode = |m: &std::fs::Metadata| std::os::unix::fs::MetadataExt::ino(m);
    #[cfg(not(unix))]
    let inode = |_: &std::fs::Metadata| 0u64;
    FileStamp(m.and_then(|m| Some((m.len(), m.modified().ok()?, inode(&m)))))
}

/// What identifies a version of `manifest.json`: it is replaced at every commit.
type ManifestStamp = FileStamp;

fn manifest_stamp(data_dir: &Path) -> ManifestStamp {
    file_stamp(&data_dir.join("manifest.json"))
}

/// Everything a screening depends on: the committed data, the labels (SQLite writes its
/// changes to the `-wal` file first), the clusters and the users' incidents (their attacker
/// addresses are sources of stolen funds).
fn screening_stamp(data_dir: &Path, chain: &str) -> Vec<FileStamp> {
    let labels = crate::labels::labels_path(data_dir);
    let mut wal = labels.clone().into_os_string();
    wal.push("-wal");
    vec![
        manifest_stamp(data_dir),
        file_stamp(&labels),
        file_stamp(Path::new(&wal)),
        file_stamp(&tracehound_graph::cluster::clusters_path(data_dir, chain)),
        file_stamp(&data_dir.join("incidents")),
    ]
}

impl AppState {
    /// State for serving `data_dir`.
    pub fn new(data_dir: &Path, rate: f64, timeout: Duration, heavy_jobs: usize, access_log: bool) -> Result<AppState> {
        Ok(AppState {
            data_dir: data_dir.to_path_buf(),
            keys: Mutex::new(crate::labels::open_labels(data_dir)?),
            limiter: RateLimiter::new(rate),
            metrics: Metrics::new(),
            indexes: Mutex::new(HashMap::new()),
            screeners: Mutex::new(HashMap::new()),
            heavy: Arc::new(tokio::sync::Semaphore::new(heavy_jobs)),
            timeout,
            label_writes: Mutex::new(()),
            access_log,
        })
    }

    /// The active key whose SHA-256 is `hash`.
    pub fn key_by_hash(&self, hash: &str) -> Result<Option<Caller>> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        Ok(keys.active_api_key(hash)?.and_then(|k| Some(Caller { id: k.id, role: Role::from_name(&k.role)?, name: k.name })))
    }

    /// The stored data as committed now; 404 when `chain` is not stored.
    pub fn store_with(&self, chain: &str) -> Result<Store, ApiError> {
        let store = Store::open(&self.data_dir).map_err(|e| ApiError::internal(&e.into()))?;
        if !store.manifest().chain_names().contains(chain) {
            let stored: Vec<String> = store.manifest().chain_names().into_iter().collect();
            return Err(ApiError::not_found(format!(
                "no chain {chain:?} is stored (stored: {})",
                if stored.is_empty() { "none".into() } else { stored.join(", ") }
            )));
        }
        Ok(store)
    }

    /// The index of `chain` for the committed data: the one already open while the manifest is
    /// unchanged, else brought up to date (extended with new chunks) and opened again.
    pub fn index(&self, chain: &str) -> Result<(Store, Arc<ChainIndex>), ApiError> {
        let stamp = manifest_stamp(&self.data_dir);
        let store = self.store_with(chain)?;
        let mut indexes = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, idx)) = indexes.get(chain) {
            if *s == stamp {
                return Ok((store, idx.clone()));
            }
        }
        let idx = Arc::new(ensure_chain_index(&store, chain, true).map_err(|e| ApiError::internal(&e))?);
        indexes.insert(chain.to_string(), (stamp, idx.clone()));
        Ok((store, idx))
    }

    /// The screener of `chain` for what is committed and labelled now: the one already open
    /// while nothing it depends on changed, else the exposure index brought up to date (rebuilt
    /// when the chain, the labels or the clusters changed) and opened again.
    pub fn screener(&self, chain: &str) -> Result<Arc<Screener>, ApiError> {
        let stamp = screening_stamp(&self.data_dir, chain);
        let mut screeners = self.screeners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, screener)) = screeners.get(chain) {
            if *s == stamp {
                return Ok(screener.clone());
            }
        }
        self.store_with(chain)?;
        let (screener, _) = crate::screening::ensure_exposure(&self.data_dir, chain, crate::screening::stored_horizon(&self.data_dir, chain), true)
            .map_err(|e| ApiError::internal(&e))?;
        let screener = Arc::new(screener);
        screeners.insert(chain.to_string(), (stamp, screener.clone()));
        Ok(screener)
    }

    /// Runs light blocking work (lookups) off the async threads.
    pub async fn blocking<T: Send + 'static>(self: &Arc<Self>, f: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
        let st = self.clone();
        tokio::task::spawn_blocking(move || f(&st)).await.map_err(|e| ApiError::internal(&anyhow::anyhow!("request task failed: {e}")))?
    }

    /// Runs heavy work (a trace, a screening) with a permit and the server's timeout: 503 when
    /// every permit is taken or when it takes longer than `--timeout`.
    pub async fn heavy<T: Send + 'static>(
        self: &Arc<Self>,
        what: &str,
        f: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .heavy
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::unavailable(format!("the server is busy with other traces and screenings; retry {what} shortly")).retry_after(5))?;
        let st = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&st)
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(joined) => joined.map_err(|e| ApiError::internal(&anyhow::anyhow!("{what} failed: {e}")))?,
            Err(_) => Err(ApiError::unavailable(format!(
                "{what} took longer than the server allows ({} s, its --timeout): narrow it (fewer items, fewer hops) or retry later",
                self.timeout.as_secs_f64()
            ))
            .retry_after(self.timeout.as_secs().max(1))),
        }
    }
}
