//! The chunk store: Parquet files in chunks of consecutive blocks under the data directory, and a
//! manifest that says which chunks exist.
//!
//! Commit protocol (crash safe at any instant):
//! 1. every table file of the chunk is written to `<name>.parquet.tmp`, fsynced and renamed;
//! 2. the manifest is rewritten to `manifest.json.tmp`, fsynced and renamed over `manifest.json`;
//! 3. the directory is fsynced.
//!
//! Readers see only files named in the manifest. A crash before step 2 leaves files that no
//! manifest names; the next writer deletes them and writes the chunk again. Only one writer may
//! hold a data directory at a time (an exclusive lock on `<data-dir>/.lock`).

use crate::{Error, Result};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the manifest format this code writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";

/// The manifest: every committed chunk of every chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Format version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// Chains by name.
    pub chains: BTreeMap<String, ChainManifest>,
    /// Files imported from outside a node (explorer exports), by chain. They are not block
    /// ranges: each holds whatever rows one imported file had, and a reorg never removes them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub imports: BTreeMap<String, Vec<ImportedFile>>,
    /// What readers see of the imported files, by chain and table: one file of the rows the
    /// imports add (each transfer once, none that a node already gave). Data directories written
    /// before it existed have none: their imported files are read as they are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub merged_imports: BTreeMap<String, BTreeMap<String, ChunkFile>>,
}

impl Manifest {
    /// Names of every chain with chunks or imports.
    pub fn chain_names(&self) -> BTreeSet<String> {
        self.chains.keys().chain(self.imports.keys()).cloned().collect()
    }
    /// The kind of a chain's tables: `utxo` or `evm` (imported rows are EVM transfers).
    pub fn chain_kind(&self, chain: &str) -> ChainKind {
        match self.chains.get(chain) {
            Some(c) => c.kind(),
            None if self.imports.contains_key(chain) => ChainKind::Evm,
            None => ChainKind::Utxo,
        }
    }
}

/// What data model a chain's tables follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    /// Bitcoin-like: blocks, transactions, inputs, outputs.
    Utxo,
    /// Account-based: blocks, transactions, logs, traces, token_transfers, transfers.
    Evm,
}

/// One file of rows imported into a chain's table from outside a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportedFile {
    /// The table the rows belong to.
    pub table: String,
    /// The stored Parquet file.
    pub file: ChunkFile,
    /// The file the rows came from, as the user named it.
    pub origin: String,
    /// SHA-256 of the origin file's bytes: importing the same bytes twice changes nothing.
    pub sha256: String,
}

/// A file of rows imported from outside a node, for [`Store::commit_imports`].
pub struct NewImport<'a> {
    /// The file the rows came from; a later import of the same origin replaces this one.
    pub origin: &'a str,
    /// SHA-256 of the origin file's bytes.
    pub sha256: &'a str,
    /// Every good row of the file.
    pub batches: &'a [RecordBatch],
}

/// A 64-bit digest of `parts` in hex: names a file by what it was made from.
fn digest_hex<'a>(parts: impl Iterator<Item = &'a [u8]>) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// What is stored of one chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChainManifest {
    /// Committed chunks, in block order, without gaps or overlaps.
    pub chunks: Vec<Chunk>,
    /// Facts about the ingest (source, blocks skipped as stale, …), updated with each commit.
    #[serde(default)]
    pub info: BTreeMap<String, serde_json::Value>,
}

/// One committed chunk: blocks `first..=last` of every table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chunk {
    /// First block height in the chunk.
    pub first: u64,
    /// Last block height in the chunk.
    pub last: u64,
    /// Hash of the last block, to detect reorgs below the tip.
    pub last_hash: String,
    /// The chunk's file of each table.
    pub tables: BTreeMap<String, ChunkFile>,
}

/// One Parquet file of a chunk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkFile {
    /// Path relative to the data directory.
    pub path: String,
    /// Number of rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

impl ChainManifest {
    /// The data model of this chain's tables (recorded as `info.kind` by EVM ingest).
    pub fn kind(&self) -> ChainKind {
        match self.info.get("kind").and_then(|v| v.as_str()) {
            Some("evm") => ChainKind::Evm,
            _ => ChainKind::Utxo,
        }
    }
    /// Height and hash of the last committed block.
    pub fn tip(&self) -> Option<(u64, &str)> {
        self.chunks.last().map(|c| (c.last, c.last_hash.as_str()))
    }
    /// Total rows and bytes of a table.
    pub fn table_totals(&self, table: &str) -> (u64, u64) {
        self.chunks.iter().filter_map(|c| c.tables.get(table)).fold((0, 0), |(r, b), f| (r + f.rows, b + f.bytes))
    }
    /// Names of the tables this chain has.
    pub fn table_names(&self) -> BTreeSet<String> {
        self.chunks.iter().flat_map(|c| c.tables.keys().cloned()).collect()
    }
}

/// A data directory: the manifest and the chunk files it names.
pub struct Store {
    root: PathBuf,
    manifest: Manifest,
    lock: Option<File>,
    /// Files a replaced chunk left, removed one commit later so that a reader holding the
    /// manifest before the replacement can still finish.
    superseded: Vec<PathBuf>,
}

impl Store {
    /// Opens a data directory for reading. A missing directory reads as empty.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        let manifest = read_manifest(&root)?;
        Ok(Store { root, manifest, lock: None, superseded: vec![] })
    }

    /// Opens (creating if needed) a data directory for writing: takes the writer lock and removes
    /// files left by an interrupted commit.
    pub fn open_for_write(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let lock_path = root.join(".lock");
        let lock = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked(root)),
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        let manifest = read_manifest(&root)?;
        let store = Store { root, manifest, lock: Some(lock), superseded: vec![] };
        store.remove_unreferenced_files()?;
        Ok(store)
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifest as last committed.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What is stored of `chain`, if anything.
    pub fn chain(&self, chain: &str) -> Option<&ChainManifest> {
        self.manifest.chains.get(chain)
    }

    /// Absolute paths of the committed files of `table` of `chain`, in block order. A derived
    /// table (see [`Store::write_derived`]) of the chain, or else of all chains, is one file.
    pub fn table_files(&self, chain: &str, table: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> =
            self.chain(chain).map(|c| c.chunks.iter().filter_map(|ch| ch.tables.get(table)).map(|f| self.root.join(&f.path)).collect()).unwrap_or_default();
        match self.manifest.merged_imports.get(chain).and_then(|m| m.get(table)) {
            Some(merged) => files.push(self.root.join(&merged.path)),
            None => {
                if let Some(imports) = self.manifest.imports.get(chain) {
                    files.extend(imports.iter().filter(|i| i.table == table).map(|i| self.root.join(&i.file.path)));
                }
            }
        }
        if !files.is_empty() {
            return files;
        }
        [self.derived_path(Some(chain), table), self.derived_path(None, table)].into_iter().find(|p| p.is_file()).into_iter().collect()
    }

    /// Path of a derived table: one Parquet file computed from the chain tables or the label
    /// store (clusters, tags) and rewritten whole, `derived/<chain>/<table>.parquet`, or
    /// `derived/<table>.parquet` for a table that spans chains (`chain` = `None`).
    pub fn derived_path(&self, chain: Option<&str>, table: &str) -> PathBuf {
        match chain {
            Some(c) => self.root.join("derived").join(c).join(format!("{table}.parquet")),
            None => self.root.join("derived").join(format!("{table}.parquet")),
        }
    }

    /// Replaces the derived table `table` atomically (temporary file, fsync, rename).
    pub fn write_derived(&self, chain: Option<&str>, table: &str, batches: &[RecordBatch]) -> Result<(u64, u64)> {
        let path = self.derived_path(chain, table);
        let r = write_parquet_atomically(&path, batches)?;
        sync_dir(path.parent().expect("derived files live in a directory"))?;
        Ok(r)
    }

    /// [`Store::write_derived`] from batches made one at a time (a table that grows with the
    /// chain is never held whole): `schema` is the table's, `batches` yields its rows in order.
    pub fn write_derived_stream(
        &self,
        chain: Option<&str>,
        table: &str,
        schema: SchemaRef,
        batches: &mut dyn Iterator<Item = RecordBatch>,
    ) -> Result<(u64, u64)> {
        let path = self.derived_path(chain, table);
        let r = write_parquet_stream(&path, schema, batches)?;
        sync_dir(path.parent().expect("derived files live in a directory"))?;
        Ok(r)
    }

    /// Names of the derived tables of `chain` (or of all chains for `None`).
    pub fn derived_tables(&self, chain: Option<&str>) -> Vec<String> {
        let dir = match chain {
            Some(c) => self.root.join("derived").join(c),
            None => self.root.join("derived"),
        };
        let mut names: Vec<String> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".parquet")).map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Atomically adds a chunk of blocks `first..=last` to `chain`, with one file per table.
    /// `info` entries are merged into the chain's info in the same commit.
    pub fn commit_chunk(
        &mut self,
        chain: &str,
        first: u64,
        last: u64,
        last_hash: &str,
        tables: &[(&str, Vec<RecordBatch>)],
        info: BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        self.check_next_chunk(chain, first, last)?;
        let files = self.write_chunk_files(chain, first, last, tables)?;
        self.record_chunk(chain, Chunk { first, last, last_hash: last_hash.to_string(), tables: files }, info)
    }

    /// Starts a chunk of `chain` from block `first` whose rows are written as they come
    /// ([`OpenChunk::write`]), so that a chunk never has to be held in memory whole. Nothing is
    /// visible until [`Store::commit_open_chunk`]; a crash before leaves only files that no
    /// manifest names, which the next writer deletes.
    pub fn open_chunk(&self, chain: &str, first: u64, tables: &[(&str, SchemaRef)]) -> Result<OpenChunk> {
        self.check_writable()?;
        let mut files = Vec::with_capacity(tables.len());
        for (table, schema) in tables {
            let dir = self.root.join(format!("chains/{chain}/{table}"));
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let tmp = dir.join(format!("{first:010}-open.parquet.tmp"));
            let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties())).map_err(|e| Error::parquet(&tmp, e))?;
            files.push(OpenFile { table: table.to_string(), tmp, writer, rows: 0 });
        }
        Ok(OpenChunk { chain: chain.to_string(), first, files })
    }

    /// Commits a chunk written through [`Store::open_chunk`] as blocks `first..=last`: each file
    /// is finished, fsynced and renamed, then the manifest records the chunk atomically.
    pub fn commit_open_chunk(&mut self, chunk: OpenChunk, last: u64, last_hash: &str, info: BTreeMap<String, serde_json::Value>) -> Result<()> {
        self.check_next_chunk(&chunk.chain, chunk.first, last)?;
        let synced = chunk.close()?.sync()?;
        self.commit_synced_chunk(synced, last, last_hash, info)
    }

    /// Commits a chunk whose files are complete and durable ([`OpenChunk::close`], then
    /// [`ClosedChunk::sync`]) as blocks `first..=last`: the files are renamed to their final
    /// names, their directories synced, then the manifest records the chunk atomically.
    pub fn commit_synced_chunk(&mut self, chunk: SyncedChunk, last: u64, last_hash: &str, info: BTreeMap<String, serde_json::Value>) -> Result<()> {
        let ClosedChunk { chain, first, files: closed } = chunk.0;
        self.check_next_chunk(&chain, first, last)?;
        let mut files = BTreeMap::new();
        for f in closed {
            let rel = format!("chains/{chain}/{}/{first:010}-{last:010}.parquet", f.table);
            let path = self.root.join(&rel);
            fs::rename(&f.tmp, &path).map_err(|e| Error::io(&path, e))?;
            files.insert(f.table, ChunkFile { path: rel, rows: f.rows, bytes: f.bytes });
        }
        for table in files.keys() {
            sync_dir(&self.root.join(format!("chains/{chain}/{table}")))?;
        }
        self.record_chunk(&chain, Chunk { first, last, last_hash: last_hash.to_string(), tables: files }, info)
    }

    /// Checks that a chunk `first..=last` may be committed to `chain` now.
    fn check_next_chunk(&self, chain: &str, first: u64, last: u64) -> Result<()> {
        self.check_writable()?;
        let expected_first = self.chain(chain).and_then(|c| c.tip()).map(|(h, _)| h + 1);
        match expected_first {
            Some(expected) if first != expected => Err(Error::Manifest {
                path: self.root.join(MANIFEST),
                reason: format!("chunk {first}..={last} of {chain} does not follow the committed tip (next is {expected})"),
            }),
            _ => Ok(()),
        }
    }

    /// Records a chunk whose files are in place: the manifest is rewritten atomically.
    fn record_chunk(&mut self, chain: &str, chunk: Chunk, info: BTreeMap<String, serde_json::Value>) -> Result<()> {
        let mut next = self.manifest.clone();
        let entry = next.chains.entry(chain.to_string()).or_default();
        entry.chunks.push(chunk);
        entry.info.extend(info);
        self.write_manifest(next)
    }

    /// Writes one Parquet file per table for blocks `first..=last` (each atomically, then the
    /// directories synced); the manifest is not touched.
    fn write_chunk_files(&self, chain: &str, first: u64, last: u64, tables: &[(&str, Vec<RecordBatch>)]) -> Result<BTreeMap<String, ChunkFile>> {
        let mut files = BTreeMap::new();
        for (table, batches) in tables {
            let rel = format!("chains/{chain}/{table}/{first:010}-{last:010}.parquet");
            let (rows, bytes) = write_parquet_atomically(&self.root.join(&rel), batches)?;
            files.insert(table.to_string(), ChunkFile { path: rel, rows, bytes });
        }
        for (table, _) in tables {
            sync_dir(&self.root.join(format!("chains/{chain}/{table}")))?;
        }
        Ok(files)
    }

    /// Atomically changes the imported files of `table` of `chain`: adds `added` (replacing the
    /// file of the same origin, if any) and replaces the merged file readers see by `merged`
    /// (made from `basis`), in one manifest commit. With `added` = `None` only the merged file is replaced (e.g. after a
    /// node gave rows an import had).
    pub fn commit_imports(&mut self, chain: &str, table: &str, added: Option<NewImport<'_>>, merged: &[RecordBatch], basis: &[String]) -> Result<ChunkFile> {
        self.check_writable()?;
        let dir = self.root.join(format!("chains/{chain}/{table}"));
        let mut next = self.manifest.clone();
        if let Some(new) = added {
            // Named by origin and bytes: two files with the same bytes hold rows of their own
            // (each row names its file).
            let rel = format!("chains/{chain}/{table}/import-{}.parquet", digest_hex([new.origin.as_bytes(), new.sha256.as_bytes()].into_iter()));
            let (rows, bytes) = write_parquet_atomically(&self.root.join(&rel), new.batches)?;
            let list = next.imports.entry(chain.to_string()).or_default();
            list.retain(|i| !(i.table == table && i.origin == new.origin));
            list.push(ImportedFile {
                table: table.to_string(),
                file: ChunkFile { path: rel, rows, bytes },
                origin: new.origin.to_string(),
                sha256: new.sha256.to_string(),
            });
            list.sort_by(|a, b| (&a.table, &a.origin).cmp(&(&b.table, &b.origin)));
        }
        let rel = self.merged_import_path(chain, table, basis);
        let (rows, bytes) = write_parquet_atomically(&self.root.join(&rel), merged)?;
        sync_dir(&dir)?;
        let file = ChunkFile { path: rel, rows, bytes };
        next.merged_imports.entry(chain.to_string()).or_default().insert(table.to_string(), file.clone());
        self.write_manifest(next)?;
        self.remove_unreferenced_files()?;
        Ok(file)
    }

    /// Where [`Store::commit_imports`] writes the merged file made from `basis` (what it was made
    /// from: a new basis gives a new name, so a reader holding the old manifest keeps its file).
    pub fn merged_import_path(&self, chain: &str, table: &str, basis: &[String]) -> String {
        format!("chains/{chain}/{table}/imports-merged-{}.parquet", digest_hex(basis.iter().map(|b| b.as_bytes())))
    }

    /// Atomically replaces the last chunk of `chain` (which must start at `first`) by a longer
    /// one, `first..=last`: how a follower of the chain head grows its newest chunk instead of
    /// adding a small file per poll. A crash before the manifest is written leaves the old chunk.
    pub fn replace_last_chunk(
        &mut self,
        chain: &str,
        first: u64,
        last: u64,
        last_hash: &str,
        tables: &[(&str, Vec<RecordBatch>)],
        info: BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        self.check_writable()?;
        let current = self.chain(chain).and_then(|c| c.chunks.last()).map(|c| (c.first, c.last));
        match current {
            Some((f, l)) if f == first && l < last => {}
            _ => {
                return Err(Error::Manifest {
                    path: self.root.join(MANIFEST),
                    reason: format!("cannot replace the last chunk of {chain} ({current:?}) by {first}..={last}"),
                })
            }
        }
        let files = self.write_chunk_files(chain, first, last, tables)?;
        let mut next = self.manifest.clone();
        let entry = next.chains.get_mut(chain).expect("checked above");
        let old = entry.chunks.pop().expect("checked above");
        entry.chunks.push(Chunk { first, last, last_hash: last_hash.to_string(), tables: files });
        entry.info.extend(info);
        self.write_manifest(next)?;
        for f in std::mem::take(&mut self.superseded) {
            let _ = fs::remove_file(f);
        }
        self.superseded = old.tables.values().map(|f| self.root.join(&f.path)).collect();
        Ok(())
    }

    /// Removes every chunk holding a block above `height` (all chunks with `None`), so ingest can
    /// resume from the new tip after a reorg. Returns the new tip height.
    pub fn rollback(&mut self, chain: &str, height: Option<u64>) -> Result<Option<u64>> {
        self.check_writable()?;
        let mut next = self.manifest.clone();
        let Some(entry) = next.chains.get_mut(chain) else { return Ok(None) };
        entry.chunks.retain(|c| height.is_some_and(|h| c.last <= h));
        let tip = entry.tip().map(|(h, _)| h);
        if entry.chunks.is_empty() {
            next.chains.remove(chain);
        }
        self.write_manifest(next)?;
        self.remove_unreferenced_files()?;
        Ok(tip)
    }

    fn check_writable(&self) -> Result<()> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(Error::ReadOnly(self.root.clone())),
        }
    }

    fn write_manifest(&mut self, mut next: Manifest) -> Result<()> {
        next.format = MANIFEST_FORMAT;
        let path = self.root.join(MANIFEST);
        let tmp = self.root.join("manifest.json.tmp");
        let text = serde_json::to_vec_pretty(&next).expect("manifest serializes");
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&text).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.root)?;
        self.manifest = next;
        Ok(())
    }

    fn remove_unreferenced_files(&self) -> Result<()> {
        let mut referenced: BTreeSet<PathBuf> =
            self.manifest.chains.values().flat_map(|c| c.chunks.iter().flat_map(|ch| ch.tables.values().map(|f| self.root.join(&f.path)))).collect();
        referenced.extend(self.manifest.imports.values().flatten().map(|i| self.root.join(&i.file.path)));
        referenced.extend(self.manifest.merged_imports.values().flat_map(|m| m.values()).map(|f| self.root.join(&f.path)));
        let chains = self.root.join("chains");
        for chain_dir in read_dirs(&chains)? {
            for table_dir in read_dirs(&chain_dir)? {
                let entries = fs::read_dir(&table_dir).map_err(|e| Error::io(&table_dir, e))?;
                for entry in entries {
                    let path = entry.map_err(|e| Error::io(&table_dir, e))?.path();
                    if path.is_file() && !referenced.contains(&path) {
                        fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(vec![]);
    }
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            out.push(p);
        }
    }
    Ok(out)
}

fn read_manifest(root: &Path) -> Result<Manifest> {
    let path = root.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest { format: MANIFEST_FORMAT, ..Default::default() }),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| Error::Manifest { path: path.clone(), reason: e.to_string() })?;
    if m.format != MANIFEST_FORMAT {
        return Err(Error::Manifest { path, reason: format!("format {} is not the supported format {MANIFEST_FORMAT}", m.format) });
    }
    Ok(m)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// How every table file is written. Hashes, scripts and addresses are nearly all distinct:
/// dictionaries only cost time there. LZ4 (LZ4_RAW): 10% less CPU than Snappy on block-file
/// ingest, files as small (BENCHMARKS.md). DuckDB and Polars read it (tested); Spark from 3.4.
/// Columns of hashes that each row has its own of are random bytes in hex: they are written
/// without compression or min/max statistics (LZ4 shrank them by 1-6% for a tenth of ingest's
/// compression time; their min/max never prunes a file). Nor do the min/max of the other columns
/// of hex or addresses, which are kept compressed but without statistics.
fn writer_properties() -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("type"), true)
        .set_column_dictionary_enabled(ColumnPath::from("block_hash"), true)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for column in RANDOM_HASH_COLUMNS {
        b = b
            .set_column_compression(ColumnPath::from(column), Compression::UNCOMPRESSED)
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    for column in UNPRUNABLE_COLUMNS {
        let path = ColumnPath::new(column.split('.').map(String::from).collect());
        b = b.set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    b.build()
}

/// See [`writer_properties`].
const RANDOM_HASH_COLUMNS: [&str; 2] = ["hash", "spent_transaction_hash"];

/// Compressed columns whose min/max would never prune a file (see [`writer_properties`]): a
/// chunk's transactions have random hashes, and scripts and addresses have no order. `addresses`
/// is a list, so its values are the leaf column `addresses.list.item`.
const UNPRUNABLE_COLUMNS: [&str; 3] = ["transaction_hash", "script_hex", "addresses.list.item"];

/// Rows per Parquet row group. A writer holds a row group's encoded pages in memory until it is
/// full, for every table of a chunk at once. 8,192 rows (DataFusion's batch size) took 50-70 MiB
/// off block-file ingest's peak against 65,536, for 0.7% larger files; queries and the graph
/// index build read them as fast (BENCHMARKS.md).
const ROW_GROUP_ROWS: usize = 8 * 1024;

/// Closes a Parquet file written to `tmp`, fsyncs it and renames it to `path`. Returns its size.
fn finish_parquet(writer: ArrowWriter<File>, tmp: &Path, path: &Path) -> Result<u64> {
    let file = writer.into_inner().map_err(|e| Error::parquet(tmp, e))?;
    let bytes = sync_file(&file, tmp)?;
    drop(file);
    fs::rename(tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Fsyncs `file` (written at `path`) and returns its size.
fn sync_file(file: &File, path: &Path) -> Result<u64> {
    file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(file.metadata().map_err(|e| Error::io(path, e))?.len())
}

/// A chunk being written table by table ([`Store::open_chunk`]).
pub struct OpenChunk {
    chain: String,
    first: u64,
    files: Vec<OpenFile>,
}

struct OpenFile {
    table: String,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl OpenChunk {
    /// Appends `batch` to the chunk's file of table number `table` (in the order given to
    /// [`Store::open_chunk`]).
    pub fn write(&mut self, table: usize, batch: &RecordBatch) -> Result<()> {
        let f = &mut self.files[table];
        f.rows += batch.num_rows() as u64;
        f.writer.write(batch).map_err(|e| Error::parquet(&f.tmp, e))
    }

    /// First block of the chunk.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Writes each file's footer. Nothing is durable or visible yet: [`ClosedChunk::sync`] makes
    /// the files durable, then [`Store::commit_synced_chunk`] makes them visible.
    pub fn close(self) -> Result<ClosedChunk> {
        let mut files = Vec::with_capacity(self.files.len());
        for f in self.files {
            let file = f.writer.into_inner().map_err(|e| Error::parquet(&f.tmp, e))?;
            files.push(ClosedFile { table: f.table, tmp: f.tmp, file, rows: f.rows, bytes: 0 });
        }
        Ok(ClosedChunk { chain: self.chain, first: self.first, files })
    }
}

/// A chunk whose files are complete but maybe not yet on disk ([`OpenChunk::close`]).
pub struct ClosedChunk {
    chain: String,
    first: u64,
    files: Vec<ClosedFile>,
}

struct ClosedFile {
    table: String,
    tmp: PathBuf,
    file: File,
    rows: u64,
    bytes: u64,
}

impl ClosedChunk {
    /// Fsyncs the chunk's files. It needs no access to the store, so it can run on another
    /// thread while the next chunk is written.
    pub fn sync(mut self) -> Result<SyncedChunk> {
        for f in &mut self.files {
            f.bytes = sync_file(&f.file, &f.tmp)?;
        }
        Ok(SyncedChunk(self))
    }
}

/// A chunk whose files are complete and durable, ready for [`Store::commit_synced_chunk`].
pub struct SyncedChunk(ClosedChunk);

/// Writes `batches` as one Parquet file: to a temporary name, fsynced, then renamed.
/// Returns (rows, bytes).
pub fn write_parquet_atomically(path: &Path, batches: &[RecordBatch]) -> Result<(u64, u64)> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::Manifest { path: path.to_path_buf(), reason: "a chunk file needs at least one (possibly empty) batch for its schema".into() })?;
    write_parquet_stream(path, schema, &mut batches.iter().cloned())
}

/// [`write_parquet_atomically`] from batches made one at a time.
pub fn write_parquet_stream(path: &Path, schema: SchemaRef, batches: &mut dyn Iterator<Item = RecordBatch>) -> Result<(u64, u64)> {
    let dir = path.parent().expect("chunk files live in a directory");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(writer_properties())).map_err(|e| Error::parquet(&tmp, e))?;
    let mut rows = 0u64;
    for b in batches {
        rows += b.num_rows() as u64;
        writer.write(&b).map_err(|e| Error::parquet(&tmp, e))?;
    }
    let bytes = finish_parquet(writer, &tmp, path)?;
    Ok((rows, bytes))
}
