//! The exposure index on disk: every address's exposure entries, memory-mapped, so a screening is
//! a lookup. One file per chain, `<data-dir>/index/<chain>/exposure.idx`, written whole (tmp +
//! fsync + rename) and checked like the graph index.
//!
//! Sections: `meta` (JSON [`ExposureMeta`]), `addr_start` (u64 per address + 1: the entries of
//! address `a` are `addr_start[a]..addr_start[a + 1]`), `entries` (five u64 words each: asset |
//! category << 32 | flow << 40, then direct and indirect as (low, high) u128 halves).

use crate::exposure::Entry;
use crate::risk::Flow;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tracehound_graph::file::{write_streamed, SectionFile};

/// Version of the file layout; older files are rebuilt.
pub const EXPOSURE_VERSION: u32 = 1;
const MAGIC: [u8; 8] = *b"THEXPOS1";

/// Where the exposure index of `chain` lives.
pub fn exposure_path(data_dir: &Path, chain: &str) -> PathBuf {
    tracehound_graph::index::index_dir(data_dir, chain).join("exposure.idx")
}

/// What an exposure index was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExposureMeta {
    /// Chain.
    pub chain: String,
    /// The inputs it was built from (index, labels, clusters, horizon): equal means current.
    pub fingerprint: String,
    /// Addresses of the index it was built over.
    pub addresses: u64,
    /// Entries.
    pub entries: u64,
    /// Hop horizon (`None`: unlimited).
    pub horizon: Option<u8>,
    /// Source addresses per risk category.
    pub sources: Vec<(String, u64)>,
    /// Seconds the build took.
    pub seconds: f64,
}

fn pack(e: &Entry) -> [u64; 5] {
    let flow = match e.flow {
        Flow::Received => 0u64,
        Flow::Sent => 1,
    };
    [e.asset as u64 | (e.category as u64) << 32 | flow << 40, e.direct as u64, (e.direct >> 64) as u64, e.indirect as u64, (e.indirect >> 64) as u64]
}

fn unpack(address: u32, w: &[u64; 5]) -> Entry {
    Entry {
        address,
        asset: w[0] as u32,
        category: (w[0] >> 32) as u8,
        flow: if (w[0] >> 40) & 1 == 0 { Flow::Received } else { Flow::Sent },
        direct: w[1] as u128 | (w[2] as u128) << 64,
        indirect: w[3] as u128 | (w[4] as u128) << 64,
    }
}

/// Entries written to scratch files as they come (sorted by address), then into the index
/// without ever being in memory: the entries with their address, and the per-address start
/// offsets, each written out as the addresses go by.
pub struct EntryWriter {
    path: PathBuf,
    out: BufWriter<File>,
    starts_path: PathBuf,
    starts: BufWriter<File>,
    /// The next address whose start offset is to be written.
    next: u64,
    addresses: u64,
    count: u64,
}

/// The entries of an [`EntryWriter`], read back in order.
pub struct EntryReader {
    path: PathBuf,
    file: File,
    count: u64,
}

/// An entry as the scratch file holds it: its address, then its five words in the index.
type Stored = [u64; 6];

fn scratch_file(path: &Path) -> std::io::Result<File> {
    File::options().create_new(true).read(true).write(true).open(path)
}

impl EntryWriter {
    /// Writes to `scratch` (and a file of start offsets next to it), for an index of
    /// `addresses` addresses.
    pub fn new(scratch: PathBuf, addresses: u64) -> std::io::Result<EntryWriter> {
        let starts_path = scratch.with_extension("starts");
        let out = BufWriter::with_capacity(1 << 20, scratch_file(&scratch)?);
        let starts = BufWriter::with_capacity(1 << 16, scratch_file(&starts_path)?);
        Ok(EntryWriter { path: scratch, out, starts_path, starts, next: 0, addresses, count: 0 })
    }

    /// Entries written so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether none was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Writes the start offsets of every address up to `a` (included).
    fn starts_to(&mut self, a: u64) -> std::io::Result<()> {
        while self.next <= a {
            self.starts.write_all(&self.count.to_le_bytes())?;
            self.next += 1;
        }
        Ok(())
    }

    /// Adds the next entry (entries come sorted by address).
    pub fn push(&mut self, e: &Entry) -> std::io::Result<()> {
        assert!((e.address as u64) < self.addresses && (e.address as u64) + 1 >= self.next, "entries come sorted by address, within the index");
        self.starts_to(e.address as u64)?;
        let w = pack(e);
        let stored: Stored = [e.address as u64, w[0], w[1], w[2], w[3], w[4]];
        self.out.write_all(bytemuck::bytes_of(&stored))?;
        self.count += 1;
        Ok(())
    }

    /// Ends the files: the start offsets of the remaining addresses, and the end.
    fn close(mut self) -> std::io::Result<(EntryReader, PathBuf, File)> {
        self.starts_to(self.addresses)?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        let starts = self.starts.into_inner().map_err(|e| e.into_error())?;
        Ok((EntryReader { path: self.path, file, count: self.count }, self.starts_path, starts))
    }

    /// A reader of the entries, without an index file (entries of entities, for a table).
    pub fn into_reader(self) -> std::io::Result<EntryReader> {
        let (reader, starts_path, _) = self.close()?;
        let _ = std::fs::remove_file(starts_path);
        Ok(reader)
    }

    /// Writes the index file at `path` (tmp + fsync + rename) and returns its size and a reader
    /// of the entries.
    pub fn finish(self, path: &Path, meta: &ExposureMeta) -> std::io::Result<(u64, EntryReader)> {
        let addresses = self.addresses;
        let (reader, starts_path, starts) = self.close()?;
        let meta_bytes = serde_json::to_vec(meta).expect("meta serializes");
        let total = 8 * (addresses + 1);
        let sections = vec![("meta".to_string(), meta_bytes.len() as u64), ("addr_start".to_string(), total), ("entries".to_string(), 40 * reader.count)];
        let written = write_streamed(path, MAGIC, EXPOSURE_VERSION, &sections, &mut |i, sink| match i {
            0 => sink(&meta_bytes),
            1 => {
                let mut buf = vec![0u8; 1 << 16];
                let mut done = 0u64;
                while done < total {
                    let n = (buf.len() as u64).min(total - done) as usize;
                    starts.read_exact_at(&mut buf[..n], done).map_err(|e| tracehound_graph::Error::io(&starts_path, e))?;
                    sink(&buf[..n])?;
                    done += n as u64;
                }
                Ok(())
            }
            _ => {
                let mut first = 0u64;
                while first < reader.count {
                    let block = reader.read_stored(first, 1 << 14).map_err(|e| tracehound_graph::Error::io(&reader.path, e))?;
                    for w in &block {
                        sink(bytemuck::cast_slice(&w[1..]))?;
                    }
                    first += block.len() as u64;
                }
                Ok(())
            }
        });
        let _ = std::fs::remove_file(&starts_path);
        Ok((written.map_err(std::io::Error::other)?, reader))
    }
}

impl EntryReader {
    fn read_stored(&self, first: u64, n: usize) -> std::io::Result<Vec<Stored>> {
        let n = (n as u64).min(self.count.saturating_sub(first)) as usize;
        let mut block = vec![[0u64; 6]; n];
        self.file.read_exact_at(bytemuck::cast_slice_mut(&mut block), first * 48)?;
        Ok(block)
    }

    /// Up to `n` entries from entry number `first` on.
    pub fn read_block(&self, first: u64, n: usize) -> std::io::Result<Vec<Entry>> {
        Ok(self.read_stored(first, n)?.iter().map(|w| unpack(w[0] as u32, &[w[1], w[2], w[3], w[4], w[5]])).collect())
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl Drop for EntryReader {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An opened exposure index.
pub struct ExposureIndex {
    file: SectionFile,
    meta: ExposureMeta,
}

impl ExposureIndex {
    /// Opens `path`, checking it in full the first time after it was written.
    pub fn open(path: &Path) -> Result<ExposureIndex, String> {
        let (file, checked_before) = SectionFile::open_once_checked(path, MAGIC, EXPOSURE_VERSION).map_err(|e| e.to_string())?;
        let meta: ExposureMeta =
            serde_json::from_slice(file.slice::<u8>("meta").map_err(|e| e.to_string())?).map_err(|e| format!("{}: meta section: {e}", path.display()))?;
        let start: &[u64] = file.slice("addr_start").map_err(|e| e.to_string())?;
        let words = file.slice::<[u64; 5]>("entries").map_err(|e| e.to_string())?.len() as u64;
        let sorted = checked_before || start.windows(2).all(|w| w[0] <= w[1]);
        if start.len() as u64 != meta.addresses + 1 || start.last() != Some(&words) || !sorted {
            return Err(format!("{}: the address table does not match its {} entries", path.display(), words));
        }
        if !checked_before {
            file.mark_checked();
        }
        Ok(ExposureIndex { file, meta })
    }

    /// What it was built from.
    pub fn meta(&self) -> &ExposureMeta {
        &self.meta
    }

    /// The entries of address `a` (empty for an address the index does not know).
    pub fn entries_of(&self, a: u32) -> Vec<Entry> {
        let start: &[u64] = self.file.slice("addr_start").unwrap_or(&[]);
        let words: &[[u64; 5]] = self.file.slice("entries").unwrap_or(&[]);
        if a as usize + 1 >= start.len() {
            return vec![];
        }
        words[start[a as usize] as usize..start[a as usize + 1] as usize].iter().map(|w| unpack(a, w)).collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.file.slice::<[u64; 5]>("entries").map(|e| e.len()).unwrap_or(0)
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exposure.idx");
        let entries = vec![
            Entry { address: 0, asset: 0, category: 1, flow: Flow::Received, direct: 5, indirect: 7 },
            Entry { address: 2, asset: 3, category: 254, flow: Flow::Sent, direct: u128::MAX - 1, indirect: 1 << 70 },
            Entry { address: 2, asset: 4, category: 0, flow: Flow::Received, direct: 1, indirect: 0 },
        ];
        let meta = ExposureMeta { chain: "c".into(), fingerprint: "f".into(), addresses: 4, entries: 3, horizon: None, sources: vec![], seconds: 0.0 };
        let mut w = EntryWriter::new(dir.path().join("entries.tmp"), 4).unwrap();
        for e in &entries {
            w.push(e).unwrap();
        }
        let (_, reader) = w.finish(&path, &meta).unwrap();
        let idx = ExposureIndex::open(&path).unwrap();
        assert_eq!(idx.meta(), &meta);
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.entries_of(0), vec![entries[0]]);
        assert!(idx.entries_of(1).is_empty());
        assert_eq!(idx.entries_of(2), entries[1..].to_vec());
        assert!(idx.entries_of(3).is_empty() && idx.entries_of(9).is_empty());
        // The scratch files read back in order, and are removed.
        assert_eq!(reader.read_block(0, 10).unwrap(), entries);
        assert_eq!(reader.read_block(1, 1).unwrap(), vec![entries[1]]);
        drop(reader);
        let left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(left.iter().all(|n| n.starts_with("exposure.idx")), "scratch files left: {left:?}");
        // The same entries, without an index file.
        let mut w = EntryWriter::new(dir.path().join("more.tmp"), 4).unwrap();
        w.push(&entries[2]).unwrap();
        assert_eq!(w.into_reader().unwrap().read_block(0, 5).unwrap(), vec![entries[2]]);
    }
}
