//! Test utilities shared by tracehound's crates.
//!
//! * [`RecordedNode`]: a loopback JSON-RPC server answering from recorded responses
//!   (`rpc_response_<method>_<params>.json`, as bitcoin-etl's test resources store them).
//! * [`BlocksNode`]: a loopback JSON-RPC server answering Bitcoin Core's calls from a list of
//!   blocks, so the RPC ingest path can be compared with the block-file path on the same chain.
//! * [`testdata`], [`write_blk_file`], [`table_rows`]: fixtures and table readers.

use bitcoin::consensus::Encodable;
use bitcoin::{Block, Txid};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The repository's `testdata/` folder.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Writes `blocks` as one `blk00000.dat` with `magic`, XORed with `xor` (and its `xor.dat`) if given.
pub fn write_blk_file(dir: &Path, magic: [u8; 4], raw_blocks: &[Vec<u8>], xor: Option<[u8; 8]>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut bytes = vec![];
    for b in raw_blocks {
        bytes.extend_from_slice(&magic);
        bytes.extend_from_slice(&(b.len() as u32).to_le_bytes());
        bytes.extend_from_slice(b);
    }
    if let Some(key) = xor {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b ^= key[i % 8];
        }
        std::fs::write(dir.join("xor.dat"), key).unwrap();
    }
    let path = dir.join("blk00000.dat");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every row of a SQL query over the store at `data_dir`, as JSON objects.
pub fn table_rows(data_dir: &Path, sql: &str) -> Vec<serde_json::Map<String, Value>> {
    let store = tracehound_tables::Store::open(data_dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let batches = rt.block_on(async {
        let ctx = tracehound_tables::sql::session(&store, None).await.unwrap();
        tracehound_tables::sql::query(&ctx, sql).await.unwrap()
    });
    let mut buf = vec![];
    tracehound_tables::format::write_results(&batches, tracehound_tables::format::OutputFormat::Json, &mut buf).unwrap();
    String::from_utf8(buf).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

type Handler = dyn Fn(&str, &Value) -> Result<Value, String> + Send + Sync;

/// A loopback HTTP JSON-RPC server; stops when dropped.
pub struct RpcServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RpcServer {
    fn start(handler: Arc<Handler>) -> RpcServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let answer = |call: &Value| -> Value {
                    let method = call["method"].as_str().unwrap_or_default();
                    let params = call.get("params").cloned().unwrap_or(json!([]));
                    match handler(method, &params) {
                        Ok(r) => json!({"result": r, "error": null, "id": call["id"]}),
                        Err(e) => json!({"result": null, "error": {"code": -5, "message": e}, "id": call["id"]}),
                    }
                };
                let reply = match serde_json::from_str::<Value>(&body) {
                    Ok(Value::Array(calls)) => Value::Array(calls.iter().map(answer).collect()),
                    Ok(call) => answer(&call),
                    Err(e) => json!({"error": e.to_string()}),
                };
                let resp =
                    tiny_http::Response::from_string(reply.to_string()).with_header("Content-Type: application/json".parse::<tiny_http::Header>().unwrap());
                let _ = req.respond(resp);
            }
        });
        RpcServer { url, server, thread: Some(thread) }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One JSON-RPC call to `url`; the node's error as `Err`.
pub fn rpc_call(url: &str, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent.post(url).header("Content-Type", "application/json").send(&body).map_err(|e| e.to_string())?;
    let v: Value =
        serde_json::from_str(&resp.body_mut().with_config().limit(1 << 30).read_to_string().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    match v.get("error") {
        Some(e) if !e.is_null() => Err(e.to_string()),
        _ => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// A loopback JSON-RPC proxy in front of a real node that answers the `hidden` methods as a node
/// without them does ("Method not found"), so that a reader's fallbacks run against real data.
pub struct HidingProxy;

impl HidingProxy {
    /// Starts a proxy to `upstream` that hides `hidden`.
    pub fn start(upstream: &str, hidden: &[&str]) -> RpcServer {
        let upstream = upstream.to_string();
        let hidden: Vec<String> = hidden.iter().map(|m| m.to_string()).collect();
        RpcServer::start(Arc::new(move |method: &str, params: &Value| {
            if hidden.iter().any(|h| h == method) {
                return Err(format!("Method not found: {method}"));
            }
            rpc_call(&upstream, method, params.clone())
        }))
    }
}

/// Serves recorded responses: `getblock [h, 2]` from `rpc_response_getblock_<h>_2.json`, other
/// methods from `rpc_response_<method>_<first param>.json`, or `rpc_response_<method>.json`.
pub struct RecordedNode;

impl RecordedNode {
    /// Starts a server over the recordings in `dirs`.
    pub fn start(dirs: &[PathBuf]) -> RpcServer {
        let dirs = dirs.to_vec();
        RpcServer::start(Arc::new(move |method: &str, params: &Value| {
            let ps: Vec<String> = params
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| match p {
                    Value::String(s) => s.clone(),
                    // The recordings were made from Python: booleans are named `True`/`False`.
                    Value::Bool(true) => "True".into(),
                    Value::Bool(false) => "False".into(),
                    other => other.to_string(),
                })
                .collect();
            let mut names = vec![format!("rpc_response_{method}_{}.json", ps.join("_"))];
            if let Some(first) = ps.first() {
                names.push(format!("rpc_response_{method}_{first}.json"));
            }
            names.push(format!("rpc_response_{method}.json"));
            for d in &dirs {
                for n in &names {
                    if let Ok(text) = std::fs::read_to_string(d.join(n)) {
                        return serde_json::from_str(&text).map_err(|e| e.to_string());
                    }
                }
            }
            Err(format!("no recording for {method} {params}"))
        }))
    }
}

/// Answers `getblockchaininfo`, `getblockcount`, `getblockhash`, `getblock <hash> 2` and
/// `getrawtransaction <txid> true` from `blocks` (heights from 0), like a Bitcoin Core node.
pub struct BlocksNode;

fn btc_decimal(sat: u64) -> Value {
    // The node writes amounts as JSON numbers with 8 decimals.
    serde_json::from_str(&tracehound_core::amount::format_btc(sat)).unwrap()
}

fn tx_json(tx: &bitcoin::Transaction) -> Value {
    let mut hex_bytes = vec![];
    tx.consensus_encode(&mut hex_bytes).unwrap();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, o)| json!({"value": btc_decimal(o.value.to_sat()), "n": n, "scriptPubKey": {"hex": hex::encode(o.script_pubkey.as_bytes())}}))
        .collect();
    json!({"txid": tx.compute_txid().to_string(), "hash": tx.compute_wtxid().to_string(), "hex": hex::encode(hex_bytes), "vout": vout})
}

impl BlocksNode {
    /// Starts a node serving `blocks` (block `i` at height `i`) on chain `chain` (e.g. `regtest`).
    pub fn start(blocks: Vec<Block>, chain: &str) -> RpcServer {
        let by_hash: HashMap<String, usize> = blocks.iter().enumerate().map(|(i, b)| (b.block_hash().to_string(), i)).collect();
        let mut txs: HashMap<Txid, (usize, usize)> = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            for (j, t) in b.txdata.iter().enumerate() {
                txs.insert(t.compute_txid(), (i, j));
            }
        }
        let chain = chain.to_string();
        RpcServer::start(Arc::new(move |method: &str, params: &Value| match method {
            "getblockchaininfo" => Ok(json!({"chain": chain, "blocks": blocks.len() - 1})),
            "getblockcount" => Ok(json!(blocks.len() - 1)),
            "getblockhash" => {
                let h = params[0].as_u64().ok_or("height")? as usize;
                blocks.get(h).map(|b| json!(b.block_hash().to_string())).ok_or_else(|| "Block height out of range".to_string())
            }
            "getblock" => {
                let i = *by_hash.get(params[0].as_str().unwrap_or_default()).ok_or("Block not found")?;
                let b = &blocks[i];
                let h = &b.header;
                let mut j = json!({
                    "hash": b.block_hash().to_string(), "height": i, "version": h.version.to_consensus(),
                    "merkleroot": h.merkle_root.to_string(), "time": h.time, "nonce": h.nonce,
                    "bits": format!("{:08x}", h.bits.to_consensus()), "nTx": b.txdata.len(),
                    "tx": b.txdata.iter().map(tx_json).collect::<Vec<_>>(),
                });
                if i > 0 {
                    j["previousblockhash"] = json!(h.prev_blockhash.to_string());
                }
                Ok(j)
            }
            "getrawtransaction" => {
                let txid: Txid = params[0].as_str().unwrap_or_default().parse().map_err(|_| "bad txid")?;
                let (i, j) = *txs.get(&txid).ok_or("No such mempool or blockchain transaction")?;
                Ok(tx_json(&blocks[i].txdata[j]))
            }
            other => Err(format!("Method not found: {other}")),
        }))
    }
}

/// The repository's `tools/evm/` folder (anvil, solc, the EVM scenario).
pub fn evm_tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/evm")
}

/// A real `anvil` node on a free loopback port; killed when dropped.
///
/// The binary comes from `TRACEHOUND_ANVIL`, else the npm package's native binary under
/// `tools/evm/node_modules` (installed by `npm ci --prefix tools/evm`, which `.ci/run` does; the
/// `.bin/anvil` node wrapper is not used, so that killing the node kills anvil).
pub struct Anvil {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: std::process::Child,
    /// anvil writes old states here (`--cache-path`); removed with the node.
    _cache: tempfile::TempDir,
}

impl Anvil {
    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts anvil with `args` added to `--port <free> --silent` and waits until it answers.
    pub fn start(args: &[&str]) -> Anvil {
        let bin =
            std::env::var_os("TRACEHOUND_ANVIL").map(PathBuf::from).unwrap_or_else(|| evm_tools().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"));
        assert!(bin.exists(), "anvil not found at {}: run `tools/install-test-deps.sh` (or set TRACEHOUND_ANVIL to an anvil binary)", bin.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cache = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(&bin)
            .args(["--port", &port.to_string(), "--silent", "--cache-path"])
            .arg(cache.path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let node = Anvil { url: format!("http://127.0.0.1:{port}"), child, _cache: cache };
        let started = std::time::Instant::now();
        while node.rpc("eth_chainId", json!([])).is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "anvil did not answer on {} within 30 s", node.url);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        node
    }

    /// One JSON-RPC call; the node's error as `Err`.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        rpc_call(&self.url, method, params)
    }

    /// Starts anvil exactly as `tools/evm/scenario.mjs` needs it (its flags, from the script's
    /// README), so the scenario gives the same chain every run.
    pub fn start_for_scenario() -> Anvil {
        Anvil::start(&SCENARIO_ANVIL_ARGS)
    }

    /// [`Anvil::start_for_scenario`] with `extra` flags (e.g. `--max-persisted-states 0` for long
    /// benchmark chains: faster, but no `debug_*` calls or balances at blocks older than ~500).
    pub fn start_for_scenario_with(extra: &[&str]) -> Anvil {
        let mut args: Vec<&str> = SCENARIO_ANVIL_ARGS.to_vec();
        args.extend_from_slice(extra);
        Anvil::start(&args)
    }

    /// Runs `tools/evm/scenario.mjs` against this node with `extra` arguments, writing the
    /// ground truth to `out`; returns it parsed.
    pub fn run_scenario(&self, out: &Path, extra: &[&str]) -> Value {
        let script = evm_tools().join("scenario.mjs");
        let status = std::process::Command::new("node")
            .arg(&script)
            .args(["--rpc", &self.url, "--out"])
            .arg(out)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("node runs (Node.js is needed for the EVM scenario)");
        assert!(status.success(), "{} failed", script.display());
        serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
    }
}

/// The anvil flags of the EVM scenario (`tools/evm/README.md`).
pub const SCENARIO_ANVIL_ARGS: [&str; 19] = [
    "--chain-id",
    "31337",
    "--accounts",
    "30",
    "--balance",
    "10000",
    "--mnemonic",
    "test test test test test test test test test test test junk",
    "--timestamp",
    "1655942400",
    "--hardfork",
    "prague",
    "--order",
    "fifo",
    "--gas-limit",
    "30000000",
    "--base-fee",
    "1000000000",
    "--no-mining",
];

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `last` block of the newest committed chunk of `chain` in the manifest of `data_dir`.
pub fn manifest_tip(data_dir: &Path, chain: &str) -> Option<u64> {
    let s = std::fs::read_to_string(data_dir.join("manifest.json")).ok()?;
    let v: Value = serde_json::from_str(&s).ok()?;
    v["chains"][chain]["chunks"].as_array()?.last()?["last"].as_u64()
}

/// Runs `cmd` and sends it SIGKILL `delay` after the committed tip of `chain` reaches
/// `at_least` (watched every millisecond), so a kill lands mid-ingest whatever the machine's
/// speed. Returns the tip left behind.
pub fn kill_after_tip(cmd: &mut std::process::Command, data_dir: &Path, chain: &str, at_least: u64, delay: std::time::Duration) -> Option<u64> {
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn");
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if manifest_tip(data_dir, chain).is_some_and(|t| t >= at_least) {
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    manifest_tip(data_dir, chain)
}

/// Runs ethereum-etl (PyPI, installed by `tools/install-test-deps.sh`) with `args` in `dir`,
/// panicking with its error output if it fails.
pub fn run_ethereum_etl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("python3").arg(evm_tools().join("run_ethereum_etl.py")).args(args).current_dir(dir).output().expect("python3 runs");
    assert!(out.status.success(), "ethereumetl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
