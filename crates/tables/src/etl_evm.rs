//! ethereum-etl's export layout for EVM chains: `blocks`, `transactions`, `receipts`, `logs`,
//! `token_transfers` and `traces` with ethereum-etl's columns, in its order and its formats, so
//! tooling written for ethereum-etl reads tracehound's exports unchanged.
//!
//! As ethereum-etl writes them: integers (wei included, whatever their size) are bare decimal
//! numbers; null is an empty CSV field and JSON `null`; lists are JSON arrays, and in CSV their
//! items joined with `,` (withdrawals as compact JSON objects joined with `,`); CSV lines end in
//! `\r\n`, fields are quoted only when needed, and an empty export is an empty file; JSON lines
//! separate keys and items with `", "` and `": "` (Python's defaults).

use crate::export::{read_chunk_file, ExportFormat};
use crate::{Error, Result, Store};
use datafusion::arrow::array::{Array, ListArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::Write;

/// How a value is written.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Num,
    Str,
    /// A list (of strings or numbers); `[]` in JSON when null.
    List,
    /// Stored as JSON text.
    Withdrawals,
    /// A column ethereum-etl has and tracehound does not store (L2 fee fields): always null.
    Null,
}

use Kind::*;

/// (ethereum-etl column, tracehound column, kind).
type Spec = &'static [(&'static str, &'static str, Kind)];

const BLOCKS: Spec = &[
    ("number", "number", Num),
    ("hash", "hash", Str),
    ("parent_hash", "parent_hash", Str),
    ("nonce", "nonce", Str),
    ("sha3_uncles", "sha3_uncles", Str),
    ("logs_bloom", "logs_bloom", Str),
    ("transactions_root", "transactions_root", Str),
    ("state_root", "state_root", Str),
    ("receipts_root", "receipts_root", Str),
    ("miner", "miner", Str),
    ("difficulty", "difficulty", Num),
    ("total_difficulty", "total_difficulty", Num),
    ("size", "size", Num),
    ("extra_data", "extra_data", Str),
    ("gas_limit", "gas_limit", Num),
    ("gas_used", "gas_used", Num),
    ("timestamp", "timestamp", Num),
    ("transaction_count", "transaction_count", Num),
    ("base_fee_per_gas", "base_fee_per_gas", Num),
    ("withdrawals_root", "withdrawals_root", Str),
    ("withdrawals", "withdrawals", Withdrawals),
    ("blob_gas_used", "blob_gas_used", Num),
    ("excess_blob_gas", "excess_blob_gas", Num),
];

const TRANSACTIONS: Spec = &[
    ("hash", "hash", Str),
    ("nonce", "nonce", Num),
    ("block_hash", "block_hash", Str),
    ("block_number", "block_number", Num),
    ("transaction_index", "transaction_index", Num),
    ("from_address", "from_address", Str),
    ("to_address", "to_address", Str),
    ("value", "value", Num),
    ("gas", "gas", Num),
    ("gas_price", "gas_price", Num),
    ("input", "input", Str),
    ("block_timestamp", "block_timestamp", Num),
    ("max_fee_per_gas", "max_fee_per_gas", Num),
    ("max_priority_fee_per_gas", "max_priority_fee_per_gas", Num),
    ("transaction_type", "transaction_type", Num),
    ("max_fee_per_blob_gas", "max_fee_per_blob_gas", Num),
    ("blob_versioned_hashes", "blob_versioned_hashes", List),
];

const RECEIPTS: Spec = &[
    ("transaction_hash", "hash", Str),
    ("transaction_index", "transaction_index", Num),
    ("block_hash", "block_hash", Str),
    ("block_number", "block_number", Num),
    ("cumulative_gas_used", "receipt_cumulative_gas_used", Num),
    ("gas_used", "receipt_gas_used", Num),
    ("contract_address", "receipt_contract_address", Str),
    ("root", "receipt_root", Str),
    ("status", "receipt_status", Num),
    ("effective_gas_price", "receipt_effective_gas_price", Num),
    ("l1_fee", "", Null),
    ("l1_gas_used", "", Null),
    ("l1_gas_price", "", Null),
    ("l1_fee_scalar", "", Null),
    ("blob_gas_price", "receipt_blob_gas_price", Num),
    ("blob_gas_used", "receipt_blob_gas_used", Num),
];

const LOGS: Spec = &[
    ("log_index", "log_index", Num),
    ("transaction_hash", "transaction_hash", Str),
    ("transaction_index", "transaction_index", Num),
    ("block_hash", "block_hash", Str),
    ("block_number", "block_number", Num),
    ("address", "address", Str),
    ("data", "data", Str),
    ("topics", "topics", List),
];

const TOKEN_TRANSFERS: Spec = &[
    ("token_address", "token_address", Str),
    ("from_address", "from_address", Str),
    ("to_address", "to_address", Str),
    ("value", "value", Num),
    ("transaction_hash", "transaction_hash", Str),
    ("log_index", "log_index", Num),
    ("block_number", "block_number", Num),
];

const TRACES: Spec = &[
    ("block_number", "block_number", Num),
    ("transaction_hash", "transaction_hash", Str),
    ("transaction_index", "transaction_index", Num),
    ("from_address", "from_address", Str),
    ("to_address", "to_address", Str),
    ("value", "value", Num),
    ("input", "input", Str),
    ("output", "output", Str),
    ("trace_type", "trace_type", Str),
    ("call_type", "call_type", Str),
    ("reward_type", "reward_type", Str),
    ("gas", "gas", Num),
    ("gas_used", "gas_used", Num),
    ("subtraces", "subtraces", Num),
    ("trace_address", "trace_address", List),
    ("error", "error", Str),
    ("status", "status", Num),
    ("trace_id", "trace_id", Str),
];

/// The ethereum-etl tables and the tracehound table each is read from.
pub const ETHEREUM_ETL_TABLES: [(&str, &str); 6] = [
    ("blocks", "blocks"),
    ("transactions", "transactions"),
    ("receipts", "transactions"),
    ("logs", "logs"),
    ("token_transfers", "token_transfers"),
    ("traces", "traces"),
];

fn spec(table: &str) -> Option<Spec> {
    Some(match table {
        "blocks" => BLOCKS,
        "transactions" => TRANSACTIONS,
        "receipts" => RECEIPTS,
        "logs" => LOGS,
        "token_transfers" => TOKEN_TRANSFERS,
        "traces" => TRACES,
        _ => return None,
    })
}

/// One value, as text: `None` for null, scalars as displayed, list items separately.
enum Cell {
    Null,
    Scalar(String),
    Items(Vec<String>),
}

fn cells(batch: &RecordBatch, spec: Spec) -> Result<Vec<Vec<Cell>>> {
    let opts = FormatOptions::default();
    let mut columns = vec![];
    for (_, col, kind) in spec {
        if *kind == Null {
            columns.push(None);
            continue;
        }
        let idx = batch.schema().index_of(col).map_err(|e| Error::Query(e.into()))?;
        columns.push(Some(batch.column(idx).clone()));
    }
    let mut out: Vec<Vec<Cell>> = (0..batch.num_rows()).map(|_| Vec::with_capacity(spec.len())).collect();
    for (col, (_, _, kind)) in columns.iter().zip(spec.iter()) {
        let Some(col) = col else {
            out.iter_mut().for_each(|r| r.push(Cell::Null));
            continue;
        };
        if *kind == List {
            let list = col.as_any().downcast_ref::<ListArray>().ok_or_else(|| Error::NotFound("a list column is not a list".into()))?;
            for (i, row) in out.iter_mut().enumerate() {
                if list.is_null(i) {
                    row.push(Cell::Items(vec![]));
                    continue;
                }
                let items = list.value(i);
                let f = ArrayFormatter::try_new(items.as_ref(), &opts).map_err(|e| Error::Query(e.into()))?;
                row.push(Cell::Items((0..items.len()).map(|j| f.value(j).to_string()).collect()));
            }
            continue;
        }
        let f = ArrayFormatter::try_new(col.as_ref(), &opts).map_err(|e| Error::Query(e.into()))?;
        for (i, row) in out.iter_mut().enumerate() {
            row.push(if col.is_null(i) { Cell::Null } else { Cell::Scalar(f.value(i).to_string()) });
        }
    }
    Ok(out)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A withdrawal as stored (`evm::rows` writes ethereum-etl's key order).
#[derive(serde::Deserialize)]
struct Withdrawal {
    index: u64,
    validator_index: u64,
    address: String,
    amount: u64,
}

fn withdrawals(text: &str) -> Vec<Withdrawal> {
    serde_json::from_str(text).unwrap_or_default()
}

/// `{"index": 1, "validator_index": 2, ...}` as Python's `json.dumps` writes it, or compact.
fn withdrawal_json(w: &Withdrawal, compact: bool) -> String {
    let (colon, comma) = if compact { (":", ",") } else { (": ", ", ") };
    format!(
        "{{\"index\"{colon}{}{comma}\"validator_index\"{colon}{}{comma}\"address\"{colon}{}{comma}\"amount\"{colon}{}}}",
        w.index,
        w.validator_index,
        serde_json::Value::from(w.address.as_str()),
        w.amount
    )
}

/// A JSON string as Python writes it with `ensure_ascii`: non-ASCII as `\uXXXX` escapes.
fn py_str(s: &str) -> String {
    let json = serde_json::Value::from(s).to_string();
    if json.is_ascii() {
        return json;
    }
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", u));
            }
        }
    }
    out
}

fn json_value(cell: &Cell, kind: Kind, numeric_items: bool) -> String {
    match (cell, kind) {
        (Cell::Null, Withdrawals | List) => "[]".into(),
        (Cell::Null, _) => "null".into(),
        (Cell::Scalar(s), Num) => s.clone(),
        (Cell::Scalar(s), Withdrawals) => format!("[{}]", withdrawals(s).iter().map(|w| withdrawal_json(w, false)).collect::<Vec<_>>().join(", ")),
        (Cell::Scalar(s), _) => py_str(s),
        (Cell::Items(items), _) => {
            let parts: Vec<String> = items.iter().map(|i| if numeric_items { i.clone() } else { py_str(i) }).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

fn csv_value(cell: &Cell, kind: Kind) -> String {
    match (cell, kind) {
        (Cell::Null, _) => String::new(),
        (Cell::Scalar(s), Withdrawals) => csv_field(&withdrawals(s).iter().map(|w| withdrawal_json(w, true)).collect::<Vec<_>>().join(",")),
        (Cell::Scalar(s), _) => csv_field(s),
        (Cell::Items(items), _) => csv_field(&items.join(",")),
    }
}

/// Writes `table` (an ethereum-etl table name) of EVM `chain` in ethereum-etl's layout; returns
/// the number of rows.
pub fn export_ethereum_etl(store: &Store, chain: &str, table: &str, format: ExportFormat, out: &mut dyn Write) -> Result<u64> {
    let spec = spec(table)
        .ok_or_else(|| Error::NotFound(format!("ethereum-etl has no table {table:?}; its tables are {}", ETHEREUM_ETL_TABLES.map(|t| t.0).join(", "))))?;
    let source = ETHEREUM_ETL_TABLES.iter().find(|t| t.0 == table).expect("listed").1;
    let io = |e: std::io::Error| Error::Io { path: "<output>".into(), source: e };
    let manifest = store.chain(chain).ok_or_else(|| Error::NotFound(format!("no blocks stored for chain {chain:?}")))?;
    let numeric_lists = table == "traces";
    let mut n = 0u64;
    for chunk in &manifest.chunks {
        let Some(f) = chunk.tables.get(source) else { continue };
        for batch in read_chunk_file(&store.root().join(&f.path))? {
            for row in cells(&batch, spec)? {
                match format {
                    ExportFormat::Csv => {
                        if n == 0 {
                            let header: Vec<&str> = spec.iter().map(|s| s.0).collect();
                            write!(out, "{}\r\n", header.join(",")).map_err(io)?;
                        }
                        let fields: Vec<String> = row.iter().zip(spec.iter()).map(|(c, s)| csv_value(c, s.2)).collect();
                        write!(out, "{}\r\n", fields.join(",")).map_err(io)?;
                    }
                    ExportFormat::Json => {
                        let fields: Vec<String> = row
                            .iter()
                            .zip(spec.iter())
                            .map(|(c, s)| format!("{}: {}", serde_json::Value::from(s.0), json_value(c, s.2, numeric_lists)))
                            .collect();
                        writeln!(out, "{{{}}}", fields.join(", ")).map_err(io)?;
                    }
                    ExportFormat::Parquet => return Err(Error::NotFound("the ethereum-etl layout is CSV or JSON lines".into())),
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Withdrawals as ethereum-etl writes them (checked against its exporter on a real block).
    #[test]
    fn withdrawals_layout() {
        let stored = r#"[{"index":1,"validator_index":2,"address":"0xabcd000000000000000000000000000000000003","amount":16},{"index":2,"validator_index":3,"address":"0xabcd000000000000000000000000000000000004","amount":32}]"#;
        let cell = Cell::Scalar(stored.into());
        assert_eq!(
            json_value(&cell, Withdrawals, false),
            r#"[{"index": 1, "validator_index": 2, "address": "0xabcd000000000000000000000000000000000003", "amount": 16}, {"index": 2, "validator_index": 3, "address": "0xabcd000000000000000000000000000000000004", "amount": 32}]"#
        );
        assert_eq!(
            csv_value(&cell, Withdrawals),
            r#""{""index"":1,""validator_index"":2,""address"":""0xabcd000000000000000000000000000000000003"",""amount"":16},{""index"":2,""validator_index"":3,""address"":""0xabcd000000000000000000000000000000000004"",""amount"":32}""#
        );
        assert_eq!(json_value(&Cell::Scalar("[]".into()), Withdrawals, false), "[]");
        assert_eq!(csv_value(&Cell::Scalar("[]".into()), Withdrawals), "");
        assert_eq!(json_value(&Cell::Null, List, false), "[]");
        assert_eq!(json_value(&Cell::Items(vec!["0".into(), "1".into()]), List, true), "[0, 1]");
        assert_eq!(csv_value(&Cell::Items(vec!["0".into(), "1".into()]), List), "\"0,1\"");
        assert_eq!(json_value(&Cell::Scalar("é😀".into()), Str, false), r#""\u00e9\ud83d\ude00""#);
    }
}
