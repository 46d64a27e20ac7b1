//! Importers: each reads one file (from bytes) into a [`Parsed`] set of actors, tags and row errors,
//! which the store then writes in one transaction.

pub(crate) mod csv_list;
pub(crate) mod ofac;
pub(crate) mod tagpack;

use std::collections::HashMap;

use crate::model::{Actor, NewTag, RowError};

/// What an importer read from one file.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// Format name for the report.
    pub format: &'static str,
    /// Actors with the line they start on.
    pub actors: Vec<(u64, Actor)>,
    /// Tags with the line they come from.
    pub tags: Vec<(u64, NewTag)>,
    /// Rows that could not be read.
    pub errors: Vec<RowError>,
    /// Whether the report counts actors (actor packs) rather than tags.
    pub counts_actors: bool,
    /// Countries learnt for existing actors that have none yet (actor id, ISO-3166 code), e.g.
    /// from the OFAC program of a sanctioned group (DPRK3 → KP).
    pub countries: Vec<(String, String)>,
}

impl Parsed {
    /// An empty result of the given format.
    pub fn new(format: &'static str) -> Parsed {
        Parsed { format, actors: Vec::new(), tags: Vec::new(), errors: Vec::new(), counts_actors: false, countries: Vec::new() }
    }
}

/// Actors by normalized label, to link OFAC names (`LAZARUS GROUP`) to existing actors (`lazarusgroup`).
#[derive(Debug, Default)]
pub(crate) struct ActorIndex {
    by_label: HashMap<String, Vec<String>>,
}

impl ActorIndex {
    /// Builds the index from (id, label) pairs.
    pub fn new(actors: impl IntoIterator<Item = (String, String)>) -> ActorIndex {
        let mut by_label: HashMap<String, Vec<String>> = HashMap::new();
        for (id, label) in actors {
            let key = normalize_label(&label);
            if !key.is_empty() {
                by_label.entry(key).or_default().push(id);
            }
        }
        ActorIndex { by_label }
    }

    /// The id of the one actor whose label normalizes like `label`; `None` if there is none or more than one.
    pub fn by_label(&self, label: &str) -> Option<&str> {
        match self.by_label.get(&normalize_label(label)) {
            Some(ids) if ids.len() == 1 => Some(ids[0].as_str()),
            _ => None,
        }
    }
}

/// A label reduced to lower-case letters and digits (`LAZARUS GROUP` → `lazarusgroup`).
pub(crate) fn normalize_label(label: &str) -> String {
    label.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// The 1-based line of a byte offset.
pub(crate) fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

/// Strips a UTF-8 byte-order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Turns the byte offsets of CSV records into 1-based line numbers.
///
/// The csv crate's own `Position::line` is one too low for records that follow a CRLF line end (it counts the `\n`
/// only when it reads the next record), and OFAC's `sdn.csv` uses CRLF, so lines are counted here from the bytes.
/// Offsets must be asked for in increasing order; counting is incremental.
pub(crate) struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    /// A counter over the bytes the CSV reader reads.
    pub fn new(bytes: &'a [u8]) -> LineCounter<'a> {
        LineCounter { bytes, offset: 0, line: 1 }
    }

    /// The line of the record that starts at (or after the line ends at) byte `offset`.
    pub fn line_at(&mut self, offset: u64) -> u64 {
        let mut start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.bytes[self.offset..start].iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = start;
        self.line
    }
}
