//! CSV label lists with a header row (Forta/Etherscan lists, incident attacker lists, hand-made lists).
//!
//! Columns are matched by header name, case-insensitively:
//! address (`address`, `banned_address`, `contract_address`, `wallet`), label (`label`, `wallet_tag`, `etherscan_tag`,
//! `contract_tag`, `name`, `tag`), and optionally `category`, `chain` (or `currency`), `actor`, `source` (or `data_source`),
//! `confidence`, `role` and `incident_id`.

use super::{normalize_label, strip_bom, LineCounter, Parsed};
use crate::address::chain_name;
use crate::model::{CsvImport, NewTag, RowError, SubjectKind};
use crate::taxonomy::canonical_category;
use crate::{Error, Result};

/// Header names of the address column, in order of preference.
const ADDRESS_COLUMNS: [&str; 4] = ["address", "banned_address", "contract_address", "wallet"];
/// Header names of the label column, in order of preference.
const LABEL_COLUMNS: [&str; 6] = ["label", "wallet_tag", "etherscan_tag", "contract_tag", "name", "tag"];
/// Header names of the chain column.
const CHAIN_COLUMNS: [&str; 2] = ["chain", "currency"];
/// Header names of the per-row source column.
const SOURCE_COLUMNS: [&str; 2] = ["data_source", "source"];
/// Columns whose text hints at the category (`phish-hack`, `exploit`, `heist`).
const HINT_COLUMNS: [&str; 3] = ["data_source", "etherscan_labels", "contract_creator_etherscan_label"];
/// Chain of files that have no chain column and no `CsvImport::chain`.
const DEFAULT_CHAIN: &str = "ethereum";

/// Which rows get `CsvImport::actor`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ActorRule<'a> {
    /// Every row that has no actor of its own.
    AllRows,
    /// Every row except those whose `incident_id` is one of these ids (incidents that are only
    /// suspected, not attributed).
    IncidentsExcept(&'a [&'a str]),
}

/// Column positions found in the header.
#[derive(Debug, Default)]
struct Columns {
    address: usize,
    label: Option<usize>,
    category: Option<usize>,
    chain: Option<usize>,
    actor: Option<usize>,
    source: Option<usize>,
    confidence: Option<usize>,
    role: Option<usize>,
    incident: Option<usize>,
    hints: Vec<usize>,
}

impl Columns {
    /// Finds the columns by name; `Err` names the expected address columns when there is none.
    fn find(headers: &csv::StringRecord) -> std::result::Result<Columns, String> {
        let names: Vec<String> = headers.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        let first = |candidates: &[&str]| candidates.iter().find_map(|c| names.iter().position(|n| n == c));
        let address =
            first(&ADDRESS_COLUMNS).ok_or_else(|| format!("no address column; expected one of {} in the header {:?}", ADDRESS_COLUMNS.join(", "), names))?;
        Ok(Columns {
            address,
            label: first(&LABEL_COLUMNS),
            category: first(&["category"]),
            chain: first(&CHAIN_COLUMNS),
            actor: first(&["actor"]),
            source: first(&SOURCE_COLUMNS),
            confidence: first(&["confidence"]),
            role: first(&["role"]),
            incident: first(&["incident_id"]),
            hints: HINT_COLUMNS.iter().filter_map(|c| names.iter().position(|n| n == c)).collect(),
        })
    }
}

/// The category of an incident-list role (`attacker` → `hacker`, `victim` → `victim`, …).
fn category_of_role(role: &str) -> Option<&'static str> {
    match role {
        "attacker" | "attacker_contract" | "laundering" | "exploiter" => Some("hacker"),
        "sanctioned" => Some("sanctioned"),
        "victim" | "victim_signer" => Some("victim"),
        _ => None,
    }
}

/// The category hinted by a source name such as `etherscan-phish-hack-list` or `exploit`.
fn category_of_hint(hint: &str) -> Option<&'static str> {
    let hint = hint.to_ascii_lowercase();
    if hint.contains("phish") {
        Some("phishing")
    } else if hint.contains("exploit") || hint.contains("heist") || hint.contains("hack") {
        Some("hacker")
    } else if hint.contains("scam") {
        Some("scam")
    } else {
        None
    }
}

/// Reads a CSV label list.
///
/// `CsvImport::actor` is never given to `victim` rows, and a `sanctioned` row (an SDN entry in an incident list)
/// only gets it when the row's label names that actor.
pub(crate) fn parse_csv(file: &str, origin: &str, bytes: &[u8], options: &CsvImport, rule: ActorRule<'_>) -> Result<Parsed> {
    let bytes = strip_bom(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let mut lines = LineCounter::new(bytes);
    let headers = reader.headers().map_err(|e| Error::Parse { file: file.to_string(), line: Some(1), reason: format!("unreadable header: {e}") })?.clone();
    let columns = Columns::find(&headers).map_err(|reason| Error::Parse { file: file.to_string(), line: Some(1), reason })?;
    let list_source = if options.source.trim().is_empty() { origin.to_string() } else { options.source.trim().to_string() };
    let mut parsed = Parsed::new("csv");

    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| lines.line_at(p.byte()));
                parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("unreadable row: {err}") });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        if record.len() != headers.len() {
            parsed.errors.push(RowError {
                file: file.to_string(),
                line,
                reason: format!("expected {} fields as in the header, found {}", headers.len(), record.len()),
            });
            continue;
        }
        let value = |column: Option<usize>| column.map(|i| record[i].trim()).filter(|v| !v.is_empty());
        let Some(address) = value(Some(columns.address)) else {
            parsed.errors.push(RowError { file: file.to_string(), line, reason: "empty address".to_string() });
            continue;
        };
        let label = value(columns.label).unwrap_or(&list_source).to_string();
        let source = match value(columns.source) {
            Some(row_source) if row_source != list_source => format!("{list_source} ({row_source})"),
            _ => list_source.clone(),
        };
        let chain = match value(columns.chain).or(options.chain.as_deref()) {
            Some(chain) => chain_name(chain, address),
            None => DEFAULT_CHAIN.to_string(),
        };
        let role = value(columns.role).map(str::to_ascii_lowercase);
        let category = value(columns.category)
            .map(canonical_category)
            .or_else(|| role.as_deref().and_then(category_of_role).map(str::to_string))
            .or_else(|| options.category.as_deref().map(canonical_category))
            .or_else(|| columns.hints.iter().find_map(|&i| category_of_hint(&record[i])).map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string());
        let actor = value(columns.actor).map(str::to_string).or_else(|| {
            let actor = options.actor.as_deref().map(str::trim).filter(|a| !a.is_empty())?;
            let is_victim = role.as_deref().is_some_and(|r| r.starts_with("victim"));
            let foreign_sanctioned = role.as_deref() == Some("sanctioned") && !normalize_label(&label).contains(&normalize_label(actor));
            let in_scope = match rule {
                ActorRule::AllRows => true,
                ActorRule::IncidentsExcept(ids) => !value(columns.incident).is_some_and(|id| ids.contains(&id)),
            };
            (!is_victim && !foreign_sanctioned && in_scope).then(|| actor.to_string())
        });
        parsed.tags.push((
            line,
            NewTag {
                subject_kind: SubjectKind::Address,
                chain,
                subject: address.to_string(),
                label,
                category,
                actor,
                source,
                confidence: value(columns.confidence).map(str::to_string).or_else(|| options.confidence.clone()),
                author: None,
                abuse: None,
                is_cluster_definer: false,
                origin_file: Some(origin.to_string()),
            },
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(source: &str) -> CsvImport {
        CsvImport { source: source.to_string(), ..CsvImport::default() }
    }

    #[test]
    fn forta_header_and_inferred_category() {
        let csv = b"banned_address,wallet_tag,data_source\n0x80d7bb18521acbef32d7906502ebe94928690e93,Fake_Phishing1772,etherscan-phish-hack-list\n0x098b716b8aaf21512996dc57eb0615e2383e2f96,Ronin Bridge Exploiter,etherscan-exploit-list\n";
        let parsed = parse_csv("f.csv", "f.csv", csv, &options("Forta"), ActorRule::AllRows).expect("parses");
        assert_eq!(parsed.tags.len(), 2);
        assert_eq!(parsed.tags[0].1.category, "phishing");
        assert_eq!(parsed.tags[0].1.source, "Forta (etherscan-phish-hack-list)");
        assert_eq!(parsed.tags[1].1.category, "hacker");
        assert_eq!(parsed.tags[1].1.chain, "ethereum");
    }

    #[test]
    fn incident_roles_and_actor_scope() {
        let csv = b"incident_id,chain,address,role,label,source,checksum\nronin_2022,ethereum,0x098B716B8Aaf21512996dC57EB0615e2383E2f96,attacker,Ronin exploiter,x,eth_ok\nbybit_2025,ethereum,0x1db92e2eebc8e0c075a02bea49a2935bcd2dfcf4,victim,Bybit Cold Wallet 1,x,eth_nochecksum\nofac_sdn_dprk,ethereum,0x8589427373D6D84E98730D7795D8f6f8731FDA16,sanctioned,OFAC SDN ent_num 39796: TORNADO CASH,x,eth_ok\nofac_sdn_dprk,ethereum,0xa0e1c89Ef1a489c9C7dE96311eD5Ce5D32c20E4B,sanctioned,OFAC SDN ent_num 27307: LAZARUS GROUP [DPRK3],x,eth_ok\nother_2020,bitcoin-sv,1abc,attacker,x,x,x\n";
        let opts = CsvImport { actor: Some("lazarusgroup".into()), ..options("incidents") };
        let parsed = parse_csv("a.csv", "a.csv", csv, &opts, ActorRule::IncidentsExcept(&["other_2020"])).expect("parses");
        let actors: Vec<Option<&str>> = parsed.tags.iter().map(|(_, t)| t.actor.as_deref()).collect();
        assert_eq!(actors, vec![Some("lazarusgroup"), None, None, Some("lazarusgroup"), None]);
        let categories: Vec<&str> = parsed.tags.iter().map(|(_, t)| t.category.as_str()).collect();
        assert_eq!(categories, vec!["hacker", "victim", "sanctioned", "sanctioned", "hacker"]);
        assert_eq!(parsed.tags[4].1.chain, "bitcoin_sv");
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let csv = b"address,label\n0x1111111111111111111111111111111111111111,a\n0x2222222222222222222222222222222222222222,b,extra\n,c\n0x3333333333333333333333333333333333333333\n0x4444444444444444444444444444444444444444,\n";
        let parsed = parse_csv("m.csv", "m.csv", csv, &options("mine"), ActorRule::AllRows).expect("parses");
        assert_eq!(parsed.tags.len(), 2);
        assert_eq!(parsed.tags[1].1.label, "mine", "no label: the source is the label");
        let lines: Vec<u64> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(parse_csv("m.csv", "m.csv", b"foo,bar\n1,2\n", &options("x"), ActorRule::AllRows).is_err());
        // The same file with CRLF line ends reports the same lines.
        let crlf: Vec<u8> = String::from_utf8_lossy(csv).replace('\n', "\r\n").into_bytes();
        let parsed = parse_csv("m.csv", "m.csv", &crlf, &options("mine"), ActorRule::AllRows).expect("parses");
        assert_eq!(parsed.errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(parsed.tags.iter().map(|(line, _)| *line).collect::<Vec<_>>(), vec![2, 6]);
    }
}
