//! The memory budget of the stages whose data grows with the chain (ingest's unspent-output
//! map, the graph and transfer index builds, clustering): how a limit is written and what it
//! defaults to ([`parse_size`], [`default_limit`]), how much of it a stage used ([`StageMeter`]:
//! peak resident memory and bytes spilled to disk), and where spills go ([`Scratch`]).
//!
//! Spill files are scratch: they live in a directory of their own under the data directory, are
//! removed when the stage ends (and, after a crash, by the next run), and are never state that a
//! crash could corrupt; what a stage commits is written as before, atomically.

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const KIB: u64 = 1024;

/// Parses a size: a number of bytes, or a number with a unit: `K`/`KiB`, `M`/`MiB`, `G`/`GiB`,
/// `T`/`TiB` (powers of 1024, as `sort -S` reads them) or `KB`, `MB`, `GB`, `TB` (powers of
/// 1000). Fractions are allowed with a unit (`1.5GiB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    if num.is_empty() {
        return Err(format!("{text:?}: a size is a number with an optional unit, like 4GiB or 512MiB"));
    }
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => KIB.pow(2),
        "g" | "gib" => KIB.pow(3),
        "t" | "tib" => KIB.pow(4),
        "kb" => 1000,
        "mb" => 1000u64.pow(2),
        "gb" => 1000u64.pow(3),
        "tb" => 1000u64.pow(4),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use bytes, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)")),
    };
    let value = if let Ok(n) = num.parse::<u64>() {
        n.checked_mul(factor).ok_or_else(|| format!("{text:?}: too large"))?
    } else {
        let f: f64 = num.parse().map_err(|_| format!("{text:?}: {num:?} is not a number"))?;
        let v = f * factor as f64;
        if !(v.is_finite() && v < u64::MAX as f64) {
            return Err(format!("{text:?}: too large"));
        }
        v as u64
    };
    Ok(value)
}

/// A size for people: `4 GiB`, `512 MiB`, `1.5 GiB`, `812 bytes`.
pub fn format_size(bytes: u64) -> String {
    let units = [("TiB", KIB.pow(4)), ("GiB", KIB.pow(3)), ("MiB", KIB.pow(2)), ("KiB", KIB)];
    for (name, size) in units {
        if bytes >= size {
            let v = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) { format!("{} {name}", bytes / size) } else { format!("{v:.1} {name}") };
        }
    }
    format!("{bytes} bytes")
}

/// Memory this process may use: the machine's RAM (`MemTotal`), or the cgroup's limit when it
/// is lower (a container). `None` where neither can be read.
pub fn machine_memory() -> Option<u64> {
    let total = fs::read_to_string("/proc/meminfo").ok().and_then(|s| meminfo_total(&s));
    let cgroup = fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

fn meminfo_total(meminfo: &str) -> Option<u64> {
    let kb = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|k| k * KIB)
}

/// The default `--memory-limit`: half of [`machine_memory`] (the rest is for the page cache the
/// memory-mapped indexes and Parquet reads live on), at least 256 MiB; 4 GiB where the machine's
/// memory cannot be read.
pub fn default_limit() -> u64 {
    machine_memory().map(|m| (m / 2).max(256 * KIB.pow(2))).unwrap_or(4 * KIB.pow(3))
}

/// Peak resident memory of this process since the last [`reset_peak_rss`] (`VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    status_field("VmHWM:")
}

/// Anonymous resident memory of this process now (`RssAnon`: the heap and other memory no file
/// backs), in bytes.
pub fn current_anonymous() -> Option<u64> {
    status_field("RssAnon:")
}

/// Resident memory of this process now (`VmRSS`), in bytes.
pub fn current_rss() -> Option<u64> {
    status_field("VmRSS:")
}

fn status_field(name: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix(name))?;
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|k| k * KIB)
}

/// Starts a new peak: `VmHWM` becomes the resident memory of now (Linux ≥ 4.0; elsewhere the
/// peak stays that of the whole process, which only overstates a stage's).
pub fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

static RELEASE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Registers how memory the allocator keeps after it is freed goes back to the system (the
/// binary's allocator keeps it, to reuse it without page faults; see `crates/alloc`).
pub fn set_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Gives memory the allocator keeps back to the system. Stages call it between their phases
/// (reading, then writing), so the peak of one phase is not added to the next one's; without a
/// registered allocator (libraries, tests) it does nothing.
pub fn release_free_memory() {
    if let Some(release) = RELEASE.get() {
        release();
    }
}

/// What one stage used of its budget (in `--json` output and with `-v`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageMemory {
    /// The stage: `ingest`, `index`, `cluster`, …
    pub stage: String,
    /// The budget it ran under, in bytes (0: no limit).
    pub memory_limit: u64,
    /// Peak resident memory of the process during the stage, in bytes (0 where unknown). It
    /// counts the pages of memory-mapped index files the stage read, which are page cache the
    /// kernel takes back when memory runs short.
    pub peak_rss: u64,
    /// Peak anonymous resident memory (heap; no file behind it) during the stage, sampled every
    /// 10 ms, in bytes: what the budget governs.
    pub peak_anonymous: u64,
    /// Bytes written to scratch files because the budget was reached.
    pub spilled_bytes: u64,
    /// Seconds the stage took.
    pub seconds: f64,
}

impl StageMemory {
    /// One line for `-v`: `index: peak 1.2 GiB of 4 GiB, spilled 3.1 GiB, 41.2 s`.
    pub fn line(&self) -> String {
        let size = |b: u64| if b == 0 { "unknown".to_string() } else { format_size(b) };
        format!(
            "{}: peak memory {} ({} of it heap), {}, spilled {}, {:.1} s",
            self.stage,
            size(self.peak_rss),
            size(self.peak_anonymous),
            if self.memory_limit == 0 { "no limit".to_string() } else { format!("limit {}", format_size(self.memory_limit)) },
            format_size(self.spilled_bytes),
            self.seconds
        )
    }
}

/// A running stage's memory: resets the peak when it starts, counts spilled bytes, and reports.
#[derive(Debug, Clone)]
pub struct StageMeter {
    stage: String,
    limit: u64,
    started: Instant,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    spilled: AtomicU64,
    peak_anonymous: AtomicU64,
}

impl Counts {
    fn sample(&self) {
        if let Some(a) = current_anonymous() {
            self.peak_anonymous.fetch_max(a, Ordering::Relaxed);
        }
    }
}

impl StageMeter {
    /// Starts measuring `stage` under `limit` bytes (0: no limit). A thread samples the
    /// anonymous memory until the last clone of the meter is dropped.
    pub fn start(stage: &str, limit: u64) -> StageMeter {
        reset_peak_rss();
        let counts = Arc::new(Counts::default());
        counts.sample();
        let weak: Weak<Counts> = Arc::downgrade(&counts);
        let _ = std::thread::Builder::new().name("memory-sampler".into()).spawn(move || loop {
            std::thread::sleep(Duration::from_millis(10));
            match weak.upgrade() {
                Some(c) => c.sample(),
                None => return,
            }
        });
        StageMeter { stage: stage.to_string(), limit, started: Instant::now(), counts }
    }

    /// The budget in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Records `bytes` written to scratch files.
    pub fn spilled(&self, bytes: u64) {
        self.counts.spilled.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes spilled so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.counts.spilled.load(Ordering::Relaxed)
    }

    /// What the stage used, up to now.
    pub fn report(&self) -> StageMemory {
        StageMemory {
            stage: self.stage.clone(),
            memory_limit: self.limit,
            peak_rss: peak_rss().unwrap_or(0),
            peak_anonymous: {
                self.counts.sample();
                self.counts.peak_anonymous.load(Ordering::Relaxed)
            },
            spilled_bytes: self.spilled_bytes(),
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// A directory for one stage's spill files, `<data dir>/scratch/<stage>.<pid>`, removed with
/// everything in it when dropped. [`Scratch::new`] first removes what crashed runs left.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    next: AtomicU64,
}

impl Scratch {
    /// Creates the scratch directory of `stage` under `data_dir`.
    pub fn new(data_dir: &Path, stage: &str) -> std::io::Result<Scratch> {
        let root = data_dir.join("scratch");
        remove_stale(&root);
        let dir = root.join(format!("{stage}.{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        Ok(Scratch { dir, next: AtomicU64::new(0) })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new file name in the directory, `<prefix>-<n>` (not created).
    pub fn file(&self, prefix: &str) -> PathBuf {
        self.dir.join(format!("{prefix}-{}", self.next.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(root) = self.dir.parent() {
            let _ = fs::remove_dir(root);
        }
    }
}

/// Removes scratch directories whose process is gone (a crash or kill -9 left them).
fn remove_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let pid = name.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("32 mib"), Ok(32 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("4XB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("1.2.3G").is_err());
        assert!(parse_size("99999999999T").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_print_for_people() {
        assert_eq!(format_size(4 << 30), "4 GiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(812), "812 bytes");
        assert_eq!(parse_size(&format_size(32 << 20).replace(' ', "")), Ok(32 << 20));
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        assert_eq!(meminfo_total("MemTotal:       24595712 kB\nMemFree: 1 kB\n"), Some(24595712 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
        assert!(default_limit() >= 256 << 20);
    }

    #[test]
    fn the_peak_follows_a_stage_and_is_reset() {
        let meter = StageMeter::start("test", 1 << 30);
        let before = peak_rss().expect("linux");
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        std::thread::sleep(Duration::from_millis(30));
        let report = meter.report();
        let during = report.peak_rss;
        assert!(during >= before + (60 << 20), "{during} vs {before}");
        assert!(report.peak_anonymous >= 64 << 20, "the heap of the stage is sampled: {report:?}");
        drop(big);
        reset_peak_rss();
        let after = peak_rss().expect("linux");
        assert!(after + (32 << 20) < during, "reset peak {after} should be below {during}");
    }

    #[test]
    fn scratch_is_removed_and_stale_scratch_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join("scratch").join("index.4294967");
        fs::create_dir_all(&stale).unwrap();
        fs::write(stale.join("run-0"), b"x").unwrap();
        let s = Scratch::new(d.path(), "index").unwrap();
        assert!(!stale.exists(), "a dead process's scratch is removed");
        let f = s.file("run");
        fs::write(&f, b"spill").unwrap();
        let dir = s.dir().to_path_buf();
        drop(s);
        assert!(!dir.exists() && !d.path().join("scratch").exists());
    }
}
