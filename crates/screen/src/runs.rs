//! Sorted runs of fixed-size records in scratch files: what the exposure pass spills when its
//! share of `--memory-limit` is full. A record is four `u64` words, the first its key; runs are
//! read back in key order, either by key (the pass consumes a spilled vector when it reaches
//! the input or output whose key it carries) or merged whole (the per-address sums at the end).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use tracehound_memory::Scratch;

/// One record: key, then three words of payload.
pub(crate) type Record = [u64; 4];

/// More runs than this are merged into one, so a lookup by key checks few heads.
const MAX_RUNS: usize = 16;

struct Run {
    path: PathBuf,
    reader: BufReader<File>,
    head: Option<Record>,
}

impl Run {
    fn advance(&mut self) -> std::io::Result<()> {
        let mut buf = [0u8; 32];
        self.head = match self.reader.read_exact(&mut buf) {
            Ok(()) => Some(bytemuck::cast(buf)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        Ok(())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sorted runs in a scratch directory.
pub(crate) struct Runs<'a> {
    scratch: &'a Scratch,
    name: &'static str,
    runs: Vec<Run>,
    /// Bytes written to scratch files so far.
    pub spilled: u64,
}

impl<'a> Runs<'a> {
    /// No runs yet; files are named after `name` in `scratch`.
    pub(crate) fn new(scratch: &'a Scratch, name: &'static str) -> Runs<'a> {
        Runs { scratch, name, runs: vec![], spilled: 0 }
    }

    /// Writes `records` (any order) as a new run.
    pub(crate) fn write(&mut self, mut records: Vec<Record>) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        records.sort_unstable();
        self.push_sorted(records.into_iter().map(Ok))?;
        if self.runs.len() > MAX_RUNS {
            let runs = std::mem::take(&mut self.runs);
            let mut merged = Merge::new(runs)?;
            self.push_sorted(std::iter::from_fn(|| merged.next().transpose()))?;
        }
        Ok(())
    }

    fn push_sorted(&mut self, records: impl Iterator<Item = std::io::Result<Record>>) -> std::io::Result<()> {
        let path = self.scratch.file(self.name);
        let file = File::options().create_new(true).read(true).write(true).open(&path)?;
        let mut w = BufWriter::with_capacity(1 << 16, file.try_clone()?);
        for r in records {
            w.write_all(bytemuck::bytes_of(&r?))?;
            self.spilled += 32;
        }
        w.flush()?;
        drop(w);
        let mut f = file;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
        let mut run = Run { path, reader: BufReader::with_capacity(1 << 14, f), head: None };
        run.advance()?;
        self.runs.push(run);
        Ok(())
    }

    /// Hands every record with key `key` to `f` and drops the records with smaller keys. Keys
    /// must be asked for in increasing order.
    pub(crate) fn take(&mut self, key: u64, f: &mut dyn FnMut(&Record)) -> std::io::Result<()> {
        for run in &mut self.runs {
            while let Some(h) = run.head {
                if h[0] > key {
                    break;
                }
                if h[0] == key {
                    f(&h);
                }
                run.advance()?;
            }
        }
        Ok(())
    }

    /// Whether anything was spilled.
    pub(crate) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Every record of every run, merged in order, and then the runs removed.
    pub(crate) fn merged(self) -> std::io::Result<Merge> {
        Merge::new(self.runs)
    }
}

/// A k-way merge of runs.
pub(crate) struct Merge {
    runs: Vec<Run>,
    heap: BinaryHeap<Reverse<(Record, usize)>>,
}

impl Merge {
    fn new(mut runs: Vec<Run>) -> std::io::Result<Merge> {
        let mut heap = BinaryHeap::new();
        for (i, r) in runs.iter_mut().enumerate() {
            if let Some(h) = r.head.take() {
                heap.push(Reverse((h, i)));
            }
        }
        Ok(Merge { runs, heap })
    }

    /// The next record in order.
    pub(crate) fn next(&mut self) -> std::io::Result<Option<Record>> {
        let Some(Reverse((r, i))) = self.heap.pop() else { return Ok(None) };
        self.runs[i].advance()?;
        if let Some(h) = self.runs[i].head.take() {
            self.heap.push(Reverse((h, i)));
        }
        Ok(Some(r))
    }
}
