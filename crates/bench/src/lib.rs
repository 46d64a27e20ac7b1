//! The driver of `benches/blk_ingest.rs`: Bitcoin `blk*.dat` → tables, tracehound side by side
//! with peer crates reading the same files.
//!
//! Run without `--tool`, the benchmark simulates a chain once (reused afterwards), then runs
//! every tool in a child process of its own (the same executable with `--tool <name> --dir
//! <chain>`) so that each one's peak memory is its own. A child does the work, then prints one
//! JSON line; the parent collects the lines and prints a markdown table. The peers are
//! dev-dependencies, so they live in the benchmark file and are handed in as [`Tool`]s.

/// Sets up the allocator the `tracehound` binary ships with ([`tracehound_alloc`]), for every
/// tool of every benchmark alike. Call first thing in `main`.
pub fn configure_allocator() {
    tracehound_alloc::configure();
}

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use tracehound_ingest::bitcoin::blk::{ingest_blk_files, BlkOptions};
use tracehound_simulate::{simulate, SimConfig};
use tracehound_tables::Store;

/// The name of tracehound's own row in the table, and the baseline of the ratios.
pub const TRACEHOUND: &str = "tracehound";

/// What a tool read from the chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Blocks of the best chain delivered.
    pub blocks: u64,
    /// Transactions in them, coinbases included.
    pub transactions: u64,
    /// Non-coinbase inputs whose spent output (and so its amount) was found.
    pub inputs_resolved: u64,
}

/// Runs a tool over a `blocks` directory. `scratch` is an empty directory the tool may write to
/// (removed afterwards); the time of the call is what is measured.
pub type Run = fn(blocks_dir: &Path, scratch: &Path) -> Result<Counts, String>;

/// A tool under benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Its name in the table and on the `--tool` argument.
    pub name: &'static str,
    /// Reads the whole best chain, resolving every input's spent output.
    pub run: Run,
}

/// One tool's run, as its child process reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The tool.
    pub tool: String,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// What it read.
    pub counts: Counts,
    /// Total size of the `blk*.dat` files.
    pub bytes: u64,
    /// Peak resident memory of the child process (`VmHWM`), in KiB.
    pub peak_rss_kb: u64,
}

impl Measurement {
    /// The JSON line a child prints.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "tool": self.tool,
            "seconds": self.seconds,
            "blocks": self.counts.blocks,
            "transactions": self.counts.transactions,
            "inputs_resolved": self.counts.inputs_resolved,
            "bytes": self.bytes,
            "peak_rss_kb": self.peak_rss_kb,
        })
        .to_string()
    }

    /// Reads a child's JSON line.
    pub fn from_json(line: &str) -> Result<Measurement, String> {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let missing = |k: &str| format!("no {k} in {line}");
        let num = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| missing(k));
        Ok(Measurement {
            tool: v.get("tool").and_then(serde_json::Value::as_str).ok_or_else(|| missing("tool"))?.to_string(),
            seconds: v.get("seconds").and_then(serde_json::Value::as_f64).ok_or_else(|| missing("seconds"))?,
            counts: Counts { blocks: num("blocks")?, transactions: num("transactions")?, inputs_resolved: num("inputs_resolved")? },
            bytes: num("bytes")?,
            peak_rss_kb: num("peak_rss_kb")?,
        })
    }
}

/// The command line: ours (`--tool`, `--dir`) and libtest's, which cargo passes and which are
/// ignored except for `--bench` (present under `cargo bench`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// Run this tool (child mode).
    pub tool: Option<String>,
    /// The chain directory (with `blocks/`) the child reads.
    pub dir: Option<PathBuf>,
    /// Run by `cargo bench`: full size. Without it (`cargo test --benches`) a small smoke run.
    pub bench: bool,
}

impl Args {
    /// Parses arguments, the program name excluded.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Args {
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--tool" => out.tool = it.next(),
                "--dir" => out.dir = it.next().map(PathBuf::from),
                "--bench" => out.bench = true,
                _ => {} // libtest flags and filters
            }
        }
        out
    }
}

/// The benchmark's `main`: tracehound first, then `peers`.
pub fn main(peers: &[Tool]) -> ExitCode {
    configure_allocator();
    let args = Args::parse(std::env::args().skip(1));
    let mut tools = vec![Tool { name: TRACEHOUND, run: run_tracehound }];
    tools.extend_from_slice(peers);
    let result = match &args.tool {
        Some(name) => child(&tools, name, args.dir.as_deref()),
        None => parent(&tools, args.bench),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blk_ingest: {e}");
            ExitCode::FAILURE
        }
    }
}

/// tracehound: the whole best chain into a fresh store (Parquet tables), inputs resolved.
fn run_tracehound(blocks_dir: &Path, scratch: &Path) -> Result<Counts, String> {
    let mut store = Store::open_for_write(scratch.join("data")).map_err(|e| e.to_string())?;
    let r = ingest_blk_files(&mut store, &BlkOptions::new(blocks_dir), &|_| {}).map_err(|e| e.to_string())?;
    drop(store);
    // `inputs` counts the coinbase input of every block too.
    let spending = r.inputs.saturating_sub(r.blocks);
    Ok(Counts { blocks: r.blocks, transactions: r.transactions, inputs_resolved: spending.saturating_sub(r.unresolved_inputs) })
}

fn child(tools: &[Tool], name: &str, dir: Option<&Path>) -> Result<(), String> {
    let tool = tools.iter().find(|t| t.name == name).ok_or_else(|| format!("unknown tool {name}"))?;
    let dir = dir.ok_or("--tool needs --dir")?;
    let blocks_dir = dir.join("blocks");
    let bytes = blk_bytes(&blocks_dir)?;
    let scratch = target_dir().join(format!("bench-scratch-{}-{}", tool.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let start = Instant::now();
    let counts = (tool.run)(&blocks_dir, &scratch);
    let seconds = start.elapsed().as_secs_f64();
    let peak_rss_kb = peak_rss_kb();
    let _ = std::fs::remove_dir_all(&scratch);
    let m = Measurement { tool: tool.name.to_string(), seconds, counts: counts?, bytes, peak_rss_kb };
    println!("{}", m.to_json());
    Ok(())
}

fn parent(tools: &[Tool], bench: bool) -> Result<(), String> {
    let (default_blocks, default_txs) = if bench { (8000, 200) } else { (300, 20) };
    if !bench {
        eprintln!("no --bench argument (not run by `cargo bench`): smoke run on a small chain");
    }
    let blocks = env_u64("BENCH_BLOCKS", default_blocks)?;
    let txs = u32::try_from(env_u64("BENCH_TXS_PER_BLOCK", default_txs)?).map_err(|_| "BENCH_TXS_PER_BLOCK is too large")?;
    let dir = prepare_chain(blocks, txs)?;
    let wanted = std::env::var("BENCH_TOOLS").ok();
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for tool in tools {
        if let Some(w) = &wanted {
            if !w.split(',').any(|n| n.trim() == tool.name) {
                continue;
            }
        }
        eprintln!("running {} on {}", tool.name, dir.display());
        let out = Command::new(&exe)
            .args(["--tool", tool.name, "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{'));
        match (out.status.success(), line) {
            (true, Some(line)) => results.push(Measurement::from_json(line.trim())?),
            _ => {
                eprintln!("{} failed ({}):\n{stdout}", tool.name, out.status);
                failed.push(tool.name);
            }
        }
    }
    println!("\nblk*.dat → tables: {blocks} blocks × ~{txs} transactions, {}\n", dir.display());
    println!("{}", markdown_table(&results));
    if results.iter().any(|m| m.counts != results[0].counts) {
        println!("Counts differ between tools (blocks_iterator holds back the last `max_reorg` = 6 blocks): compare the rates.");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}

fn env_u64(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|e| format!("{name}={v}: {e}")),
        Err(_) => Ok(default),
    }
}

/// The simulated chain `target/bench-chain-<blocks>-<txs>`, written once and then reused (its
/// `ground_truth.json` is written last, so it marks a finished chain).
pub fn prepare_chain(blocks: u64, txs_per_block: u32) -> Result<PathBuf, String> {
    let dir = target_dir().join(format!("bench-chain-{blocks}-{txs_per_block}"));
    if dir.join("ground_truth.json").exists() {
        eprintln!("reusing the simulated chain in {}", dir.display());
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    eprintln!("simulating {blocks} blocks × ~{txs_per_block} transactions into {} (once)", dir.display());
    let cfg = SimConfig { blocks, txs_per_block, seed: 7, ..Default::default() };
    let start = Instant::now();
    let truth = simulate(&cfg, &dir).map_err(|e| e.to_string())?;
    eprintln!("simulated {} transactions in {:.1} s", truth.transactions, start.elapsed().as_secs_f64());
    Ok(dir)
}

/// A simulated chain (seed 1) under `root/sim`, ingested into `root/data` and indexed: made once,
/// then reused (ingest and index only catch up).
pub fn prepare_index(blocks: u64, txs_per_block: u32, root: &Path) -> tracehound_graph::GraphIndex {
    let sim = root.join("sim");
    let data = root.join("data");
    if !sim.join("ground_truth.json").exists() {
        eprintln!("simulating {blocks} blocks into {}", sim.display());
        simulate(&SimConfig { blocks, txs_per_block, seed: 1, ..Default::default() }, &sim).expect("simulate");
    }
    let mut store = Store::open_for_write(&data).expect("store");
    ingest_blk_files(&mut store, &BlkOptions::new(sim.join("blocks")), &|_| {}).expect("ingest");
    drop(store);
    let store = Store::open(&data).expect("store");
    tracehound_graph::index::update(&store, "bitcoin_regtest", &mut |_| {}).expect("index");
    tracehound_graph::GraphIndex::open_current(&store, "bitcoin_regtest").expect("open index")
}

/// Cargo's target directory, found from this executable (`<target>/<profile>/deps/<bench>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    exe.as_deref()
        .and_then(|e| e.ancestors().find(|a| a.file_name() == Some(OsStr::new("deps"))))
        .and_then(|deps| deps.parent()?.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Total size of the `blk*.dat` files in `blocks_dir`.
pub fn blk_bytes(blocks_dir: &Path) -> Result<u64, String> {
    let err = |e: std::io::Error| format!("{}: {e}", blocks_dir.display());
    let mut total = 0;
    for entry in std::fs::read_dir(blocks_dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("blk") && name.ends_with(".dat") {
            total += entry.metadata().map_err(err)?.len();
        }
    }
    Ok(total)
}

/// CPU seconds (user + system) process `pid` has used so far ("self" for this one), from
/// `/proc/<pid>/stat`; 0 where `/proc` is missing.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) end with ')'; utime and stime are
    // fields 14 and 15, in clock ticks of 1/100 s on Linux.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    // `rest` starts at field 3 (the state).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (field(14) + field(15)) / 100.0
}

/// This process's peak resident memory in KiB (0 where `/proc` is missing).
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status").ok().as_deref().and_then(parse_vm_hwm).unwrap_or(0)
}

/// The `VmHWM` line of `/proc/<pid>/status`, in KiB.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    kb.split_whitespace().next()?.parse().ok()
}

/// The results as a markdown table, with ratios against tracehound's row.
pub fn markdown_table(results: &[Measurement]) -> String {
    let base = results.iter().find(|m| m.tool == TRACEHOUND);
    let ratio = |x: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 => format!("{:.2}×", x / b),
        _ => "–".to_string(),
    };
    let mut s = String::from(
        "| tool | blocks | transactions | inputs resolved | seconds | MB/s | tx/s | peak RSS MiB | time vs tracehound | RSS vs tracehound |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for m in results {
        let secs = m.seconds.max(1e-9);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.0} | {:.0} | {} | {} |\n",
            m.tool,
            m.counts.blocks,
            m.counts.transactions,
            m.counts.inputs_resolved,
            m.seconds,
            m.bytes as f64 / 1e6 / secs,
            m.counts.transactions as f64 / secs,
            m.peak_rss_kb as f64 / 1024.0,
            ratio(m.seconds, base.map(|b| b.seconds)),
            ratio(m.peak_rss_kb as f64, base.map(|b| b.peak_rss_kb as f64)),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(tool: &str, seconds: f64, rss: u64) -> Measurement {
        Measurement { tool: tool.into(), seconds, counts: Counts { blocks: 10, transactions: 1000, inputs_resolved: 1500 }, bytes: 2_000_000, peak_rss_kb: rss }
    }

    #[test]
    fn args_keep_ours_and_ignore_libtest_flags() {
        let a = Args::parse(["--bench", "--tool", "blocks_iterator", "--dir", "/c", "filter"].map(String::from));
        assert_eq!(a, Args { tool: Some("blocks_iterator".into()), dir: Some("/c".into()), bench: true });
        assert_eq!(Args::parse(Vec::new()), Args::default());
    }

    #[test]
    fn measurement_json_round_trips() {
        let x = m("tracehound", 1.5, 2048);
        assert_eq!(Measurement::from_json(&x.to_json()).unwrap(), x);
        assert!(Measurement::from_json(r#"{"tool":"x"}"#).is_err());
    }

    #[test]
    fn vm_hwm_is_read_from_status() {
        assert_eq!(parse_vm_hwm("Name:\tx\nVmPeak:\t 900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 1 kB\n"), Some(12345));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn table_has_rates_and_ratios() {
        let t = markdown_table(&[m("tracehound", 2.0, 1024), m("peer", 4.0, 4096)]);
        assert!(t.contains("| tracehound | 10 | 1000 | 1500 | 2.00 | 1.0 | 500 | 1 | 1.00× | 1.00× |"), "{t}");
        assert!(t.contains("| peer | 10 | 1000 | 1500 | 4.00 | 0.5 | 250 | 4 | 2.00× | 4.00× |"), "{t}");
        assert!(markdown_table(&[m("peer", 1.0, 1)]).contains("| – | – |"));
    }
}
