//! The bitcoin-etl export layout: blocks with `"type": "block"`, transactions with their inputs
//! and outputs nested, one JSON object per line, so tools written for bitcoin-etl read
//! tracehound's exports unchanged. As in bitcoin-etl, a coinbase transaction lists no inputs
//! (its input is the block's `coinbase_param`); tracehound's own `inputs` table keeps it as a row.

use crate::export::read_chunk_file;
use crate::{Error, Result, Store};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;

const BLOCK_FIELDS: [&str; 13] = [
    "hash",
    "size",
    "stripped_size",
    "weight",
    "number",
    "version",
    "merkle_root",
    "timestamp",
    "nonce",
    "bits",
    "coinbase_param",
    "transaction_count",
    "prev_hash",
];
const TX_FIELDS: [&str; 11] =
    ["hash", "size", "virtual_size", "version", "lock_time", "block_number", "block_hash", "block_timestamp", "is_coinbase", "index", "input_count"];
const TX_TAIL: [&str; 4] = ["output_count", "input_value", "output_value", "fee"];
const INPUT_FIELDS: [&str; 9] =
    ["index", "spent_transaction_hash", "spent_output_index", "script_hex", "sequence", "required_signatures", "type", "addresses", "value"];
const OUTPUT_FIELDS: [&str; 6] = ["index", "script_hex", "required_signatures", "type", "addresses", "value"];

fn rows(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
        for b in batches {
            w.write(b).map_err(|e| Error::Query(e.into()))?;
        }
        w.finish().map_err(|e| Error::Query(e.into()))?;
    }
    if buf.is_empty() {
        return Ok(vec![]);
    }
    Ok(serde_json::from_slice(&buf).expect("arrow writes valid JSON"))
}

fn pick(row: &Map<String, Value>, fields: &[&str], out: &mut Map<String, Value>) {
    for f in fields {
        out.insert(f.to_string(), row.get(*f).cloned().unwrap_or(Value::Null));
    }
}

/// Writes `blocks` (`table = "blocks"`) or `transactions` of `chain` in bitcoin-etl's layout.
pub fn export_etl(store: &Store, chain: &str, table: &str, out: &mut dyn Write) -> Result<u64> {
    let manifest = store.chain(chain).ok_or_else(|| Error::NotFound(format!("no data stored for chain {chain:?}")))?;
    let io = |e: std::io::Error| Error::Io { path: "<output>".into(), source: e };
    let mut n = 0u64;
    for chunk in &manifest.chunks {
        let load = |t: &str| -> Result<Vec<Map<String, Value>>> {
            let f = chunk.tables.get(t).ok_or_else(|| Error::NotFound(format!("chunk {}..={} has no {t} file", chunk.first, chunk.last)))?;
            rows(&read_chunk_file(&store.root().join(&f.path))?)
        };
        match table {
            "blocks" => {
                for b in load("blocks")? {
                    let mut o = Map::new();
                    o.insert("type".into(), "block".into());
                    pick(&b, &BLOCK_FIELDS, &mut o);
                    writeln!(out, "{}", Value::Object(o)).map_err(io)?;
                    n += 1;
                }
            }
            "transactions" => {
                let mut inputs: HashMap<String, Vec<Value>> = HashMap::new();
                for i in load("inputs")? {
                    if i.get("spent_transaction_hash").is_none_or(Value::is_null) {
                        continue; // the coinbase input: bitcoin-etl shows it as the block's coinbase_param
                    }
                    let mut o = Map::new();
                    pick(&i, &INPUT_FIELDS, &mut o);
                    inputs.entry(i["transaction_hash"].as_str().unwrap_or_default().to_string()).or_default().push(Value::Object(o));
                }
                let mut outputs: HashMap<String, Vec<Value>> = HashMap::new();
                for i in load("outputs")? {
                    let mut o = Map::new();
                    pick(&i, &OUTPUT_FIELDS, &mut o);
                    outputs.entry(i["transaction_hash"].as_str().unwrap_or_default().to_string()).or_default().push(Value::Object(o));
                }
                for t in load("transactions")? {
                    let hash = t["hash"].as_str().unwrap_or_default().to_string();
                    let mut o = Map::new();
                    o.insert("type".into(), "transaction".into());
                    pick(&t, &TX_FIELDS, &mut o);
                    let ins = inputs.remove(&hash).unwrap_or_default();
                    o.insert("input_count".into(), ins.len().into());
                    o.insert("inputs".into(), Value::Array(ins));
                    o.insert("outputs".into(), Value::Array(outputs.remove(&hash).unwrap_or_default()));
                    pick(&t, &TX_TAIL, &mut o);
                    writeln!(out, "{}", Value::Object(o)).map_err(io)?;
                    n += 1;
                }
            }
            other => return Err(Error::NotFound(format!("the bitcoin-etl layout has blocks and transactions, not {other:?}"))),
        }
    }
    Ok(n)
}
