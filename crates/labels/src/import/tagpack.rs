//! GraphSense TagPacks and ActorPacks (YAML).
//!
//! A TagPack has header keys that apply to every tag unless the tag overrides them, and a `tags:` list.
//! An ActorPack has an `actors:` list of `{id, label, uri, jurisdictions, categories, context}`.
//! See <https://github.com/graphsense/graphsense-tagpacks>.

use serde_yaml_ng::{Mapping, Value};

use super::{strip_bom, Parsed};
use crate::address::chain_for_currency;
use crate::model::{Actor, NewTag, RowError, SubjectKind};
use crate::taxonomy::canonical_category;
use crate::{Error, Result};

/// Categories too generic to override an abuse given by the pack header.
const GENERIC_CATEGORIES: [&str; 4] = ["user", "organization", "service", "entity"];

/// Reads a TagPack or (when it has a top-level `actors:` key) an ActorPack.
pub(crate) fn parse_pack(file: &str, origin: &str, bytes: &[u8]) -> Result<Parsed> {
    let bytes = strip_bom(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Parse {
        file: file.to_string(),
        line: Some(super::line_of_offset(bytes, e.valid_up_to())),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    let document: Value = serde_yaml_ng::from_str(text).map_err(|e| Error::Parse {
        file: file.to_string(),
        line: e.location().map(|l| l.line() as u64),
        reason: format!("invalid YAML: {e}"),
    })?;
    let Value::Mapping(pack) = document else {
        return Err(Error::Parse { file: file.to_string(), line: Some(1), reason: "not a TagPack or ActorPack: the document is not a mapping".to_string() });
    };
    if pack.contains_key("actors") {
        parse_actor_pack(file, origin, text, &pack)
    } else if pack.contains_key("tags") {
        parse_tag_pack(file, origin, text, &pack)
    } else {
        Err(Error::Parse {
            file: file.to_string(),
            line: Some(1),
            reason: "neither a TagPack (no top-level `tags:`) nor an ActorPack (no top-level `actors:`)".to_string(),
        })
    }
}

/// The text of a scalar (strings, numbers and booleans; YAML may read an all-digit address as a number).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(tagged) => scalar(&tagged.value),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// The non-empty scalar at `key` of a mapping.
fn text_at(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(scalar)
}

/// The strings of a sequence at `key` (scalars only; a single scalar counts as a one-element list).
fn strings_at(map: &Mapping, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A YAML boolean written as `true`/`false` or as a string.
fn bool_of(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|v| v != 0),
        _ => None,
    }
}

/// The 1-based line of each item of the top-level block sequence `key:` (empty if it is not a block sequence).
///
/// serde_yaml_ng gives no positions for parsed values, so the lines are found in the text: the items of
/// the list are the lines that start with `- ` at the indentation of the first item.
fn item_lines(text: &str, key: &str) -> (u64, Vec<u64>) {
    let mut lines = text.lines().enumerate();
    let prefix = format!("{key}:");
    let mut key_line = 0u64;
    for (index, line) in lines.by_ref() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                key_line = index as u64 + 1;
                break;
            }
        }
    }
    if key_line == 0 {
        return (0, Vec::new());
    }
    let mut indent: Option<usize> = None;
    let mut items = Vec::new();
    for (index, line) in lines {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = line.len() - trimmed.len();
        let is_item = trimmed == "-" || trimmed.starts_with("- ");
        match indent {
            None if is_item => {
                indent = Some(depth);
                items.push(index as u64 + 1);
            }
            None => break,
            Some(level) if depth == level && is_item => items.push(index as u64 + 1),
            Some(level) if depth <= level => break,
            Some(_) => {}
        }
    }
    (key_line, items)
}

/// Reads the `tags:` of a TagPack, applying the header to every tag.
fn parse_tag_pack(file: &str, origin: &str, text: &str, pack: &Mapping) -> Result<Parsed> {
    let mut parsed = Parsed::new("graphsense_tagpack");
    let tags = match pack.get("tags") {
        Some(Value::Sequence(tags)) => tags,
        Some(Value::Null) | None => return Ok(parsed),
        Some(_) => return Err(Error::Parse { file: file.to_string(), line: None, reason: "`tags:` is not a list".to_string() }),
    };
    let (key_line, lines) = item_lines(text, "tags");
    let lines_known = lines.len() == tags.len();
    let creator = text_at(pack, "creator");
    let fallback_source = text_at(pack, "title").unwrap_or_else(|| origin.to_string());

    for (index, item) in tags.iter().enumerate() {
        let line = if lines_known { lines[index] } else { key_line };
        let error = |reason: String| RowError { file: file.to_string(), line, reason };
        let Value::Mapping(tag) = item else {
            parsed.errors.push(error(format!("tag #{} is not a mapping", index + 1)));
            continue;
        };
        // A tag's own value, else the header's.
        let inherited = |key: &str| text_at(tag, key).or_else(|| text_at(pack, key));
        let Some(address) = text_at(tag, "address") else {
            parsed.errors.push(error(format!("tag #{} has no `address`", index + 1)));
            continue;
        };
        let Some(currency) = inherited("currency") else {
            parsed.errors.push(error(format!("tag {address} has no `currency` (neither the tag nor the pack header gives one)")));
            continue;
        };
        let Some(label) = inherited("label") else {
            parsed.errors.push(error(format!("tag {address} has no `label` (neither the tag nor the pack header gives one)")));
            continue;
        };
        let abuse = inherited("abuse");
        let category = tag_category(tag, pack, abuse.as_deref());
        let is_cluster_definer = tag.get("is_cluster_definer").or_else(|| pack.get("is_cluster_definer")).and_then(bool_of).unwrap_or(false);
        parsed.tags.push((
            line,
            NewTag {
                subject_kind: SubjectKind::Address,
                chain: chain_for_currency(&currency, &address),
                subject: address,
                label,
                category,
                actor: inherited("actor"),
                source: inherited("source").unwrap_or_else(|| fallback_source.clone()),
                confidence: inherited("confidence"),
                author: creator.clone(),
                abuse,
                is_cluster_definer,
                origin_file: Some(origin.to_string()),
            },
        ));
    }
    Ok(parsed)
}

/// The stored category of a tag: the tag's abuse, else the tag's own specific category, else the header's abuse,
/// else any category (tag, header, first concept), else `unknown`; GraphSense ids mapped by [`canonical_category`].
fn tag_category(tag: &Mapping, pack: &Mapping, abuse: Option<&str>) -> String {
    if let Some(own_abuse) = text_at(tag, "abuse") {
        return canonical_category(&own_abuse);
    }
    let own_category = text_at(tag, "category").or_else(|| strings_at(tag, "concepts").into_iter().next());
    if let Some(category) = own_category.as_deref() {
        if !GENERIC_CATEGORIES.contains(&category.to_ascii_lowercase().as_str()) {
            return canonical_category(category);
        }
    }
    if let Some(abuse) = abuse {
        return canonical_category(abuse);
    }
    own_category.or_else(|| text_at(pack, "category")).map(|c| canonical_category(&c)).unwrap_or_else(|| "unknown".to_string())
}

/// Reads the `actors:` of an ActorPack.
fn parse_actor_pack(file: &str, origin: &str, text: &str, pack: &Mapping) -> Result<Parsed> {
    let mut parsed = Parsed::new("graphsense_actorpack");
    parsed.counts_actors = true;
    let actors = match pack.get("actors") {
        Some(Value::Sequence(actors)) => actors,
        Some(Value::Null) | None => return Ok(parsed),
        Some(_) => return Err(Error::Parse { file: file.to_string(), line: None, reason: "`actors:` is not a list".to_string() }),
    };
    let (key_line, lines) = item_lines(text, "actors");
    let lines_known = lines.len() == actors.len();
    let source = text_at(pack, "title").map_or_else(|| origin.to_string(), |title| format!("{title} ({origin})"));

    for (index, item) in actors.iter().enumerate() {
        let line = if lines_known { lines[index] } else { key_line };
        let Value::Mapping(entry) = item else {
            parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("actor #{} is not a mapping", index + 1) });
            continue;
        };
        let Some(id) = text_at(entry, "id") else {
            parsed.errors.push(RowError { file: file.to_string(), line, reason: format!("actor #{} has no `id`", index + 1) });
            continue;
        };
        let jurisdictions: Vec<String> = strings_at(entry, "jurisdictions").into_iter().map(|j| j.to_ascii_uppercase()).collect();
        let mut aliases = strings_at(entry, "aliases");
        match entry.get("context") {
            Some(Value::Mapping(context)) => aliases.extend(strings_at(context, "aliases")),
            Some(Value::String(json)) => {
                if let Ok(serde_json::Value::Object(context)) = serde_json::from_str::<serde_json::Value>(json) {
                    if let Some(serde_json::Value::Array(list)) = context.get("aliases") {
                        aliases.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_string));
                    }
                }
            }
            _ => {}
        }
        let mut unique = Vec::with_capacity(aliases.len());
        for alias in aliases {
            if !unique.contains(&alias) {
                unique.push(alias);
            }
        }
        parsed.actors.push((
            line,
            Actor {
                label: text_at(entry, "label").unwrap_or_else(|| id.clone()),
                id,
                country: jurisdictions.first().cloned(),
                jurisdictions,
                aliases: unique,
                categories: strings_at(entry, "categories"),
                uri: text_at(entry, "uri"),
                sources: vec![source.clone()],
            },
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_lines_of_block_sequences() {
        let text = "title: x\ndescription: |\n  tags:\n  - not this\ntags:\n- address: a\n  concepts:\n  - exchange\n\n- address: b\nother: 1\n";
        assert_eq!(item_lines(text, "tags"), (5, vec![6, 10]));
        let indented = "actors:\n  - id: a\n    label: A\n  - id: b\n";
        assert_eq!(item_lines(indented, "actors"), (1, vec![2, 4]));
        assert_eq!(item_lines("tags: []\n", "tags"), (0, vec![]));
    }

    #[test]
    fn header_inheritance_and_overrides() {
        let yaml = b"title: T\ncreator: C\nsource: https://example.org\ncurrency: BTC\nlabel: header label\nabuse: service_hack\nconfidence: web_crawl\ntags:\n- address: 1AXUTu9y3H8w4wYx4BjyFWgRhZKDhmcMrn\n- address: '0x098B716B8Aaf21512996dC57EB0615e2383E2f96'\n  currency: ETH\n  label: own label\n  category: exchange\n- currency: BTC\n";
        let parsed = parse_pack("p.yaml", "p.yaml", yaml).expect("parses");
        assert_eq!(parsed.tags.len(), 2);
        let (line0, first) = &parsed.tags[0];
        assert_eq!((*line0, first.chain.as_str(), first.label.as_str(), first.category.as_str()), (9, "bitcoin", "header label", "theft"));
        assert_eq!(first.author.as_deref(), Some("C"));
        let (_, second) = &parsed.tags[1];
        assert_eq!((second.chain.as_str(), second.label.as_str(), second.category.as_str()), ("ethereum", "own label", "exchange"));
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].line, 14);
    }
}
