//! Explorer CSV exports → rows of the `transfers` table.
//!
//! Investigators often hold only an explorer export. Columns are matched by header name
//! (case, spaces and punctuation ignored), so both Etherscan-style exports (`Txhash, Blockno,
//! UnixTimestamp, From, To, Value, ContractAddress, TokenSymbol`, also `Value_IN(ETH)` /
//! `Value_OUT(ETH)` and `TokenValue`) and a plain layout (`tx_hash, block_number, timestamp, from,
//! to, asset, amount`) read. Amounts:
//! * `amount` (or `amount_raw`) is an exact integer of base units (wei, token units);
//! * `value`-like columns are whole units as explorers print them (`1.5` ETH), turned into base
//!   units exactly with the row's `TokenDecimal`/`decimals` column, else 18 for the native coin
//!   (every EVM chain's) and `--decimals` for tokens. In files with ethereum-etl's names
//!   (`from_address`, `to_address`, `value`), `value` is in base units, as ethereum-etl writes it.
//! * `ContractAddress` is the token in token-transfer exports (with `TokenSymbol`/`TokenValue`),
//!   and the created contract in transaction exports (a creation's `To` is empty).
//!
//! A malformed row is reported with file and line and the others still land. Rows an explorer
//! marks as failed (`Status` = `Error…`, non-empty `ErrCode`, `isError` = 1) moved nothing and
//! are skipped. Importing the same bytes twice changes nothing.

use crate::evm::rows::{columns, TransferRow};
use crate::Error;
use bitcoin::hashes::{sha256, Hash};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tracehound_core::evm::{parse_decimal_u256, parse_units, U256};
use tracehound_tables::Store;

/// What one file's import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CsvImportReport {
    /// The file.
    pub file: String,
    /// Rows stored.
    pub rows: u64,
    /// Rows skipped because the explorer marks them failed.
    pub failed_skipped: u64,
    /// Malformed rows, as `file:line: reason`.
    pub bad_rows: Vec<String>,
    /// The same bytes were imported before: nothing changed.
    pub already_imported: bool,
}

/// Options of an explorer CSV import.
#[derive(Debug, Clone)]
pub struct CsvImportOptions {
    /// Chain the rows belong to (`ethereum`, `bsc`, …).
    pub chain: String,
    /// Decimals of `value`-like columns when the file does not say (default 18).
    pub decimals: Option<u32>,
}

fn norm(h: &str) -> String {
    h.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

/// Where each field is in the header.
#[derive(Default, Debug)]
struct Columns {
    hash: Option<usize>,
    block: Option<usize>,
    timestamp: Option<usize>,
    datetime: Option<usize>,
    from: Option<usize>,
    to: Option<usize>,
    asset: Option<usize>,
    symbol: Option<usize>,
    amount: Option<usize>,
    value: Vec<usize>,
    decimals: Option<usize>,
    /// `Status` (failed when `0` or an error text) and `isError`/`ErrCode` (failed when set).
    status: Vec<(usize, bool)>,
    token_id: Option<usize>,
    internal: bool,
    /// The file lists token transfers: `ContractAddress` is the token (in transaction exports
    /// it is the contract a transaction created).
    tokens: bool,
    /// ethereum-etl-style names (`from_address`): `value` is in base units.
    base_unit_values: bool,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Columns {
        let mut c = Columns::default();
        for (i, h) in header.iter().enumerate() {
            match norm(h).as_str() {
                "txhash" | "transactionhash" | "hash" | "txid" | "parenttxhash" => c.hash = c.hash.or(Some(i)),
                "blockno" | "blocknumber" | "block" | "blockheight" => c.block = Some(i),
                "unixtimestamp" | "timestamp" | "blocktimestamp" | "timestampunix" => c.timestamp = Some(i),
                "datetimeutc" | "datetime" | "date" => c.datetime = Some(i),
                "from" | "sender" => c.from = Some(i),
                "fromaddress" => {
                    c.from = Some(i);
                    c.base_unit_values = true;
                }
                "to" | "toaddress" | "txto" | "recipient" => c.to = Some(i),
                "contractaddress" => c.asset = c.asset.or(Some(i)),
                "tokenaddress" | "asset" | "token" => {
                    c.asset = Some(i);
                    c.tokens = true;
                }
                "tokensymbol" | "symbol" | "tokenname" | "tokenvalue" => {
                    if norm(h) == "tokenvalue" {
                        c.value.push(i);
                    } else if norm(h) != "tokenname" {
                        c.symbol = Some(i);
                    }
                    c.tokens = true;
                }
                "amount" | "amountraw" | "valueraw" | "rawvalue" => c.amount = Some(i),
                "value" | "valueineth" | "valueouteth" | "quantity" | "valuein" | "valueout" => c.value.push(i),
                "tokendecimal" | "tokendecimals" | "decimals" => c.decimals = Some(i),
                "status" | "receiptstatus" => c.status.push((i, false)),
                "errcode" | "iserror" => c.status.push((i, true)),
                "tokenid" => c.token_id = Some(i),
                "parenttxfrom" => c.internal = true,
                _ => {}
            }
        }
        c
    }

    fn missing(&self) -> Vec<&'static str> {
        let mut m = vec![];
        if self.hash.is_none() {
            m.push("transaction hash (Txhash / tx_hash)");
        }
        if self.block.is_none() {
            m.push("block (Blockno / block_number)");
        }
        if self.timestamp.is_none() && self.datetime.is_none() {
            m.push("time (UnixTimestamp / timestamp / DateTime (UTC))");
        }
        if self.from.is_none() || self.to.is_none() {
            m.push("from and to");
        }
        if self.base_unit_values && self.amount.is_none() && !self.value.is_empty() {
            // ethereum-etl layouts write `value` in base units.
        } else if self.amount.is_none() && self.value.is_empty() {
            m.push("amount (amount in base units, or Value / TokenValue in whole units)");
        }
        m
    }
}

fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(d.and_utc().timestamp());
        }
    }
    chrono::DateTime::parse_from_rfc3339(t).map(|d| d.timestamp()).map_err(|_| format!("time {t:?} is neither Unix seconds nor a UTC date-time"))
}

fn address(text: &str, what: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.len() == 42 && t.starts_with("0x") && t[2..].bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t)
    } else {
        Err(format!("{what} {text:?} is not a 0x address"))
    }
}

/// Imports one CSV file into `chain`'s `transfers` table.
pub fn import_transfers_csv(store: &mut Store, path: &Path, opts: &CsvImportOptions) -> Result<CsvImportReport, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let sha = sha256::Hash::hash(&bytes).to_string();
    let name = path.display().to_string();
    let mut report = CsvImportReport { file: name.clone(), rows: 0, failed_skipped: 0, bad_rows: vec![], already_imported: false };
    if store.manifest().imports.get(&opts.chain).is_some_and(|v| v.iter().any(|i| i.sha256 == sha)) {
        report.already_imported = true;
        return Ok(report);
    }
    let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes)).into_owned();
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| Error::Corrupt { file: path.to_path_buf(), offset: 0, reason: format!("header: {e}") })?.clone();
    let mut cols = Columns::from_header(&header);
    if cols.base_unit_values && cols.amount.is_none() && cols.value.len() == 1 {
        cols.amount = cols.value.pop();
    }
    let missing = cols.missing();
    if !missing.is_empty() {
        return Err(Error::Input(format!(
            "{name}: line 1: the header has no column for {} (header: {})",
            missing.join(", "),
            header.iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let source: Arc<str> = format!("import:{}", path.file_name().map_or(name.clone(), |n| n.to_string_lossy().into_owned())).into();
    let chain: Arc<str> = opts.chain.as_str().into();
    let mut rows: Vec<TransferRow> = vec![];
    let mut positions: HashMap<String, u32> = HashMap::new();
    for (i, rec) in reader.records().enumerate() {
        let line = rec.as_ref().ok().and_then(|r| r.position()).map_or(i as u64 + 2, |p| p.line());
        let result = rec.map_err(|e| e.to_string()).and_then(|rec| {
            let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).unwrap_or_default();
            let failed = cols.status.iter().any(|(c, is_error_flag)| {
                let s = rec.get(*c).unwrap_or_default().trim().to_ascii_lowercase();
                if *is_error_flag {
                    !(s.is_empty() || s == "0")
                } else {
                    s == "0" || s.starts_with("error") || s.starts_with("fail") || s.starts_with("revert")
                }
            });
            if failed {
                return Ok(None);
            }
            let hash = get(cols.hash).to_ascii_lowercase();
            if !(hash.len() == 66 && hash.starts_with("0x") && hash[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(format!("transaction hash {hash:?} is not 0x + 64 hex digits"));
            }
            let block: u64 = get(cols.block).parse().map_err(|_| format!("block {:?} is not a number", get(cols.block)))?;
            let ts = if cols.timestamp.is_some() { parse_time(get(cols.timestamp))? } else { parse_time(get(cols.datetime))? };
            let from = address(get(cols.from), "from")?;
            let asset_text = get(cols.asset);
            let native = !cols.tokens && !cols.base_unit_values
                || asset_text.is_empty()
                || ["native", "eth", "bnb", "matic", "pol", "avax", "ftm", "xdai", "ron", "one"].contains(&asset_text.to_ascii_lowercase().as_str());
            // A contract creation in a transaction export: no To, the created contract in ContractAddress.
            let to_text = match get(cols.to) {
                "" if native && !asset_text.is_empty() => asset_text,
                t => t,
            };
            let to = address(to_text, "to")?;
            let asset = if native { "native".to_string() } else { address(asset_text, "contract address")? };
            let token_id = cols.token_id.map(|c| rec.get(c).unwrap_or_default().trim().to_string()).filter(|s| !s.is_empty());
            let amount: U256 = if let Some(c) = cols.amount {
                parse_decimal_u256(rec.get(c).unwrap_or_default()).map_err(|e| format!("amount: {e}"))?
            } else if token_id.is_some() {
                U256::from(1)
            } else {
                let decimals = match cols.decimals.map(|c| rec.get(c).unwrap_or_default().trim()).filter(|s| !s.is_empty()) {
                    Some(d) => d.parse::<u32>().ok().filter(|d| *d <= 77).ok_or_else(|| format!("decimals {d:?} is not a number from 0 to 77"))?,
                    None if native => 18,
                    None => opts.decimals.ok_or("a token amount in whole units needs the token's decimals: add a TokenDecimal column or give --decimals")?,
                };
                // Value_IN / Value_OUT: the one that is not zero.
                let values: Vec<&str> = cols.value.iter().map(|c| rec.get(*c).unwrap_or_default().trim()).filter(|v| !v.is_empty()).collect();
                let mut amount = U256::ZERO;
                for v in values {
                    let a = parse_units(v, decimals).map_err(|e| format!("value: {e}"))?;
                    if !a.is_zero() {
                        amount = a;
                    }
                }
                amount
            };
            let kind = match (native, token_id.is_some(), cols.internal) {
                (true, _, true) => "internal",
                (true, _, false) => "native_tx",
                (false, true, _) => "erc721",
                (false, false, _) => "erc20",
            };
            let pos = positions.entry(hash.clone()).or_default();
            let row = TransferRow {
                chain: chain.clone(),
                block_number: block,
                block_timestamp: ts,
                transaction_hash: Some(hash.clone().into()),
                transaction_index: None,
                position: *pos,
                kind,
                asset: asset.into(),
                asset_symbol: cols.symbol.map(|c| rec.get(c).unwrap_or_default().trim().to_string()).filter(|s| !s.is_empty()),
                token_id,
                from_address: Some(from.into()),
                to_address: Some(to.into()),
                amount: None,
                amount_raw: String::new(),
                source: source.clone(),
            }
            .with_amount(amount);
            *pos += 1;
            Ok(Some(row))
        });
        match result {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => report.failed_skipped += 1,
            Err(reason) => report.bad_rows.push(format!("{name}:{line}: {reason}")),
        }
    }
    rows.sort_by(|a, b| (a.block_number, &a.transaction_hash, a.position).cmp(&(b.block_number, &b.transaction_hash, b.position)));
    report.rows = rows.len() as u64;
    if rows.is_empty() {
        // Nothing to store: a corrected file (or the same with other options) can still be imported.
        return Ok(report);
    }
    let batch = columns::transfers(&rows)?;
    if store.commit_import(&opts.chain, "transfers", &[batch], &name, &sha)?.is_none() {
        report.already_imported = true;
        report.rows = 0;
    }
    Ok(report)
}
