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
use tracehound_graph::file::{write_streamed, SectionFile, SectionWriter};

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

/// Entries written to a scratch file as they come (sorted by address), then into the index
/// without ever being all in memory: only the per-address start offsets (8 bytes per address)
/// are.
pub struct EntryWriter {
    path: PathBuf,
    out: BufWriter<File>,
    start: Vec<u64>,
    count: u64,
}

/// The entries of an [`EntryWriter`], read back in order.
pub struct EntryReader {
    path: PathBuf,
    file: File,
    /// Offset of each address's entries (the address column is not in the entries).
    start: Vec<u64>,
    count: u64,
}

impl EntryWriter {
    /// Writes to `scratch_file`, for an index of `addresses` addresses.
    pub fn new(scratch_file: PathBuf, addresses: u64) -> std::io::Result<EntryWriter> {
        let file = File::options().create_new(true).read(true).write(true).open(&scratch_file)?;
        Ok(EntryWriter { path: scratch_file, out: BufWriter::with_capacity(1 << 20, file), start: vec![0; addresses as usize + 1], count: 0 })
    }

    /// Entries written so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether none was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds the next entry (entries come sorted by address).
    pub fn push(&mut self, e: &Entry) -> std::io::Result<()> {
        self.out.write_all(bytemuck::bytes_of(&pack(e)))?;
        self.start[e.address as usize + 1] += 1;
        self.count += 1;
        Ok(())
    }

    /// A reader of the entries, without an index file (entries of entities, for a table).
    pub fn into_reader(mut self) -> std::io::Result<EntryReader> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        for a in 0..self.start.len() - 1 {
            self.start[a + 1] += self.start[a];
        }
        Ok(EntryReader { path: self.path, file, start: self.start, count: self.count })
    }

    /// Writes the index file at `path` (tmp + fsync + rename) and returns its size and a reader
    /// of the entries.
    pub fn finish(mut self, path: &Path, meta: &ExposureMeta) -> std::io::Result<(u64, EntryReader)> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        let n = self.start.len() - 1;
        for a in 0..n {
            self.start[a + 1] += self.start[a];
        }
        let meta_bytes = serde_json::to_vec(meta).expect("meta serializes");
        let sections =
            vec![("meta".to_string(), meta_bytes.len() as u64), ("addr_start".to_string(), 8 * (n as u64 + 1)), ("entries".to_string(), 40 * self.count)];
        let mut reader = EntryReader { path: self.path, file, start: vec![], count: self.count };
        let start = self.start;
        let bytes = write_streamed(path, MAGIC, EXPOSURE_VERSION, &sections, &mut |i, sink| match i {
            0 => sink(&meta_bytes),
            1 => {
                for part in start.chunks(1 << 16) {
                    sink(bytemuck::cast_slice(part))?;
                }
                Ok(())
            }
            _ => reader.for_each_raw(&mut |words| sink(bytemuck::cast_slice(words))),
        })
        .map_err(std::io::Error::other)?;
        reader.start = start;
        Ok((bytes, reader))
    }
}

impl EntryReader {
    fn for_each_raw(&self, f: &mut dyn FnMut(&[[u64; 5]]) -> tracehound_graph::Result<()>) -> tracehound_graph::Result<()> {
        let mut buf = vec![[0u64; 5]; 1 << 14];
        let mut done = 0u64;
        while done < self.count {
            let n = (buf.len() as u64).min(self.count - done) as usize;
            self.file.read_exact_at(bytemuck::cast_slice_mut(&mut buf[..n]), done * 40).map_err(|e| tracehound_graph::Error::io(&self.path, e))?;
            f(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    /// Hands the entries, in order, to `f`, in blocks.
    pub fn for_each(&self, f: &mut dyn FnMut(&[Entry]) -> std::io::Result<()>) -> std::io::Result<()> {
        let start = &self.start;
        let mut next = (0..start.len().saturating_sub(1) as u32).filter(|&a| start[a as usize + 1] > start[a as usize]);
        let mut address = 0u32;
        let mut left = 0u64;
        let mut block = vec![];
        self.for_each_raw(&mut |words| {
            block.clear();
            for w in words {
                while left == 0 {
                    address = next.next().expect("an address for every entry");
                    left = start[address as usize + 1] - start[address as usize];
                }
                block.push(unpack(address, w));
                left -= 1;
            }
            f(&block).map_err(|e| tracehound_graph::Error::io(&self.path, e))
        })
        .map_err(std::io::Error::other)
    }

    /// Up to `n` entries from entry number `first` on.
    pub fn read_block(&self, first: u64, n: usize) -> std::io::Result<Vec<Entry>> {
        let n = (n as u64).min(self.count.saturating_sub(first)) as usize;
        let mut words = vec![[0u64; 5]; n];
        self.file.read_exact_at(bytemuck::cast_slice_mut(&mut words), first * 40)?;
        // The address of entry `first`: the last address whose entries start at or before it.
        let mut a = self.start.partition_point(|&s| s <= first).saturating_sub(1);
        let mut out = Vec::with_capacity(n);
        for (k, w) in words.iter().enumerate() {
            let j = first + k as u64;
            while self.start[a + 1] <= j {
                a += 1;
            }
            out.push(unpack(a as u32, w));
        }
        Ok(out)
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

/// Writes the index: `entries` sorted by address. Returns the bytes written.
pub fn write(path: &Path, meta: &ExposureMeta, entries: &[Entry]) -> std::io::Result<u64> {
    let n = meta.addresses as usize;
    let mut start = vec![0u64; n + 1];
    for e in entries {
        start[e.address as usize + 1] += 1;
    }
    for a in 0..n {
        start[a + 1] += start[a];
    }
    let words: Vec<[u64; 5]> = entries.iter().map(pack).collect();
    let mut w = SectionWriter::new(MAGIC, EXPOSURE_VERSION);
    w.add_bytes("meta", serde_json::to_vec(meta).expect("meta serializes"));
    w.add("addr_start", &start);
    w.add("entries", &words);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    w.write(path).map_err(std::io::Error::other)
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
        ];
        let meta = ExposureMeta { chain: "c".into(), fingerprint: "f".into(), addresses: 3, entries: 2, horizon: None, sources: vec![], seconds: 0.0 };
        write(&path, &meta, &entries).unwrap();
        let idx = ExposureIndex::open(&path).unwrap();
        assert_eq!(idx.meta(), &meta);
        assert_eq!(idx.entries_of(0), vec![entries[0]]);
        assert!(idx.entries_of(1).is_empty());
        assert_eq!(idx.entries_of(2), vec![entries[1]]);
        assert!(idx.entries_of(9).is_empty());
        // Streamed through a scratch file: the same file, and the entries read back in order.
        let streamed = dir.path().join("streamed.idx");
        let mut w = EntryWriter::new(dir.path().join("entries.tmp"), 3).unwrap();
        for e in &entries {
            w.push(e).unwrap();
        }
        let (_, reader) = w.finish(&streamed, &meta).unwrap();
        assert_eq!(std::fs::read(&streamed).unwrap(), std::fs::read(&path).unwrap());
        let mut back = vec![];
        reader
            .for_each(&mut |b| {
                back.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(back, entries);
        assert_eq!(reader.read_block(1, 10).unwrap(), vec![entries[1]]);
        assert_eq!(reader.read_block(0, 1).unwrap(), vec![entries[0]]);
        drop(reader);
        assert!(!dir.path().join("entries.tmp").exists());
    }
}
