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
    tracehound_tables::sql::write_results(&batches, tracehound_tables::sql::OutputFormat::Json, &mut buf).unwrap();
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
