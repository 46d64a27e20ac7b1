//! The bounded-memory building blocks of the index builds. Each holds what fits its share of
//! the `--memory-limit` in memory and spills the rest to files in the build's [`Scratch`]
//! directory (removed when the build ends; never state a crash could corrupt):
//!
//! * [`SpillVec`]: an append-only array (the index's per-transaction, per-output and
//!   per-input columns), read back in order as many times as needed;
//! * [`DiskMap`]: a map from 128-bit keys to `u64` values (txid → outputs, address → id) as a
//!   small log-structured merge tree: a hash table in memory, flushed as sorted runs of 24-byte
//!   records with a fence key per 128 records and a Bloom filter (10 bits per key) in memory,
//!   so a lookup that misses memory reads one 3 KiB block of the run that holds the key;
//! * [`Sorter`]: an external sort of `(u64 key, u32 id)` pairs (the index's lookup sections);
//! * [`RecordSorter`]: an external sort of fixed-size records by their `Ord` (the transfer
//!   index's movements in replay order): sorted runs of what fits, merged k ways.
//!
//! With no limit nothing is spilled and every structure stays in memory.

use crate::{Error, Result};
use bytemuck::Pod;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracehound_memory::{Scratch, StageMeter};

/// Where spilled bytes go and who counts them.
#[derive(Clone)]
pub(crate) struct SpillTo {
    scratch: Arc<Scratch>,
    meter: StageMeter,
}

impl SpillTo {
    /// Spills into `scratch`, counted by `meter`.
    pub(crate) fn new(scratch: Scratch, meter: StageMeter) -> SpillTo {
        SpillTo { scratch: Arc::new(scratch), meter }
    }

    /// The meter that counts spilled bytes.
    pub(crate) fn meter(&self) -> &StageMeter {
        &self.meter
    }

    fn create(&self, prefix: &str) -> Result<(PathBuf, File)> {
        let path = self.scratch.file(prefix);
        let file = File::options().create_new(true).read(true).write(true).open(&path).map_err(|e| Error::io(&path, e))?;
        Ok((path, file))
    }
}

const READ_BLOCK: usize = 1 << 20;

/// An empty vector with room for `cap` values when there is a cap: filling it then never
/// reallocates (a vector that doubles holds its old and new buffers at once, three times its
/// values), and pages of the room are only taken as values arrive.
fn reserved<T>(cap: usize) -> Vec<T> {
    if cap == usize::MAX {
        vec![]
    } else {
        Vec::with_capacity(cap)
    }
}

/// A reader of `file` from its start (a clone of a file just written is at its end).
fn reader_from_start(file: &File, path: &Path) -> Result<BufReader<File>> {
    let mut f = file.try_clone().map_err(|e| Error::io(path, e))?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 16, f))
}

/// Reads `count` values of `T` at byte `offset` of `file`, block by block, into `f`.
fn read_values<T: Pod>(file: &File, path: &Path, offset: u64, count: u64, f: &mut dyn FnMut(&[T]) -> Result<()>) -> Result<()> {
    let size = std::mem::size_of::<T>();
    let per_block = (READ_BLOCK / size).max(1);
    let mut buf: Vec<T> = vec![T::zeroed(); per_block];
    let mut done = 0u64;
    while done < count {
        let n = per_block.min((count - done) as usize);
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf[..n]);
        file.read_exact_at(bytes, offset + done * size as u64).map_err(|e| Error::io(path, e))?;
        f(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// An append-only array: a `base` of values already in a file (the index being extended), the
/// values spilled to a scratch file, and the newest ones in memory.
pub(crate) struct SpillVec<T: Pod> {
    name: &'static str,
    base: Option<(Arc<File>, PathBuf, u64, u64)>,
    spill: Option<(PathBuf, BufWriter<File>)>,
    spilled: u64,
    buf: Vec<T>,
    cap: usize,
    to: SpillTo,
    last: Option<T>,
}

impl<T: Pod> SpillVec<T> {
    /// An empty array keeping at most `cap_bytes` in memory (`None`: everything).
    pub(crate) fn new(name: &'static str, cap_bytes: Option<u64>, to: &SpillTo) -> SpillVec<T> {
        let cap = cap_bytes.map_or(usize::MAX, |b| (b as usize / std::mem::size_of::<T>()).max(256));
        SpillVec { name, base: None, spill: None, spilled: 0, buf: reserved(cap), cap, to: to.clone(), last: None }
    }

    /// Starts the array with `count` values stored at byte `offset` of `file`; `last` is the
    /// last of them.
    pub(crate) fn set_base(&mut self, file: Arc<File>, path: &Path, offset: u64, count: u64, last: Option<T>) {
        assert!(self.len() == 0);
        self.base = Some((file, path.to_path_buf(), offset, count));
        self.last = last;
    }

    /// The array's name (its scratch files' prefix).
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The cap given to [`SpillVec::new`].
    pub(crate) fn cap_bytes(&self) -> Option<u64> {
        (self.cap != usize::MAX).then(|| (self.cap * std::mem::size_of::<T>()) as u64)
    }

    /// Where it spills.
    pub(crate) fn spill_to(&self) -> &SpillTo {
        &self.to
    }

    /// Number of values.
    pub(crate) fn len(&self) -> u64 {
        self.base.as_ref().map_or(0, |b| b.3) + self.spilled + self.buf.len() as u64
    }

    /// The last value pushed.
    pub(crate) fn last(&self) -> Option<T> {
        self.last
    }

    /// Appends `v`, spilling the values in memory when they reach the cap.
    pub(crate) fn push(&mut self, v: T) -> Result<()> {
        self.buf.push(v);
        self.last = Some(v);
        if self.buf.len() >= self.cap {
            self.spill_buf()?;
        }
        Ok(())
    }

    /// Appends every value of `vs`.
    pub(crate) fn extend(&mut self, vs: &[T]) -> Result<()> {
        for &v in vs {
            self.push(v)?;
        }
        Ok(())
    }

    fn spill_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.spill.is_none() {
            let (path, file) = self.to.create(self.name)?;
            self.spill = Some((path, BufWriter::with_capacity(1 << 16, file)));
        }
        let (path, w) = self.spill.as_mut().expect("created");
        let bytes: &[u8] = bytemuck::cast_slice(&self.buf);
        w.write_all(bytes).map_err(|e| Error::io(path, e))?;
        self.to.meter.spilled(bytes.len() as u64);
        self.spilled += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Hands every value, in order, to `f` in blocks.
    pub(crate) fn for_each(&mut self, f: &mut dyn FnMut(&[T]) -> Result<()>) -> Result<()> {
        if let Some((file, path, offset, count)) = &self.base {
            read_values(file, path, *offset, *count, f)?;
        }
        if let Some((path, w)) = &mut self.spill {
            w.flush().map_err(|e| Error::io(path, e))?;
            read_values(w.get_ref(), path, 0, self.spilled, f)?;
        }
        if !self.buf.is_empty() {
            f(&self.buf)?;
        }
        Ok(())
    }

    /// Bytes of all values.
    pub(crate) fn byte_len(&self) -> u64 {
        self.len() * std::mem::size_of::<T>() as u64
    }
}

/// Keys are hashes already: the low 64 bits spread them well enough.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);
impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64 ^ (v >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
#[derive(Default, Clone, Copy)]
pub(crate) struct BuildKeyHasher;
impl BuildHasher for BuildKeyHasher {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

const RECORD: usize = 24;
const FENCE_EVERY: usize = 128;
const MAX_RUNS: usize = 8;
const BLOOM_BITS_PER_KEY: u64 = 10;
const BLOOM_HASHES: u64 = 7;

/// Memory of one entry of the in-memory table, at its worst: its 25-byte slot in a table at most
/// 7/8 full that just doubled (the old and the new table together: up to 57 bytes), or in the
/// full table while a run is written, with its place in the sorted vector (57 + 32 bytes).
pub(crate) const MAP_ENTRY_BYTES: u64 = 90;

struct Bloom {
    bits: Vec<u64>,
    hashes: u64,
}

impl Bloom {
    /// A filter for `keys` keys of `bits_per_key` bits each (with the number of hashes that
    /// suits it: 7 for 10 bits and about 1% false positives, 1 for 1 bit).
    fn new(keys: u64, bits_per_key: u64) -> Bloom {
        let hashes = ((bits_per_key as f64 * std::f64::consts::LN_2).round() as u64).clamp(1, BLOOM_HASHES);
        Bloom { bits: vec![0; (keys * bits_per_key / 64 + 1) as usize], hashes }
    }
    fn positions(&self, key: u128) -> impl Iterator<Item = usize> {
        let m = self.bits.len() as u64 * 64;
        let (h1, h2) = (key as u64, ((key >> 64) as u64) | 1);
        (0..self.hashes).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }
    fn insert(&mut self, key: u128) {
        let m = self.bits.len() as u64 * 64;
        let (h1, h2) = (key as u64, ((key >> 64) as u64) | 1);
        for i in 0..self.hashes {
            let p = (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize;
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }
    fn bytes(&self) -> u64 {
        self.bits.len() as u64 * 8
    }
    fn may_contain(&self, key: u128) -> bool {
        self.positions(key).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

struct Run {
    path: PathBuf,
    file: File,
    len: u64,
    fences: Vec<u128>,
    bloom: Bloom,
}

fn record(key: u128, value: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..16].copy_from_slice(&key.to_le_bytes());
    r[16..].copy_from_slice(&value.to_le_bytes());
    r
}

fn unrecord(r: &[u8]) -> (u128, u64) {
    (u128::from_le_bytes(r[..16].try_into().expect("16")), u64::from_le_bytes(r[16..24].try_into().expect("8")))
}

/// Writes sorted `(key, value)` records as a run.
struct RunWriter {
    path: PathBuf,
    w: BufWriter<File>,
    len: u64,
    fences: Vec<u128>,
    bloom: Bloom,
}

impl RunWriter {
    /// A run of at most `keys` keys, with a Bloom filter of `bloom_bits` bits per key.
    fn new(to: &SpillTo, keys: u64, bloom_bits: u64) -> Result<RunWriter> {
        let (path, file) = to.create("run")?;
        Ok(RunWriter { path, w: BufWriter::with_capacity(1 << 16, file), len: 0, fences: vec![], bloom: Bloom::new(keys, bloom_bits) })
    }
    fn push(&mut self, key: u128, value: u64) -> Result<()> {
        if self.len.is_multiple_of(FENCE_EVERY as u64) {
            self.fences.push(key);
        }
        self.bloom.insert(key);
        self.len += 1;
        self.w.write_all(&record(key, value)).map_err(|e| Error::io(&self.path, e))
    }
    fn finish(self, to: &SpillTo) -> Result<Run> {
        let file = self.w.into_inner().map_err(|e| Error::io(&self.path, e.into_error()))?;
        to.meter.spilled(self.len * RECORD as u64);
        Ok(Run { path: self.path, file, len: self.len, fences: self.fences, bloom: self.bloom })
    }
}

/// A map from 128-bit keys to `u64` values that keeps at most a set number of entries in memory
/// (see the module docs). A key inserted again takes its new value.
pub(crate) struct DiskMap {
    mem: HashMap<u128, u64, BuildKeyHasher>,
    cap: usize,
    budget: Option<u64>,
    runs: Vec<Run>,
    to: SpillTo,
}

impl DiskMap {
    /// An empty map keeping about `cap_bytes` in memory (`None`: everything).
    pub(crate) fn new(cap_bytes: Option<u64>, to: &SpillTo) -> DiskMap {
        let mut m = DiskMap { mem: HashMap::default(), cap: usize::MAX, budget: cap_bytes, runs: vec![], to: to.clone() };
        m.set_cap();
        m
    }

    /// Entries the in-memory table may hold: the budget less the runs' fences and Bloom filters.
    fn set_cap(&mut self) {
        let Some(budget) = self.budget else { return };
        let runs: u64 = self.runs.iter().map(|r| r.bloom.bytes() + r.fences.len() as u64 * 16).sum();
        // The table keeps at least half the budget: the runs' filters shrink instead (see
        // `bloom_bits`), so a map far larger than its budget slows down but never thrashes.
        self.cap = (budget.saturating_sub(runs).max(budget / 2) / MAP_ENTRY_BYTES).max(1024) as usize;
        self.mem = HashMap::default();
    }

    /// Bloom bits per key of a new run of `new_keys` keys: 10 (about 1% false positives) while
    /// the filters of all runs fit in half the budget, fewer (down to 1) beyond.
    fn bloom_bits(&self, new_keys: u64) -> u64 {
        let Some(budget) = self.budget else { return BLOOM_BITS_PER_KEY };
        let keys = self.runs.iter().map(|r| r.len).sum::<u64>() + new_keys;
        (budget / 2 * 8 / keys.max(1)).clamp(1, BLOOM_BITS_PER_KEY)
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: u128) -> Result<Option<u64>> {
        if let Some(&v) = self.mem.get(&key) {
            return Ok(Some(v));
        }
        let mut block = [0u8; RECORD * FENCE_EVERY];
        for run in self.runs.iter().rev() {
            if !run.bloom.may_contain(key) {
                continue;
            }
            let b = run.fences.partition_point(|&f| f <= key);
            if b == 0 {
                continue;
            }
            let first = (b - 1) * FENCE_EVERY;
            let n = FENCE_EVERY.min((run.len - first as u64) as usize);
            let bytes = &mut block[..n * RECORD];
            run.file.read_exact_at(bytes, (first * RECORD) as u64).map_err(|e| Error::io(&run.path, e))?;
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let (k, v) = unrecord(&bytes[mid * RECORD..]);
                match k.cmp(&key) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => return Ok(Some(v)),
                }
            }
        }
        Ok(None)
    }

    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: u128, value: u64) -> Result<()> {
        self.mem.insert(key, value);
        if self.mem.len() >= self.cap {
            self.flush()?;
        }
        Ok(())
    }

    /// Runs written so far.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }

    fn flush(&mut self) -> Result<()> {
        let mut entries: Vec<(u128, u64)> = std::mem::take(&mut self.mem).into_iter().collect();
        entries.sort_unstable_by_key(|e| e.0);
        let keys = entries.len() as u64;
        let mut w = RunWriter::new(&self.to, keys, self.bloom_bits(keys))?;
        for (k, v) in entries {
            w.push(k, v)?;
        }
        self.runs.push(w.finish(&self.to)?);
        if self.runs.len() > MAX_RUNS {
            self.merge()?;
        }
        self.set_cap();
        Ok(())
    }

    /// Merges every run into one; where runs share a key, the newest run's value wins.
    fn merge(&mut self) -> Result<()> {
        let runs = std::mem::take(&mut self.runs);
        let mut readers = vec![];
        for r in &runs {
            readers.push(reader_from_start(&r.file, &r.path)?);
        }
        let next = |i: usize, readers: &mut Vec<BufReader<File>>| -> Result<Option<(u128, u64)>> {
            let mut r = [0u8; RECORD];
            match readers[i].read_exact(&mut r) {
                Ok(()) => Ok(Some(unrecord(&r))),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
                Err(e) => Err(Error::io(&runs[i].path, e)),
            }
        };
        let mut heap = BinaryHeap::new();
        let mut values = vec![0u64; runs.len()];
        for (i, value) in values.iter_mut().enumerate() {
            if let Some((k, v)) = next(i, &mut readers)? {
                *value = v;
                heap.push(Reverse((k, Reverse(i))));
            }
        }
        let keys: u64 = runs.iter().map(|r| r.len).sum();
        let mut w = RunWriter::new(&self.to, keys, self.bloom_bits(keys))?;
        let mut last: Option<u128> = None;
        while let Some(Reverse((k, Reverse(i)))) = heap.pop() {
            if last != Some(k) {
                w.push(k, values[i])?;
                last = Some(k);
            }
            if let Some((k2, v2)) = next(i, &mut readers)? {
                values[i] = v2;
                heap.push(Reverse((k2, Reverse(i))));
            }
        }
        self.runs.push(w.finish(&self.to)?);
        for r in runs {
            let _ = std::fs::remove_file(&r.path);
        }
        Ok(())
    }
}

const PAIR: usize = 12;

/// An external sort of `(key, id)` pairs, in `(key, id)` order.
pub(crate) struct Sorter {
    buf: Vec<(u64, u32)>,
    cap: usize,
    runs: Vec<(PathBuf, File, u64)>,
    to: SpillTo,
}

/// Writes the lists of items under each of `keys` keys (an index's address → outputs or
/// movements): the start of each key's list (`starts_only`; `keys + 1` values, the last the
/// total), or the lists themselves, items in the order `items` hands them. `items(f)` calls
/// `f(item, key)` for every item listed under a key, in item order (an item may come under
/// several keys). Windows of `key_window` keys and `place_window` places at a time: each window
/// costs a pass over the items, and 16 bytes per key and 8 per place.
pub(crate) fn write_lists(
    keys: u64,
    key_window: u64,
    place_window: u64,
    starts_only: bool,
    items: &mut ItemSource,
    sink: &mut crate::file::Sink,
) -> Result<()> {
    let (mut lo, mut base) = (0u64, 0u64);
    while lo < keys {
        let hi = keys.min(lo.saturating_add(key_window.max(1)));
        let mut start = vec![0u64; (hi - lo) as usize];
        items(&mut |_, k| {
            if (k as u64) >= lo && (k as u64) < hi {
                start[(k as u64 - lo) as usize] += 1;
            }
        })?;
        // Counts → the start of each key's list within the window.
        let mut total = 0u64;
        for c in start.iter_mut() {
            let n = *c;
            *c = total;
            total += n;
        }
        if starts_only {
            let starts: Vec<u64> = start.iter().map(|c| base + c).collect();
            sink(bytemuck::cast_slice(&starts))?;
        } else {
            let mut plo = 0u64;
            while plo < total {
                let phi = total.min(plo.saturating_add(place_window.max(1)));
                let mut place = start.clone();
                let mut list = vec![0u64; (phi - plo) as usize];
                items(&mut |item, k| {
                    if (k as u64) >= lo && (k as u64) < hi {
                        let at = &mut place[(k as u64 - lo) as usize];
                        if *at >= plo && *at < phi {
                            list[(*at - plo) as usize] = item;
                        }
                        *at += 1;
                    }
                })?;
                sink(bytemuck::cast_slice(&list))?;
                plo = phi;
            }
        }
        base += total;
        lo = hi;
    }
    if starts_only {
        sink(bytemuck::cast_slice(&[base]))?;
    }
    Ok(())
}

/// What [`write_lists`] reads its items from: it calls its argument with each (item, key).
pub(crate) type ItemSource<'a> = dyn FnMut(&mut dyn FnMut(u64, u32)) -> Result<()> + 'a;

/// Where [`Sorted::for_each`] hands its pairs.
pub(crate) type PairSink<'a> = dyn FnMut(&[(u64, u32)]) -> Result<()> + 'a;

/// The sorted pairs of a [`Sorter`].
pub(crate) enum Sorted {
    /// All in memory.
    Memory(Vec<(u64, u32)>),
    /// In one scratch file.
    File(PathBuf, File, u64),
}

fn write_pairs(to: &SpillTo, pairs: impl Iterator<Item = Result<(u64, u32)>>) -> Result<(PathBuf, File, u64)> {
    let (path, file) = to.create("sorted")?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    let mut n = 0u64;
    for p in pairs {
        let (k, id) = p?;
        let mut r = [0u8; PAIR];
        r[..8].copy_from_slice(&k.to_le_bytes());
        r[8..].copy_from_slice(&id.to_le_bytes());
        w.write_all(&r).map_err(|e| Error::io(&path, e))?;
        n += 1;
    }
    let file = w.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
    to.meter.spilled(n * PAIR as u64);
    Ok((path, file, n))
}

fn read_pair(r: &mut BufReader<File>, path: &Path) -> Result<Option<(u64, u32)>> {
    let mut b = [0u8; PAIR];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some((u64::from_le_bytes(b[..8].try_into().expect("8")), u32::from_le_bytes(b[8..].try_into().expect("4"))))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

impl Sorter {
    /// An empty sort keeping about `cap_bytes` in memory (`None`: everything).
    pub(crate) fn new(cap_bytes: Option<u64>, to: &SpillTo) -> Sorter {
        let cap = cap_bytes.map_or(usize::MAX, |b| (b / 16).max(1024) as usize);
        Sorter { buf: reserved(cap), cap, runs: vec![], to: to.clone() }
    }

    /// Adds a pair.
    pub(crate) fn push(&mut self, key: u64, id: u32) -> Result<()> {
        self.buf.push((key, id));
        if self.buf.len() >= self.cap {
            self.buf.sort_unstable();
            let run = write_pairs(&self.to, self.buf.drain(..).map(Ok))?;
            self.runs.push(run);
        }
        Ok(())
    }

    /// Sorts what was added.
    pub(crate) fn finish(mut self) -> Result<Sorted> {
        self.buf.sort_unstable();
        if self.runs.is_empty() {
            return Ok(Sorted::Memory(self.buf));
        }
        if !self.buf.is_empty() {
            let run = write_pairs(&self.to, self.buf.drain(..).map(Ok))?;
            self.runs.push(run);
        }
        self.buf = vec![];
        let mut readers = vec![];
        for (path, file, _) in &self.runs {
            readers.push((reader_from_start(file, path)?, path.clone()));
        }
        let mut heap = BinaryHeap::new();
        for (i, (r, path)) in readers.iter_mut().enumerate() {
            if let Some(p) = read_pair(r, path)? {
                heap.push(Reverse((p, i)));
            }
        }
        let merged = std::iter::from_fn(|| {
            let Reverse((p, i)) = heap.pop()?;
            let (r, path) = &mut readers[i];
            match read_pair(r, path) {
                Ok(Some(q)) => heap.push(Reverse((q, i))),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            Some(Ok(p))
        });
        let (path, file, n) = write_pairs(&self.to, merged)?;
        for (p, _, _) in &self.runs {
            let _ = std::fs::remove_file(p);
        }
        Ok(Sorted::File(path, file, n))
    }
}

impl Sorted {
    /// Hands every pair, in order, to `f` in blocks.
    pub(crate) fn for_each(&self, f: &mut PairSink) -> Result<()> {
        match self {
            Sorted::Memory(v) => f(v),
            Sorted::File(path, file, n) => {
                let mut r = reader_from_start(file, path)?;
                let mut block = Vec::with_capacity(1 << 16);
                for _ in 0..*n {
                    let p = read_pair(&mut r, path)?.ok_or_else(|| Error::Corrupt { path: path.clone(), reason: "scratch file ended early".into() })?;
                    block.push(p);
                    if block.len() == block.capacity() {
                        f(&block)?;
                        block.clear();
                    }
                }
                if !block.is_empty() {
                    f(&block)?;
                }
                Ok(())
            }
        }
    }

    /// Number of pairs.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Sorted::Memory(v) => v.len() as u64,
            Sorted::File(_, _, n) => *n,
        }
    }
}

/// Runs a [`RecordSorter`] merges at once; more are merged in rounds.
const MERGE_FAN_IN: usize = 64;

/// An external sort of fixed-size records in their `Ord` order: records are sorted in memory up
/// to the cap, written as sorted runs beyond it, and the runs merged k ways (at most
/// [`MERGE_FAN_IN`] at once) into one file. Records equal under `Ord` come out in no set order.
pub(crate) struct RecordSorter<R: Pod + Ord> {
    name: &'static str,
    buf: Vec<R>,
    cap: usize,
    read_buf: usize,
    runs: Vec<(PathBuf, File, u64)>,
    to: SpillTo,
}

/// The sorted records of a [`RecordSorter`].
pub(crate) enum SortedRecords<R: Pod> {
    /// All in memory.
    Memory(Vec<R>),
    /// In one scratch file.
    File(PathBuf, File, u64),
}

fn write_records<R: Pod>(to: &SpillTo, name: &str, records: impl Iterator<Item = Result<R>>) -> Result<(PathBuf, File, u64)> {
    let (path, file) = to.create(name)?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    let mut n = 0u64;
    for r in records {
        w.write_all(bytemuck::bytes_of(&r?)).map_err(|e| Error::io(&path, e))?;
        n += 1;
    }
    let file = w.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
    to.meter.spilled(n * std::mem::size_of::<R>() as u64);
    Ok((path, file, n))
}

fn read_record<R: Pod>(r: &mut BufReader<File>, path: &Path) -> Result<Option<R>> {
    let mut v = R::zeroed();
    match r.read_exact(bytemuck::bytes_of_mut(&mut v)) {
        Ok(()) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

impl<R: Pod + Ord> RecordSorter<R> {
    /// An empty sort keeping about `cap_bytes` in memory (`None`: everything); `name` prefixes
    /// its scratch files.
    pub(crate) fn new(name: &'static str, cap_bytes: Option<u64>, to: &SpillTo) -> RecordSorter<R> {
        let size = std::mem::size_of::<R>().max(1) as u64;
        let cap = cap_bytes.map_or(usize::MAX, |b| (b / size).max(1024) as usize);
        // The merge reads every run through a buffer of its own: together they keep to the cap.
        let read_buf = cap_bytes.map_or(1 << 16, |b| (b / MERGE_FAN_IN as u64).clamp(4 << 10, 1 << 16) as usize);
        RecordSorter { name, buf: reserved(cap), cap, read_buf, runs: vec![], to: to.clone() }
    }

    /// Adds a record.
    pub(crate) fn push(&mut self, r: R) -> Result<()> {
        if self.buf.capacity() == 0 && self.cap != usize::MAX {
            // The whole share at once: a vector grown by doubling would take up to twice it.
            self.buf.reserve_exact(self.cap);
        }
        self.buf.push(r);
        if self.buf.len() >= self.cap {
            self.buf.sort_unstable();
            let run = write_records(&self.to, self.name, self.buf.drain(..).map(Ok))?;
            self.runs.push(run);
        }
        Ok(())
    }

    /// Merges `runs` into one run and removes their files.
    fn merge(&self, runs: Vec<(PathBuf, File, u64)>) -> Result<(PathBuf, File, u64)> {
        let mut readers = vec![];
        for (path, file, _) in &runs {
            let mut f = file.try_clone().map_err(|e| Error::io(path, e))?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
            readers.push((BufReader::with_capacity(self.read_buf, f), path.clone()));
        }
        let mut heap = BinaryHeap::new();
        for (i, (r, path)) in readers.iter_mut().enumerate() {
            if let Some(v) = read_record::<R>(r, path)? {
                heap.push(Reverse((v, i)));
            }
        }
        let merged = std::iter::from_fn(|| {
            let Reverse((v, i)) = heap.pop()?;
            let (r, path) = &mut readers[i];
            match read_record(r, path) {
                Ok(Some(next)) => heap.push(Reverse((next, i))),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            Some(Ok(v))
        });
        let run = write_records(&self.to, self.name, merged)?;
        for (p, _, _) in &runs {
            let _ = std::fs::remove_file(p);
        }
        Ok(run)
    }

    /// Sorts what was added.
    pub(crate) fn finish(mut self) -> Result<SortedRecords<R>> {
        self.buf.sort_unstable();
        if self.runs.is_empty() {
            return Ok(SortedRecords::Memory(std::mem::take(&mut self.buf)));
        }
        if !self.buf.is_empty() {
            let run = write_records(&self.to, self.name, self.buf.drain(..).map(Ok))?;
            self.runs.push(run);
        }
        self.buf = vec![];
        let mut runs = std::mem::take(&mut self.runs);
        while runs.len() > 1 {
            let rest = runs.split_off(runs.len().min(MERGE_FAN_IN));
            let merged = self.merge(runs)?;
            runs = rest;
            runs.push(merged);
        }
        let (path, file, n) = runs.pop().expect("one run");
        Ok(SortedRecords::File(path, file, n))
    }
}

impl<R: Pod> SortedRecords<R> {
    /// Hands every record, in order, to `f` in blocks.
    pub(crate) fn for_each(&self, f: &mut dyn FnMut(&[R]) -> Result<()>) -> Result<()> {
        match self {
            SortedRecords::Memory(v) => f(v),
            SortedRecords::File(path, file, n) => read_values(file, path, 0, *n, f),
        }
    }

    /// Number of records.
    pub(crate) fn len(&self) -> u64 {
        match self {
            SortedRecords::Memory(v) => v.len() as u64,
            SortedRecords::File(_, _, n) => *n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spill_to(dir: &Path) -> SpillTo {
        SpillTo::new(Scratch::new(dir, "test").unwrap(), StageMeter::start("test", 1 << 30))
    }

    #[test]
    fn a_tiny_disk_map_answers_like_a_hash_map() {
        // No room at all (1-bit filters) and some room (10-bit filters while they fit).
        for budget in [0, 200 << 10] {
            disk_map_agrees(budget);
        }
    }

    fn disk_map_agrees(budget: u64) {
        let d = tempfile::tempdir().unwrap();
        let to = spill_to(d.path());
        let mut m = DiskMap::new(Some(budget), &to);
        let mut plain = HashMap::new();
        let mut x: u128 = 0x1234_5678_9abc_def0_1122_3344_5566_7788;
        for i in 0..40_000u64 {
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D_9E37_79B9_7F4A_7C15).wrapping_add(1);
            // Some keys come back with a new value: the newest wins, in memory or in runs.
            let key = if i % 7 == 0 && i > 0 { *plain.keys().next().unwrap() } else { x };
            m.insert(key, i).unwrap();
            plain.insert(key, i);
        }
        assert!(m.runs() >= 1 && m.runs() <= MAX_RUNS, "{} runs", m.runs());
        assert!(to.meter().spilled_bytes() > 0);
        for (&k, &v) in &plain {
            assert_eq!(m.get(k).unwrap(), Some(v));
        }
        assert_eq!(m.get(42).unwrap(), None);
    }

    #[test]
    fn a_tiny_sorter_and_vec_keep_every_value_in_order() {
        let d = tempfile::tempdir().unwrap();
        let to = spill_to(d.path());
        let mut s = Sorter::new(Some(0), &to);
        let mut v: SpillVec<u32> = SpillVec::new("v", Some(0), &to);
        let mut want = vec![];
        for i in 0..10_000u32 {
            let k = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 5000;
            s.push(k, i).unwrap();
            want.push((k, i));
            v.push(i * 3).unwrap();
        }
        want.sort_unstable();
        let sorted = s.finish().unwrap();
        assert!(matches!(sorted, Sorted::File(..)));
        let mut got = vec![];
        sorted
            .for_each(&mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(got, want);
        let mut vals = vec![];
        v.for_each(&mut |b| {
            vals.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(vals, (0..10_000u32).map(|i| i * 3).collect::<Vec<_>>());
        assert_eq!(v.len(), 10_000);
    }

    #[test]
    fn a_tiny_record_sorter_merges_many_runs_in_order() {
        let d = tempfile::tempdir().unwrap();
        let to = spill_to(d.path());
        // 1,024 records a run: 150 runs, merged in rounds of 64.
        let mut s: RecordSorter<[u64; 2]> = RecordSorter::new("rec", Some(0), &to);
        let mut plain: RecordSorter<[u64; 2]> = RecordSorter::new("rec", None, &to);
        let mut want = vec![];
        let mut x = 0x1234_5678_9abc_def0u64;
        for i in 0..150 * 1024u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = [x % 40_000, i];
            s.push(r).unwrap();
            plain.push(r).unwrap();
            want.push(r);
        }
        want.sort_unstable();
        let (sorted, in_memory) = (s.finish().unwrap(), plain.finish().unwrap());
        assert!(matches!(sorted, SortedRecords::File(..)) && matches!(in_memory, SortedRecords::Memory(..)));
        assert_eq!((sorted.len(), in_memory.len()), (want.len() as u64, want.len() as u64));
        for s in [sorted, in_memory] {
            let mut got = vec![];
            s.for_each(&mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            assert!(got == want);
        }
        assert!(to.meter().spilled_bytes() >= 2 * 16 * want.len() as u64, "runs and merged runs are counted");
        let left: Vec<_> = std::fs::read_dir(to.scratch.dir()).unwrap().collect();
        assert_eq!(left.len(), 1, "merged runs are removed, the sorted file stays");
    }
}
