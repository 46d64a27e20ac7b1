//! The `tokens` table on a real anvil node: the EVM scenario's token plus contracts that answer
//! `symbol()`/`name()`/`decimals()` in every odd way real tokens do (bytes32 like MKR, only the
//! upper-case variants, reverts, an invalid opcode, text that is not UTF-8, NUL characters, no
//! data, non-zero padding), checked against what each contract was made to answer and against
//! ethereum-etl's `export_tokens` (PyPI) on the same node; ingest asks only tokens it does not
//! know yet. And a chain of imported transfers only gets the bundled metadata.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use tracehound_core::evm::U256;
use tracehound_ingest::evm::tokens::{refresh_tokens, token_metadata, TokenSource};
use tracehound_ingest::evm::{ingest_evm, EvmOptions};
use tracehound_tables::Store;
use tracehound_testing::{table_rows, Anvil, HidingProxy};

/// The first dev account of the scenario's mnemonic (unlocked in anvil).
const DEV: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const TRANSFER: &str = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// What a test contract answers, by function signature.
type Answers = Vec<(&'static str, Answer)>;

/// What a test contract does when called with one selector.
#[derive(Clone)]
enum Answer {
    /// Returns these bytes.
    Data(Vec<u8>),
    /// `REVERT` with no data.
    Revert,
    /// The designated invalid opcode (0xfe): the call halts.
    Invalid,
}

fn sel(signature: &str) -> [u8; 4] {
    alloy_primitives::keccak256(signature)[..4].try_into().unwrap()
}

/// Init code of a contract that emits `Transfer(0, deployer, 1)` when created (so that it is a
/// token of `token_transfers`) and then answers each selector of `answers` as told, reverting
/// for any other call.
fn responder(answers: &[(&str, Answer)]) -> Vec<u8> {
    // Runtime: selector = calldata[0..4]; one comparison per answer; a revert; the answers; data.
    let dispatch_len = 6 + 11 * answers.len() + 4;
    let body_len = |a: &Answer| match a {
        Answer::Data(_) => 16,
        Answer::Revert => 5,
        Answer::Invalid => 2,
    };
    let mut dest = dispatch_len;
    let mut data_at = dispatch_len + answers.iter().map(|(_, a)| body_len(a)).sum::<usize>();
    let mut code = vec![0x60, 0x00, 0x35, 0x60, 0xe0, 0x1c];
    let mut bodies = vec![];
    let mut data = vec![];
    for (signature, answer) in answers {
        code.push(0x80);
        code.push(0x63);
        code.extend_from_slice(&sel(signature));
        code.push(0x14);
        code.push(0x61);
        code.extend_from_slice(&(dest as u16).to_be_bytes());
        code.push(0x57);
        bodies.push(0x5b);
        match answer {
            Answer::Data(d) => {
                let (len, off) = ((d.len() as u16).to_be_bytes(), (data_at as u16).to_be_bytes());
                bodies.extend_from_slice(&[0x61, len[0], len[1], 0x61, off[0], off[1], 0x60, 0x00, 0x39, 0x61, len[0], len[1], 0x60, 0x00, 0xf3]);
                data.extend_from_slice(d);
                data_at += d.len();
            }
            Answer::Revert => bodies.extend_from_slice(&[0x60, 0x00, 0x80, 0xfd]),
            Answer::Invalid => bodies.push(0xfe),
        }
        dest += body_len(answer);
    }
    code.extend_from_slice(&[0x60, 0x00, 0x80, 0xfd]);
    assert_eq!(code.len(), dispatch_len);
    code.extend(bodies);
    code.extend(data);
    // Init: the Transfer log, then return the runtime.
    let mut init = vec![0x60, 0x01, 0x60, 0x00, 0x52, 0x33, 0x60, 0x00, 0x7f];
    init.extend(hex::decode(TRANSFER).unwrap());
    init.extend_from_slice(&[0x60, 0x20, 0x60, 0x00, 0xa3]);
    let offset = init.len() + 13;
    let (len, off) = ((code.len() as u16).to_be_bytes(), (offset as u16).to_be_bytes());
    init.extend_from_slice(&[0x61, len[0], len[1], 0x80, 0x61, off[0], off[1], 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3]);
    assert_eq!(init.len(), offset);
    init.extend(code);
    init
}

fn abi_string(s: &[u8]) -> Vec<u8> {
    let mut out = word(0x20);
    out.extend(word(s.len() as u64));
    out.extend_from_slice(s);
    out.resize(64 + s.len().div_ceil(32) * 32, 0);
    out
}

fn bytes32(s: &[u8]) -> Vec<u8> {
    let mut out = s.to_vec();
    out.resize(32, 0);
    out
}

fn word(v: u64) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    out[24..].copy_from_slice(&v.to_be_bytes());
    out
}

/// Deploys contracts (one block) and returns their addresses.
fn deploy(node: &Anvil, inits: &[Vec<u8>]) -> Vec<String> {
    let hashes: Vec<String> = inits
        .iter()
        .map(|init| {
            let tx = json!({"from": DEV, "data": format!("0x{}", hex::encode(init)), "gas": "0x200000"});
            node.rpc("eth_sendTransaction", json!([tx])).unwrap().as_str().unwrap().to_string()
        })
        .collect();
    node.rpc("evm_mine", json!([])).unwrap();
    hashes
        .iter()
        .map(|h| {
            let r = node.rpc("eth_getTransactionReceipt", json!([h])).unwrap();
            assert_eq!(r["status"], json!("0x1"), "deployment {h}");
            assert_eq!(r["logs"].as_array().unwrap().len(), 1, "the Transfer of {h}");
            r["contractAddress"].as_str().unwrap().to_ascii_lowercase()
        })
        .collect()
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// The stored `tokens` rows: address → (symbol, name, decimals, source).
type Row = (Option<String>, Option<String>, Option<u64>, String);
fn tokens(data: &Path) -> BTreeMap<String, Row> {
    table_rows(data, "SELECT address, symbol, name, decimals, source FROM tokens")
        .into_iter()
        .map(|r| {
            (
                text(r.get("address")).unwrap(),
                (text(r.get("symbol")), text(r.get("name")), r.get("decimals").and_then(Value::as_u64), text(r.get("source")).unwrap()),
            )
        })
        .collect()
}

fn row(symbol: Option<&str>, name: Option<&str>, decimals: Option<u64>) -> Row {
    (symbol.map(str::to_string), name.map(str::to_string), decimals, "node".to_string())
}

#[test]
fn tokens_table_matches_the_contracts_and_ethereum_etl_and_grows_incrementally() {
    use Answer::*;
    let node = Anvil::start_for_scenario();
    let dir = tempfile::tempdir().unwrap();
    let truth = node.run_scenario(&dir.path().join("ground_truth.json"), &[]);
    let tusd = truth["assets"]["TUSD"].clone();

    // Every odd answer, and what ethereum-etl's rules make of it.
    let d = |b: Vec<u8>| Data(b);
    let cases: Vec<(&str, Answers, Row)> = vec![
        (
            "MKR-style bytes32 texts",
            vec![("symbol()", d(bytes32(b"MKR"))), ("name()", d(bytes32(b"Maker"))), ("decimals()", d(word(18)))],
            row(Some("MKR"), Some("Maker"), Some(18)),
        ),
        (
            "only the upper-case variants",
            vec![("SYMBOL()", d(abi_string(b"UPPR"))), ("NAME()", d(bytes32(b"Upper Name"))), ("DECIMALS()", d(word(8)))],
            row(Some("UPPR"), Some("Upper Name"), Some(8)),
        ),
        ("every call reverts", vec![], row(None, None, None)),
        (
            "an invalid opcode, decimals that are no uint8",
            vec![("symbol()", Invalid), ("name()", d(abi_string(b"Halting"))), ("decimals()", d(word(300))), ("DECIMALS()", Revert)],
            row(None, Some("Halting"), None),
        ),
        (
            // A string that is not UTF-8 is read again as a bytes32: its first word (0x20) is " ".
            "text that is not UTF-8, decimals too short",
            vec![("symbol()", d(abi_string(b"\xff\xfe"))), ("name()", d(bytes32(b"\xff\xfeX"))), ("decimals()", d(vec![0; 16]))],
            row(Some(" "), None, None),
        ),
        (
            "NUL characters, an all-zero word, zero decimals",
            vec![("symbol()", d(abi_string(b"N\0UL\0"))), ("name()", d(bytes32(b""))), ("decimals()", d(word(0)))],
            row(Some("NUL"), Some(""), Some(0)),
        ),
        (
            "no data, non-zero padding",
            vec![
                ("symbol()", d(vec![])),
                (
                    "name()",
                    d({
                        let mut s = abi_string(b"Pad");
                        s[70] = 1;
                        s
                    }),
                ),
                ("decimals()", d(word(255))),
            ],
            row(None, Some(" "), Some(255)),
        ),
        (
            "a string at an unusual offset, answers with trailing bytes",
            vec![
                ("symbol()", d([word(0x40), word(7), word(3), bytes32(b"Odd")].concat())),
                ("name()", d([abi_string(b"Odd Token"), vec![0xaa; 32]].concat())),
                ("decimals()", d([word(2), vec![0xbb; 7]].concat())),
            ],
            row(Some("Odd"), Some("Odd Token"), Some(2)),
        ),
    ];
    let addresses = deploy(&node, &cases.iter().map(|(_, answers, _)| responder(answers)).collect::<Vec<_>>());

    let data = dir.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let opts = EvmOptions::new(node.url.clone());
    let r = ingest_evm(&mut store, &opts, &|_| {}).unwrap();
    let t = r.tokens.clone().expect("tokens refreshed");
    assert_eq!((t.tokens, t.asked, t.bundled, t.unknown, t.written), (cases.len() as u64 + 1, cases.len() as u64 + 1, 0, 0, true), "{t:?}");
    drop(store);
    let got = tokens(&data);
    let mut want: BTreeMap<String, Row> = BTreeMap::new();
    want.insert(tusd["address"].as_str().unwrap().to_string(), row(tusd["symbol"].as_str(), tusd["name"].as_str(), tusd["decimals"].as_u64()));
    for ((what, _, expected), address) in cases.iter().zip(&addresses) {
        assert_eq!(got.get(address), Some(expected), "{what} ({address})");
        want.insert(address.clone(), expected.clone());
    }
    assert_eq!(got, want, "one row per token of token_transfers");

    // ethereum-etl's export_tokens on the same node and addresses: the same symbol, name and
    // decimals (CSV: empty for null; JSON: null and "" apart).
    let etl = dir.path().join("etl");
    std::fs::create_dir_all(&etl).unwrap();
    std::fs::write(etl.join("token_addresses.txt"), got.keys().map(|a| format!("{a}\n")).collect::<String>()).unwrap();
    for ext in ["csv", "json"] {
        tracehound_testing::run_ethereum_etl(&etl, &["export_tokens", "-t", "token_addresses.txt", "-p", &node.url, "-w", "1", "-o", &format!("tokens.{ext}")]);
    }
    let mut from_csv = BTreeMap::new();
    let mut reader = csv::Reader::from_path(etl.join("tokens.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header[..4], ["address", "symbol", "name", "decimals"]);
    for rec in reader.records() {
        let rec = rec.unwrap();
        from_csv.insert(rec[0].to_string(), [rec[1].to_string(), rec[2].to_string(), rec[3].to_string()]);
    }
    let ours_csv: BTreeMap<String, [String; 3]> = got
        .iter()
        .map(|(a, (s, n, d, _))| (a.clone(), [s.clone().unwrap_or_default(), n.clone().unwrap_or_default(), d.map(|d| d.to_string()).unwrap_or_default()]))
        .collect();
    assert_eq!(ours_csv, from_csv, "ethereum-etl export_tokens (CSV)");
    let from_json: BTreeMap<String, Row> = std::fs::read_to_string(etl.join("tokens.json"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (text(v.get("address")).unwrap(), (text(v.get("symbol")), text(v.get("name")), v["decimals"].as_u64(), "node".to_string()))
        })
        .collect();
    assert_eq!(got, from_json, "ethereum-etl export_tokens (JSON)");

    // Incremental: a new token is asked, and only it. With eth_call refused by the node, the
    // ingest still succeeds, warns, and leaves the table as it was.
    let late = deploy(&node, &[responder(&[("symbol()", d(abi_string(b"LATE"))), ("decimals()", d(word(9)))])]);
    let proxy = HidingProxy::start(&node.url, &["eth_call"]);
    let warnings = Mutex::new(vec![]);
    let mut store = Store::open_for_write(&data).unwrap();
    let r = ingest_evm(&mut store, &EvmOptions::new(proxy.url.clone()), &|e| {
        if let tracehound_ingest::Event::Warning(w) = e {
            warnings.lock().unwrap().push(w);
        }
    })
    .unwrap();
    assert!(r.blocks == 1 && r.tokens.is_none(), "{r:?}");
    assert!(warnings.lock().unwrap().iter().any(|w| w.contains("token metadata of anvil not refreshed") && w.contains("eth_call")), "{warnings:?}");
    let t = refresh_tokens(&store, "anvil", Some(&tracehound_ingest::jsonrpc::RpcClient::new(&node.url, None, 2).unwrap()), None).unwrap();
    assert_eq!((t.asked, t.tokens, t.written), (1, want.len() as u64 + 1, true), "{t:?}");
    // Nothing new: nothing asked, nothing written, through the proxy that refuses eth_call.
    let r = ingest_evm(&mut store, &EvmOptions::new(proxy.url.clone()), &|_| {}).unwrap();
    let t = r.tokens.expect("nothing to ask");
    assert_eq!((t.asked, t.written, r.blocks), (0, false, 0), "{t:?}");
    drop(store);
    want.insert(late[0].clone(), row(Some("LATE"), None, Some(9)));
    assert_eq!(tokens(&data), want);

    // Text output reads it back: TUSD amounts in whole units, native amounts in ETH.
    let book = token_metadata(&Store::open(&data).unwrap(), "anvil").unwrap();
    let stolen = truth["heist"]["stolen"]["TUSD"].as_str().unwrap();
    assert_eq!(book.format_raw(tusd["address"].as_str().unwrap(), stolen), "2,490,000 TUSD");
    assert_eq!(book.format("native", U256::from(474_750_000_000_000_000_000u128)), "474.75 ETH");
    assert_eq!(book.format_raw(&addresses[2], "5"), "5 base units of 0x".to_string() + &addresses[2][2..6] + "…" + &addresses[2][38..]);
    assert_eq!(book.get(&addresses[0]).unwrap().source, TokenSource::Node);
}

/// A chain with nothing but an explorer export: the bundled list names the major tokens in it.
#[test]
fn an_import_only_chain_gets_the_bundled_metadata() {
    use tracehound_ingest::transfers_csv::{import_transfers_csv, CsvImportOptions};
    let dir = tempfile::tempdir().unwrap();
    let usdc = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
    let other = "0x1234567890abcdef1234567890abcdef12345678";
    let csv = format!(
        "tx_hash,block_number,timestamp,from,to,asset,amount\n\
         0x{h1},15000000,1655942400,0x098b716b8aaf21512996dc57eb0615e2383e2f96,0x1111111111111111111111111111111111111111,{usdc},4505835697678\n\
         0x{h2},15000001,1655942412,0x1111111111111111111111111111111111111111,0x2222222222222222222222222222222222222222,{other},42\n\
         0x{h3},15000002,1655942424,0x1111111111111111111111111111111111111111,0x2222222222222222222222222222222222222222,native,1000000000000000000\n",
        h1 = "a".repeat(64),
        h2 = "b".repeat(64),
        h3 = "c".repeat(64),
    );
    let file = dir.path().join("export.csv");
    std::fs::write(&file, csv).unwrap();
    let data = dir.path().join("data");
    let mut store = Store::open_for_write(&data).unwrap();
    let r = import_transfers_csv(&mut store, &file, &CsvImportOptions { chain: "ethereum".into(), decimals: None, keep_good_rows: false }).unwrap();
    assert_eq!(r.rows, 3, "{:?}", r.bad_rows);
    let t = refresh_tokens(&store, "ethereum", None, None).unwrap();
    assert_eq!((t.tokens, t.bundled, t.asked, t.unknown, t.written), (1, 1, 0, 1, true), "{t:?}");
    let got = tokens(&data);
    assert_eq!(got.len(), 1);
    assert_eq!(got[usdc], (Some("USDC".into()), Some("USD Coin".into()), Some(6), "bundled".into()));
    // The user's report: an imported USDC flow in whole units.
    let book = token_metadata(&store, "ethereum").unwrap();
    assert_eq!(book.format_raw(usdc, "4505835697678"), "4,505,835.697678 USDC");
    assert_eq!(book.format_raw(other, "42"), "42 base units of 0x1234…5678");
    assert_eq!(book.format_raw("native", "1000000000000000000"), "1 ETH");
    // The same again changes nothing.
    let t = refresh_tokens(&store, "ethereum", None, None).unwrap();
    assert!(!t.written, "{t:?}");
}
