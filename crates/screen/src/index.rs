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
use std::path::{Path, PathBuf};
use tracehound_graph::file::{SectionFile, SectionWriter};

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
    let words: Vec<[u64; 5]> = entries
        .iter()
        .map(|e| {
            let flow = match e.flow {
                Flow::Received => 0u64,
                Flow::Sent => 1,
            };
            [e.asset as u64 | (e.category as u64) << 32 | flow << 40, e.direct as u64, (e.direct >> 64) as u64, e.indirect as u64, (e.indirect >> 64) as u64]
        })
        .collect();
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
        words[start[a as usize] as usize..start[a as usize + 1] as usize]
            .iter()
            .map(|w| Entry {
                address: a,
                asset: w[0] as u32,
                category: (w[0] >> 32) as u8,
                flow: if (w[0] >> 40) & 1 == 0 { Flow::Received } else { Flow::Sent },
                direct: w[1] as u128 | (w[2] as u128) << 64,
                indirect: w[3] as u128 | (w[4] as u128) << 64,
            })
            .collect()
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
    }
}
