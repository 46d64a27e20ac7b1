//! OFAC sanctions data: the legacy `sdn.csv`, `sdn_advanced.xml`, and the per-asset address lists
//! (`sanctioned_addresses_<ASSET>.txt` / `.json`) that 0xB10C's tool extracts from the XML.

use std::collections::{BTreeSet, HashMap};

use quick_xml::events::{BytesStart, Event};

use super::{line_of_offset, ActorIndex, LineCounter, Parsed};
use crate::address::{chain_for_currency, check_address, is_evm_address, is_evm_chain, normalize_address};
use crate::model::{Actor, NewTag, RowError, SubjectKind};
use crate::{Error, Result};

/// Category of every OFAC tag.
const SANCTIONED: &str = "sanctioned";
/// GraphSense abuse id of every OFAC tag.
const SANCTION_ABUSE: &str = "sanction";
/// Confidence of every OFAC tag (GraphSense: "public authorities (e.g. OFAC)").
const AUTHORITY_DATA: &str = "authority_data";
/// The marker OFAC puts before a digital currency address, in Remarks and in FeatureType names.
const ADDRESS_MARKER: &str = "Digital Currency Address - ";

/// The chain of an OFAC-listed address: the chain of its currency code, unless the address plainly belongs to another
/// chain. OFAC lists the TRON address `TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq` (WANG Mingming, ent_num 45404) as `XBT`;
/// such an address is stored on the chain its shape shows (`tron`, or `ethereum` for `0x` + 40 hex digits) so a lookup
/// on that chain still finds the listing. The tag source keeps the currency OFAC gave.
pub(crate) fn ofac_chain(currency: &str, address: &str) -> String {
    let chain = chain_for_currency(currency, address);
    if check_address(&chain, &normalize_address(&chain, address)).is_ok() {
        chain
    } else if check_address("tron", address).is_ok() {
        "tron".to_string()
    } else if is_evm_address(address) && !is_evm_chain(&chain) {
        "ethereum".to_string()
    } else {
        chain
    }
}

/// Which OFAC file a byte string is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OfacFormat {
    /// Legacy `sdn.csv` (no header, Latin-1).
    SdnCsv,
    /// `sdn_advanced.xml`.
    AdvancedXml,
    /// `sanctioned_addresses_<ASSET>.txt`: one address a line.
    ListTxt(String),
    /// `sanctioned_addresses_<ASSET>.json`: a JSON array of addresses.
    ListJson(String),
}

/// Detects the format from the file name (per-asset lists) and the first bytes (XML or CSV).
pub(crate) fn detect(file_name: &str, bytes: &[u8]) -> OfacFormat {
    let lower = file_name.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("sanctioned_addresses_") {
        let asset_len = rest.find('.').unwrap_or(rest.len());
        // `to_ascii_lowercase` keeps byte offsets, so `rest`'s offsets apply to the original name.
        let asset = file_name["sanctioned_addresses_".len()..][..asset_len].to_ascii_uppercase();
        if rest.ends_with(".json") {
            return OfacFormat::ListJson(asset);
        }
        return OfacFormat::ListTxt(asset);
    }
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = start.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'<') {
        OfacFormat::AdvancedXml
    } else {
        OfacFormat::SdnCsv
    }
}

/// An SDN entry with its addresses, the same whether read from CSV or XML.
#[derive(Debug, Default)]
struct SdnEntry {
    /// OFAC's entity number (`ent_num`, the XML's `FixedRef`).
    ent_num: String,
    /// The primary name as the CSV writes it (`LAZARUS GROUP`, `WU, Huihui`).
    name: String,
    /// Sanctions programs (`DPRK3`, `CYBER2`).
    programs: Vec<String>,
    /// Other names (a.k.a.).
    aliases: Vec<String>,
}

impl SdnEntry {
    /// The tag source: `OFAC SDN (DPRK3, CYBER2)`.
    fn source(&self) -> String {
        if self.programs.is_empty() {
            "OFAC SDN".to_string()
        } else {
            format!("OFAC SDN ({})", self.programs.join(", "))
        }
    }

    /// The actor of the entry: an existing actor whose label matches the SDN name, else a new `ofac-<ent_num>` actor
    /// (pushed to `parsed`, once per entry).
    fn actor_id(&self, actors: &ActorIndex, line: u64, parsed: &mut Parsed) -> String {
        if let Some(id) = actors.by_label(&self.name) {
            if let Some(country) = country_of_programs(&self.programs) {
                if !parsed.countries.iter().any(|(a, _)| a == id) {
                    parsed.countries.push((id.to_string(), country));
                }
            }
            return id.to_string();
        }
        let id = format!("ofac-{}", self.ent_num);
        if !parsed.actors.iter().any(|(_, actor)| actor.id == id) {
            let country = country_of_programs(&self.programs);
            parsed.actors.push((
                line,
                Actor {
                    id: id.clone(),
                    label: self.name.clone(),
                    jurisdictions: country.iter().cloned().collect(),
                    country,
                    aliases: self.aliases.clone(),
                    categories: vec![SANCTIONED.to_string()],
                    uri: Some(format!("https://sanctionssearch.ofac.treas.gov/Details.aspx?id={}", self.ent_num)),
                    sources: vec!["OFAC SDN".to_string()],
                },
            ));
        }
        id
    }

    /// The tag of one address of this entry.
    fn tag(&self, currency: &str, address: &str, actor: &str, origin: &str) -> NewTag {
        NewTag {
            subject_kind: SubjectKind::Address,
            chain: ofac_chain(currency, address),
            subject: address.to_string(),
            label: self.name.clone(),
            category: SANCTIONED.to_string(),
            actor: Some(actor.to_string()),
            source: self.source(),
            confidence: Some(AUTHORITY_DATA.to_string()),
            author: None,
            abuse: Some(SANCTION_ABUSE.to_string()),
            is_cluster_definer: false,
            origin_file: Some(origin.to_string()),
        }
    }
}

/// The country of a set of OFAC programs when they point to exactly one (DPRK* → KP, IRAN*/IRGC → IR, …).
pub(crate) fn country_of_programs(programs: &[String]) -> Option<String> {
    let countries: BTreeSet<&str> = programs
        .iter()
        .filter_map(|program| {
            let p = program.trim().to_ascii_uppercase();
            if p.starts_with("DPRK") {
                Some("KP")
            } else if p.starts_with("IRAN") || p == "IRGC" || p == "IFSR" {
                Some("IR")
            } else if p.starts_with("RUSSIA") || p == "UKRAINE-EO13662" {
                Some("RU")
            } else if p.starts_with("SYRIA") {
                Some("SY")
            } else if p == "CUBA" {
                Some("CU")
            } else if p.starts_with("VENEZUELA") {
                Some("VE")
            } else {
                None
            }
        })
        .collect();
    if countries.len() == 1 {
        countries.into_iter().next().map(str::to_string)
    } else {
        None
    }
}

/// One digital-currency mention found in an SDN Remarks field.
#[derive(Debug, PartialEq, Eq)]
enum RemarkAddress {
    /// A complete `<currency> <address>` pair.
    Complete { currency: String, address: String },
    /// A mention cut off by the ~1,000-character limit of `sdn.csv` Remarks, or one without an address.
    Unusable { text: String, reason: &'static str },
}

/// Finds the digital-currency addresses in a Remarks field (`Digital Currency Address - XBT <addr>;`).
/// An address at the very end of a remark that does not end with `;` or `.` may be cut off, so it is reported, not used.
fn remark_addresses(remarks: &str) -> Vec<RemarkAddress> {
    let segments: Vec<&str> = remarks.split(';').collect();
    let mut found = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let item = segment.trim();
        let item = item.strip_prefix("alt. ").unwrap_or(item);
        let Some(rest) = item.strip_prefix(ADDRESS_MARKER) else { continue };
        let is_last = index + 1 == segments.len();
        let mut rest = rest.trim();
        if is_last {
            match rest.strip_suffix('.') {
                Some(stripped) => rest = stripped.trim_end(),
                None => {
                    found.push(RemarkAddress::Unusable {
                        text: rest.to_string(),
                        reason: "remark ends mid-address (sdn.csv truncates Remarks); address dropped",
                    });
                    continue;
                }
            }
        }
        match rest.split_once(char::is_whitespace) {
            Some((currency, address)) if !address.trim().is_empty() => {
                found.push(RemarkAddress::Complete { currency: currency.to_string(), address: address.trim().to_string() })
            }
            _ => found.push(RemarkAddress::Unusable { text: rest.to_string(), reason: "digital currency address without an address" }),
        }
    }
    found
}

/// The complete `a.k.a. '…'` names of a Remarks field.
fn remark_aliases(remarks: &str) -> Vec<String> {
    remarks
        .split(';')
        .filter_map(|segment| {
            let s = segment.trim().trim_end_matches('.');
            s.strip_prefix("a.k.a. '").and_then(|rest| rest.strip_suffix('\'')).map(str::to_string)
        })
        .filter(|alias| !alias.is_empty())
        .collect()
}

/// Splits OFAC's program field (`DPRK3] [CYBER2`) into programs.
fn split_programs(field: &str) -> Vec<String> {
    field.split("] [").map(|p| p.trim().trim_matches(|c| c == '[' || c == ']').trim().to_string()).filter(|p| !p.is_empty()).collect()
}

/// Reads OFAC's legacy `sdn.csv`: no header, 12 columns, `-0- ` for empty, Latin-1, may end with 0x1A.
pub(crate) fn parse_sdn_csv(file: &str, origin: &str, bytes: &[u8], actors: &ActorIndex) -> Result<Parsed> {
    // Latin-1: every byte is the code point of the same value.
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let text = text.trim_end_matches(['\u{1a}', '\r', '\n']);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut lines = LineCounter::new(text.as_bytes());
    let mut parsed = Parsed::new("ofac_sdn_csv");
    let mut sdn_rows = 0u64;
    let mut other_rows = 0u64;
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| lines.line_at(p.byte()));
                parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("unreadable CSV row: {err}") });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != 12 {
            other_rows += 1;
            parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("expected the 12 columns of OFAC sdn.csv, found {}", record.len()) });
            continue;
        }
        sdn_rows += 1;
        let field = |i: usize| {
            let value = record[i].trim();
            if value == "-0-" {
                ""
            } else {
                value
            }
        };
        let remarks = field(11);
        let mentions = remark_addresses(remarks);
        if mentions.is_empty() {
            continue;
        }
        let entry =
            SdnEntry { ent_num: field(0).to_string(), name: field(1).to_string(), programs: split_programs(field(3)), aliases: remark_aliases(remarks) };
        if entry.ent_num.is_empty() || !entry.ent_num.bytes().all(|b| b.is_ascii_digit()) {
            parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("ent_num {:?} is not a number", entry.ent_num) });
            continue;
        }
        if entry.name.is_empty() {
            parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("SDN entry {} has no name", entry.ent_num) });
            continue;
        }
        let mut actor: Option<String> = None;
        for mention in mentions {
            match mention {
                RemarkAddress::Complete { currency, address } => {
                    let actor_id = actor.get_or_insert_with(|| entry.actor_id(actors, line, &mut parsed)).clone();
                    parsed.tags.push((line, entry.tag(&currency, &address, &actor_id, origin)));
                }
                RemarkAddress::Unusable { text, reason } => parsed.errors.push(RowError {
                    file: file.to_string(),
                    line,
                    reason: format!("SDN entry {} ({}): {reason}: {text:?}", entry.ent_num, entry.name),
                }),
            }
        }
    }
    if sdn_rows == 0 && other_rows > 0 {
        return Err(Error::Parse { file: file.to_string(), line: None, reason: "not an OFAC sdn.csv file: no row has its 12 columns".to_string() });
    }
    Ok(parsed)
}

/// Reads a per-asset list (`sanctioned_addresses_<ASSET>.txt`): one address a line, `#` comments allowed.
pub(crate) fn parse_list_txt(file: &str, origin: &str, asset: &str, bytes: &[u8]) -> Result<Parsed> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Parse {
        file: file.to_string(),
        line: Some(line_of_offset(bytes, e.valid_up_to())),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    let mut parsed = Parsed::new("ofac_address_list");
    for (index, line) in text.lines().enumerate() {
        let address = line.trim();
        if address.is_empty() || address.starts_with('#') {
            continue;
        }
        parsed.tags.push((index as u64 + 1, list_tag(asset, address, origin)));
    }
    Ok(parsed)
}

/// Reads a per-asset list (`sanctioned_addresses_<ASSET>.json`): a JSON array of address strings.
pub(crate) fn parse_list_json(file: &str, origin: &str, asset: &str, bytes: &[u8]) -> Result<Parsed> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(bytes).map_err(|e| Error::Parse {
        file: file.to_string(),
        line: Some(e.line() as u64),
        reason: format!("not a JSON array of addresses: {e}"),
    })?;
    let text = String::from_utf8_lossy(bytes);
    let mut parsed = Parsed::new("ofac_address_list");
    let mut search_from = 0usize;
    let mut lines = LineCounter::new(text.as_bytes());
    for (index, value) in values.iter().enumerate() {
        // Line of the element: find its text after the previous one (arrays of strings, one a line, as 0xB10C writes them).
        let line = match value.as_str().and_then(|s| text[search_from..].find(s).map(|at| at + search_from)) {
            Some(at) => {
                search_from = at;
                lines.line_at(at as u64)
            }
            None => index as u64 + 2,
        };
        match value.as_str() {
            Some(address) if !address.trim().is_empty() => parsed.tags.push((line, list_tag(asset, address.trim(), origin))),
            _ => parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("element {index} is not an address string: {value}") }),
        }
    }
    Ok(parsed)
}

/// The tag of one address of a per-asset list: label `OFAC SDN`, no actor (the lists carry no names).
fn list_tag(asset: &str, address: &str, origin: &str) -> NewTag {
    NewTag {
        subject_kind: SubjectKind::Address,
        chain: ofac_chain(asset, address),
        subject: address.to_string(),
        label: "OFAC SDN".to_string(),
        category: SANCTIONED.to_string(),
        actor: None,
        source: format!("OFAC SDN list ({asset})"),
        confidence: Some(AUTHORITY_DATA.to_string()),
        author: None,
        abuse: Some(SANCTION_ABUSE.to_string()),
        is_cluster_definer: false,
        origin_file: Some(origin.to_string()),
    }
}

/// A name part of a `DocumentedName`: its group id (whose type says last/first name) and text.
#[derive(Debug, Default, Clone)]
struct NamePart {
    group: Option<String>,
    value: String,
}

/// A distinct party of the XML while it is being read.
#[derive(Debug, Default)]
struct XmlParty {
    fixed_ref: String,
    profile_id: String,
    line: u64,
    name_parts: Option<Vec<NamePart>>,
    aliases: Vec<Vec<NamePart>>,
    /// NamePartGroup id → NamePartType id.
    group_types: HashMap<String, String>,
    /// (FeatureTypeID, VersionDetail text, line).
    features: Vec<(String, String, u64)>,
}

/// What the text being collected belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TextTarget {
    FeatureType(String),
    NamePartType(String),
    SanctionsType(String),
    NamePart,
    VersionDetail,
    MeasureComment,
}

/// The value of attribute `name` (local name) of an element, unescaped.
fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element.attributes().flatten().find(|a| a.key.local_name().as_ref() == name.as_bytes()).and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Renders a documented name like the legacy CSV does: `LAST, First Middle` for persons, parts joined by spaces otherwise.
fn render_name(parts: &[NamePart], group_types: &HashMap<String, String>, part_type_names: &HashMap<String, String>) -> String {
    let type_of = |part: &NamePart| -> String {
        part.group.as_ref().and_then(|g| group_types.get(g)).and_then(|t| part_type_names.get(t)).map(|n| n.to_ascii_lowercase()).unwrap_or_default()
    };
    let last: Vec<&str> = parts.iter().filter(|p| type_of(p) == "last name").map(|p| p.value.trim()).collect();
    if last.is_empty() || last.len() == parts.len() {
        return parts.iter().map(|p| p.value.trim()).filter(|v| !v.is_empty()).collect::<Vec<_>>().join(" ");
    }
    let rest: Vec<&str> = parts.iter().filter(|p| type_of(p) != "last name").map(|p| p.value.trim()).filter(|v| !v.is_empty()).collect();
    format!("{}, {}", last.join(" "), rest.join(" "))
}

/// Reads OFAC's `sdn_advanced.xml` in one streaming pass with quick-xml.
///
/// Uses `ReferenceValueSets/FeatureTypeValues` to know which `FeatureTypeID`s are digital currency addresses,
/// `DistinctParty/Profile` for names and addresses (`Feature/FeatureVersion/VersionDetail`), and
/// `SanctionsEntries/SanctionsEntry/SanctionsMeasure/Comment` for programs.
pub(crate) fn parse_advanced_xml(file: &str, origin: &str, bytes: &[u8], actors: &ActorIndex) -> Result<Parsed> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let xml_error = |reader: &quick_xml::Reader<&[u8]>, e: &dyn std::fmt::Display| Error::Parse {
        file: file.to_string(),
        line: Some(line_of_offset(bytes, reader.error_position() as usize)),
        reason: format!("invalid XML: {e}"),
    };

    let mut feature_types: HashMap<String, String> = HashMap::new();
    let mut part_type_names: HashMap<String, String> = HashMap::new();
    let mut sanctions_types: HashMap<String, String> = HashMap::new();
    let mut parties: Vec<XmlParty> = Vec::new();
    // ProfileID → programs, with the SanctionsTypeID of each measure.
    let mut programs: HashMap<String, Vec<(Option<String>, String)>> = HashMap::new();

    let mut party: Option<XmlParty> = None;
    let mut identity_primary = false;
    let mut alias_primary = false;
    let mut alias_names_seen = 0usize;
    let mut in_alias = false;
    let mut name_parts: Vec<NamePart> = Vec::new();
    let mut feature_type: Option<String> = None;
    let mut entry_profile: Option<String> = None;
    let mut measure_type: Option<Option<String>> = None;
    let mut text_target: Option<TextTarget> = None;
    let mut text = String::new();
    let mut text_line = 0u64;
    let mut root_seen = false;
    let mut buf = Vec::new();
    // Line numbers are counted incrementally: the real file is ~80 MB.
    let mut lines = LineCounter::new(bytes);

    loop {
        let position = reader.buffer_position();
        let line = lines.line_at(position);
        let event = reader.read_event_into(&mut buf).map_err(|e| xml_error(&reader, &e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let name = local.as_ref();
                if !root_seen {
                    root_seen = true;
                    if name != b"Sanctions" {
                        return Err(Error::Parse {
                            file: file.to_string(),
                            line: Some(line),
                            reason: format!("not an OFAC advanced XML file: root element is <{}>, expected <Sanctions>", String::from_utf8_lossy(name)),
                        });
                    }
                }
                let mut start_text = |target: TextTarget| {
                    if !is_empty {
                        text_target = Some(target);
                        text.clear();
                        text_line = line;
                    }
                };
                match name {
                    b"FeatureType" => start_text(TextTarget::FeatureType(attribute(e, "ID").unwrap_or_default())),
                    b"NamePartType" => start_text(TextTarget::NamePartType(attribute(e, "ID").unwrap_or_default())),
                    b"SanctionsType" => start_text(TextTarget::SanctionsType(attribute(e, "ID").unwrap_or_default())),
                    b"DistinctParty" => party = Some(XmlParty { fixed_ref: attribute(e, "FixedRef").unwrap_or_default(), line, ..XmlParty::default() }),
                    b"Profile" => {
                        if let Some(p) = party.as_mut() {
                            p.profile_id = attribute(e, "ID").unwrap_or_default();
                        }
                    }
                    b"Identity" => identity_primary = attribute(e, "Primary").as_deref() == Some("true"),
                    b"Alias" => {
                        in_alias = !is_empty;
                        alias_primary = attribute(e, "Primary").as_deref() == Some("true");
                        alias_names_seen = 0;
                    }
                    b"DocumentedName" => name_parts.clear(),
                    b"NamePartValue" if in_alias => {
                        name_parts.push(NamePart { group: attribute(e, "NamePartGroupID"), value: String::new() });
                        start_text(TextTarget::NamePart);
                    }
                    b"NamePartGroup" => {
                        if let (Some(p), Some(id), Some(kind)) = (party.as_mut(), attribute(e, "ID"), attribute(e, "NamePartTypeID")) {
                            p.group_types.insert(id, kind);
                        }
                    }
                    b"Feature" if party.is_some() => feature_type = attribute(e, "FeatureTypeID"),
                    b"VersionDetail" if feature_type.is_some() => start_text(TextTarget::VersionDetail),
                    b"SanctionsEntry" => entry_profile = attribute(e, "ProfileID"),
                    b"SanctionsMeasure" if !is_empty => measure_type = Some(attribute(e, "SanctionsTypeID")),
                    b"Comment" if measure_type.is_some() => start_text(TextTarget::MeasureComment),
                    _ => {}
                }
            }
            Event::Text(ref t) if text_target.is_some() => text.push_str(&t.xml_content().map_err(|e| xml_error(&reader, &e))?),
            Event::CData(ref t) if text_target.is_some() => text.push_str(&t.decode().map_err(|e| xml_error(&reader, &e))?),
            Event::GeneralRef(ref r) if text_target.is_some() => {
                let resolved = match r.resolve_char_ref().map_err(|e| xml_error(&reader, &e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let entity = r.decode().map_err(|e| xml_error(&reader, &e))?;
                        match entity.as_ref() {
                            "amp" => "&".to_string(),
                            "lt" => "<".to_string(),
                            "gt" => ">".to_string(),
                            "quot" => "\"".to_string(),
                            "apos" => "'".to_string(),
                            other => return Err(xml_error(&reader, &format!("unknown entity &{other};"))),
                        }
                    }
                };
                text.push_str(&resolved);
            }
            Event::End(ref e) => {
                let local = e.local_name();
                let name = local.as_ref();
                let finished_text = |target: &Option<TextTarget>, expected: &[u8]| target.is_some() && name == expected;
                match name {
                    b"FeatureType" | b"NamePartType" | b"SanctionsType" if finished_text(&text_target, name) => match text_target.take() {
                        Some(TextTarget::FeatureType(id)) => {
                            feature_types.insert(id, text.trim().to_string());
                        }
                        Some(TextTarget::NamePartType(id)) => {
                            part_type_names.insert(id, text.trim().to_string());
                        }
                        Some(TextTarget::SanctionsType(id)) => {
                            sanctions_types.insert(id, text.trim().to_string());
                        }
                        _ => {}
                    },
                    b"NamePartValue" if text_target == Some(TextTarget::NamePart) => {
                        if let Some(last) = name_parts.last_mut() {
                            last.value = text.trim().to_string();
                        }
                        text_target = None;
                    }
                    b"DocumentedName" if in_alias => {
                        if let Some(p) = party.as_mut() {
                            if identity_primary && alias_primary && alias_names_seen == 0 && p.name_parts.is_none() {
                                p.name_parts = Some(std::mem::take(&mut name_parts));
                            } else if !name_parts.is_empty() {
                                p.aliases.push(std::mem::take(&mut name_parts));
                            }
                        }
                        alias_names_seen += 1;
                    }
                    b"Alias" => in_alias = false,
                    b"VersionDetail" if text_target == Some(TextTarget::VersionDetail) => {
                        if let (Some(p), Some(kind)) = (party.as_mut(), feature_type.as_ref()) {
                            let value = text.trim();
                            if !value.is_empty() {
                                p.features.push((kind.clone(), value.to_string(), text_line));
                            }
                        }
                        text_target = None;
                    }
                    b"Feature" => feature_type = None,
                    b"DistinctParty" => {
                        if let Some(p) = party.take() {
                            if !p.features.is_empty() {
                                parties.push(p);
                            }
                        }
                    }
                    b"Comment" if text_target == Some(TextTarget::MeasureComment) => {
                        if let (Some(profile), Some(kind)) = (entry_profile.as_ref(), measure_type.as_ref()) {
                            let value = text.trim();
                            if !value.is_empty() {
                                programs.entry(profile.clone()).or_default().push((kind.clone(), value.to_string()));
                            }
                        }
                        text_target = None;
                    }
                    b"SanctionsMeasure" => measure_type = None,
                    b"SanctionsEntry" => entry_profile = None,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !root_seen {
        return Err(Error::Parse { file: file.to_string(), line: None, reason: "empty XML document".to_string() });
    }

    // Digital currency FeatureType ids → currency code.
    let currency_of: HashMap<&str, &str> =
        feature_types.iter().filter_map(|(id, text)| text.strip_prefix(ADDRESS_MARKER).map(|code| (id.as_str(), code.trim()))).collect();
    let program_type_ids: Vec<&str> = sanctions_types.iter().filter(|(_, name)| name.eq_ignore_ascii_case("Program")).map(|(id, _)| id.as_str()).collect();
    let is_program = |kind: &Option<String>| match kind.as_deref() {
        Some(kind) if !program_type_ids.is_empty() => program_type_ids.contains(&kind),
        Some(kind) => kind == "1",
        None => true,
    };

    let mut parsed = Parsed::new("ofac_sdn_advanced_xml");
    for party in parties {
        let addresses: Vec<(&str, &str, u64)> =
            party.features.iter().filter_map(|(kind, value, line)| currency_of.get(kind.as_str()).map(|code| (*code, value.as_str(), *line))).collect();
        if addresses.is_empty() {
            continue;
        }
        // The primary name; a party without one is named by its first alias.
        let name_parts = party.name_parts.as_deref().or(party.aliases.first().map(Vec::as_slice));
        let name = name_parts.map(|parts| render_name(parts, &party.group_types, &part_type_names)).unwrap_or_default();
        if name.is_empty() {
            parsed.errors.push(RowError {
                file: file.to_string(),
                line: party.line,
                reason: format!("distinct party {} has no primary name", party.fixed_ref),
            });
            continue;
        }
        let profile = if party.profile_id.is_empty() { &party.fixed_ref } else { &party.profile_id };
        let entry = SdnEntry {
            ent_num: party.fixed_ref.clone(),
            name,
            programs: programs.get(profile).map(|list| list.iter().filter(|(kind, _)| is_program(kind)).map(|(_, p)| p.clone()).collect()).unwrap_or_default(),
            aliases: party.aliases.iter().map(|parts| render_name(parts, &party.group_types, &part_type_names)).filter(|a| !a.is_empty()).collect(),
        };
        let actor = entry.actor_id(actors, party.line, &mut parsed);
        for (currency, address, line) in addresses {
            parsed.tags.push((line, entry.tag(currency, address, &actor, origin)));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remarks_with_complete_and_truncated_addresses() {
        let found = remark_addresses(
            "DOB 1977; Digital Currency Address - XBT 12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h; alt. Digital Currency Address - ETH 0xabc; a.k.a. 'X'.",
        );
        assert_eq!(
            found,
            vec![
                RemarkAddress::Complete { currency: "XBT".into(), address: "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h".into() },
                RemarkAddress::Complete { currency: "ETH".into(), address: "0xabc".into() },
            ]
        );
        let cut = remark_addresses("Digital Currency Address - XBT 16PhXY3hNNMTo8kpuJx2emh713KbWpkqci; alt. Digital Currency Address - XBT 1Gq");
        assert!(matches!(&cut[1], RemarkAddress::Unusable { text, .. } if text == "XBT 1Gq"));
        let last_complete = remark_addresses("Digital Currency Address - XBT 18yWCu6agTxYqAerMxiz9sgHrK3ViezzGa.");
        assert!(matches!(&last_complete[0], RemarkAddress::Complete { address, .. } if address == "18yWCu6agTxYqAerMxiz9sgHrK3ViezzGa"));
        let empty = remark_addresses("alt. Digital Currency Address - XBT ");
        assert!(matches!(&empty[0], RemarkAddress::Unusable { .. }));
        // Cut inside the marker: not a mention at all.
        assert!(remark_addresses("x; Digital Currency Addres").is_empty());
    }

    #[test]
    fn programs_and_countries() {
        assert_eq!(split_programs("DPRK3] [CYBER2"), vec!["DPRK3", "CYBER2"]);
        assert_eq!(country_of_programs(&split_programs("DPRK3] [CYBER2")).as_deref(), Some("KP"));
        assert_eq!(country_of_programs(&split_programs("IRAN] [RUSSIA-EO14024")), None);
        assert_eq!(country_of_programs(&split_programs("CYBER2")), None);
        assert_eq!(country_of_programs(&split_programs("UKRAINE-EO13662] [CYBER2")).as_deref(), Some("RU"));
        assert_eq!(remark_aliases("a.k.a. 'HIDDEN COBRA'; a.k.a. 'OFFICE 91'; a.k.a. 'WHOIS HACKIN"), vec!["HIDDEN COBRA", "OFFICE 91"]);
    }

    #[test]
    fn misfiled_addresses_go_to_the_chain_of_their_shape() {
        assert_eq!(ofac_chain("XBT", "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq"), "tron");
        assert_eq!(ofac_chain("XBT", "1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn"), "bitcoin");
        assert_eq!(ofac_chain("XBT", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"), "ethereum");
        assert_eq!(ofac_chain("ETH", "1Gq"), "ethereum");
    }

    #[test]
    fn xml_entities_and_name_parts() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<Sanctions xmlns="https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/ADVANCED_XML">
  <ReferenceValueSets>
    <FeatureTypeValues><FeatureType ID="344">Digital Currency Address - XBT</FeatureType></FeatureTypeValues>
    <NamePartTypeValues><NamePartType ID="1520">Last Name</NamePartType><NamePartType ID="1521">First Name</NamePartType></NamePartTypeValues>
  </ReferenceValueSets>
  <DistinctParties>
    <DistinctParty FixedRef="1">
      <Profile ID="1" PartySubTypeID="4">
        <Identity ID="10" FixedRef="1" Primary="true" False="false">
          <Alias FixedRef="1" AliasTypeID="1403" Primary="true" LowQuality="false">
            <DocumentedName ID="100" FixedRef="1" DocNameStatusID="1">
              <DocumentedNamePart><NamePartValue NamePartGroupID="2">Jos&#233; &amp; Co</NamePartValue></DocumentedNamePart>
              <DocumentedNamePart><NamePartValue NamePartGroupID="1">M&lt;LLER</NamePartValue></DocumentedNamePart>
            </DocumentedName>
          </Alias>
          <NamePartGroups>
            <MasterNamePartGroup><NamePartGroup ID="1" NamePartTypeID="1520" /></MasterNamePartGroup>
            <MasterNamePartGroup><NamePartGroup ID="2" NamePartTypeID="1521" /></MasterNamePartGroup>
          </NamePartGroups>
        </Identity>
        <Feature ID="5" FeatureTypeID="344"><FeatureVersion ID="6"><VersionDetail DetailTypeID="1432"><![CDATA[1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn]]></VersionDetail></FeatureVersion></Feature>
      </Profile>
    </DistinctParty>
  </DistinctParties>
</Sanctions>"#;
        let parsed = parse_advanced_xml("t.xml", "t.xml", xml, &ActorIndex::default()).expect("parses");
        assert_eq!(parsed.tags.len(), 1);
        let (line, tag) = &parsed.tags[0];
        assert_eq!(tag.label, "M<LLER, Jos\u{e9} & Co");
        assert_eq!(tag.subject, "1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn");
        assert_eq!(*line, 22);
        assert_eq!(tag.source, "OFAC SDN");
        let not_ofac = parse_advanced_xml("t.xml", "t.xml", b"<root/>", &ActorIndex::default());
        assert!(matches!(not_ofac, Err(Error::Parse { line: Some(1), .. })));
        let broken = parse_advanced_xml("t.xml", "t.xml", b"<Sanctions>\n<a></b>", &ActorIndex::default());
        assert!(matches!(broken, Err(Error::Parse { line: Some(2), .. })), "{broken:?}");
    }

    #[test]
    fn format_detection() {
        assert_eq!(detect("sanctioned_addresses_XBT.txt", b"1abc"), OfacFormat::ListTxt("XBT".into()));
        assert_eq!(detect("sanctioned_addresses_eth.json", b"[]"), OfacFormat::ListJson("ETH".into()));
        assert_eq!(detect("sdn_advanced.xml", b"\xEF\xBB\xBF<?xml version=\"1.0\"?>"), OfacFormat::AdvancedXml);
        assert_eq!(detect("sdn.csv", b"36,\"AEROCARIBBEAN AIRLINES\""), OfacFormat::SdnCsv);
    }
}
