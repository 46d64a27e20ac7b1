//! The SQLite label store: schema, migrations, writes (one transaction per file) and queries.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};

use crate::address::{chain_name, check_address, normalize_address};
use crate::import::csv_list::{self, ActorRule};
use crate::import::{normalize_label, ofac, tagpack, ActorIndex, Parsed};
use crate::model::{Actor, ActorDetails, ApiKey, AuditEntry, CsvImport, ImportReport, NewTag, RowError, SearchResults, StoreCounts, SubjectKind, Tag};
use crate::taxonomy::{canonical_category, confidence_level, CATEGORIES};
use crate::{Error, Result, API_ROLES};

/// Author recorded for imported tags whose file names no creator.
const IMPORT_AUTHOR: &str = "tracehound-import";
/// Author recorded for tags added by hand without an author.
const DEFAULT_AUTHOR: &str = "user";
/// Subjects bound in one `IN (…)` list (with the chain: at most 500 parameters a query).
const MAX_IN_PARAMS: usize = 499;
/// Sample tags shown with an actor.
const ACTOR_SAMPLE_TAGS: usize = 20;
/// Current UTC time as SQLite writes it (RFC 3339, seconds).
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ','now')";

/// Schema migrations, applied in order; `PRAGMA user_version` holds how many have run.
const MIGRATIONS: [&str; 2] = [
    r#"
CREATE TABLE actors (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    country TEXT,
    jurisdictions TEXT NOT NULL DEFAULT '[]',
    aliases TEXT NOT NULL DEFAULT '[]',
    categories TEXT NOT NULL DEFAULT '[]',
    uri TEXT,
    sources TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL
);
CREATE TABLE categories (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('address', 'cluster', 'transaction')),
    chain TEXT NOT NULL,
    subject TEXT NOT NULL,
    label TEXT NOT NULL,
    category TEXT NOT NULL,
    actor TEXT,
    source TEXT NOT NULL,
    confidence TEXT,
    confidence_level INTEGER,
    is_cluster_definer INTEGER NOT NULL DEFAULT 0,
    abuse TEXT,
    origin_file TEXT,
    created_at TEXT NOT NULL,
    author TEXT,
    UNIQUE (subject_kind, chain, subject, label, source)
);
CREATE INDEX tags_chain_subject ON tags (chain, subject);
CREATE INDEX tags_actor ON tags (actor);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    author TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
"#,
    // API keys of `tracehound serve`: only the SHA-256 of a key is kept, never the key.
    r#"
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    key_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"#,
];

/// Columns of `tags` in the order [`tag_from_row`] reads them.
const TAG_COLUMNS: &str =
    "id, subject_kind, chain, subject, label, category, actor, source, confidence, confidence_level, is_cluster_definer, abuse, origin_file, created_at, author";
/// Columns of `api_keys` in the order [`api_key_from_row`] reads them.
const API_KEY_COLUMNS: &str = "id, name, role, created_at, revoked_at";
/// Columns of `actors` in the order [`actor_from_row`] reads them.
const ACTOR_COLUMNS: &str = "id, label, country, jurisdictions, aliases, categories, uri, sources, created_at";

/// The label store: one SQLite file holding tags, actors, the category taxonomy and an audit log.
#[derive(Debug)]
pub struct LabelStore {
    conn: Connection,
    path: String,
    /// Store the good rows of a file that has bad rows (see [`LabelStore::set_keep_good_rows`]).
    keep_good_rows: bool,
}

/// The names an actor can be found by.
struct ActorNames {
    id: String,
    label: String,
    aliases: Vec<String>,
}

/// A tag checked and normalized, ready for insertion.
struct TagRow {
    kind: SubjectKind,
    chain: String,
    subject: String,
    label: String,
    category: String,
    actor: Option<String>,
    source: String,
    confidence: Option<String>,
    confidence_level: Option<i64>,
    is_cluster_definer: bool,
    abuse: Option<String>,
    origin_file: Option<String>,
}

/// A trimmed, non-empty copy of an optional text.
fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
}

/// Normalizes a subject of the given kind: addresses with [`normalize_address`], hex hashes in lower case.
fn normalize_subject(kind: SubjectKind, chain: &str, subject: &str) -> String {
    match kind {
        SubjectKind::Address => normalize_address(chain, subject),
        SubjectKind::Transaction => {
            let trimmed = subject.trim();
            let hex = trimmed.strip_prefix("0x").unwrap_or(trimmed);
            if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                trimmed.to_ascii_lowercase()
            } else {
                trimmed.to_string()
            }
        }
        SubjectKind::Cluster => subject.trim().to_string(),
    }
}

/// Checks and normalizes a tag; `Err` says what is wrong.
fn prepare_tag(tag: &NewTag) -> std::result::Result<TagRow, String> {
    let chain = chain_name(&tag.chain, &tag.subject);
    if chain.is_empty() {
        return Err("no chain".to_string());
    }
    let subject = normalize_subject(tag.subject_kind, &chain, &tag.subject);
    if tag.subject_kind == SubjectKind::Address {
        check_address(&chain, &subject)?;
    } else if subject.is_empty() {
        return Err(format!("empty {}", tag.subject_kind));
    }
    let label = tag.label.trim();
    if label.is_empty() {
        return Err(format!("{subject}: empty label"));
    }
    let source = tag.source.trim();
    if source.is_empty() {
        return Err(format!("{subject}: empty source"));
    }
    let confidence = non_empty(tag.confidence.as_deref());
    Ok(TagRow {
        kind: tag.subject_kind,
        chain,
        subject,
        label: label.to_string(),
        category: canonical_category(&tag.category),
        actor: non_empty(tag.actor.as_deref()),
        source: source.to_string(),
        confidence_level: confidence.as_deref().and_then(confidence_level),
        confidence,
        is_cluster_definer: tag.is_cluster_definer,
        abuse: non_empty(tag.abuse.as_deref()),
        origin_file: non_empty(tag.origin_file.as_deref()),
    })
}

/// Inserts a prepared tag unless the same (kind, chain, subject, label, source) exists; true if inserted.
fn insert_tag(tx: &Transaction<'_>, row: &TagRow, author: &str) -> rusqlite::Result<bool> {
    let mut statement = tx.prepare_cached(&format!(
        "INSERT INTO tags (subject_kind, chain, subject, label, category, actor, source, confidence, confidence_level, is_cluster_definer, abuse, origin_file, created_at, author)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, {NOW}, ?13)
         ON CONFLICT (subject_kind, chain, subject, label, source) DO NOTHING"
    ))?;
    let changed = statement.execute(params![
        row.kind.as_str(),
        row.chain,
        row.subject,
        row.label,
        row.category,
        row.actor,
        row.source,
        row.confidence,
        row.confidence_level,
        row.is_cluster_definer,
        row.abuse,
        row.origin_file,
        author,
    ])?;
    Ok(changed == 1)
}

/// JSON text of a list of strings.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

/// The country of an actor: as given, else its first jurisdiction; upper case.
fn actor_country(actor: &Actor) -> Option<String> {
    non_empty(actor.country.as_deref()).or_else(|| actor.jurisdictions.first().cloned()).map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty())
}

/// Inserts an actor unless one with the same id exists; true if inserted.
fn insert_actor(tx: &Transaction<'_>, actor: &Actor) -> rusqlite::Result<bool> {
    let mut statement = tx.prepare_cached(&format!(
        "INSERT INTO actors (id, label, country, jurisdictions, aliases, categories, uri, sources, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, {NOW}) ON CONFLICT (id) DO NOTHING"
    ))?;
    let changed = statement.execute(params![
        actor.id.trim(),
        actor.label.trim(),
        actor_country(actor),
        json_list(&actor.jurisdictions),
        json_list(&actor.aliases),
        json_list(&actor.categories),
        non_empty(actor.uri.as_deref()),
        json_list(&actor.sources),
    ])?;
    Ok(changed == 1)
}

/// Writes one audit-log row.
fn audit(conn: &Connection, author: &str, action: &str, detail: &serde_json::Value) -> rusqlite::Result<()> {
    conn.execute(&format!("INSERT INTO audit_log (at, author, action, detail) VALUES ({NOW}, ?1, ?2, ?3)"), params![author, action, detail.to_string()])?;
    Ok(())
}

/// Reads a `tags` row selected with [`TAG_COLUMNS`].
fn tag_from_row(row: &Row<'_>) -> rusqlite::Result<Tag> {
    let kind: String = row.get(1)?;
    Ok(Tag {
        id: row.get(0)?,
        subject_kind: SubjectKind::from_name(&kind).unwrap_or_default(),
        chain: row.get(2)?,
        subject: row.get(3)?,
        label: row.get(4)?,
        category: row.get(5)?,
        actor: row.get(6)?,
        source: row.get(7)?,
        confidence: row.get(8)?,
        confidence_level: row.get(9)?,
        is_cluster_definer: row.get(10)?,
        abuse: row.get(11)?,
        origin_file: row.get(12)?,
        created_at: row.get(13)?,
        author: row.get(14)?,
    })
}

/// Reads an `api_keys` row selected with [`API_KEY_COLUMNS`].
fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey { id: row.get(0)?, name: row.get(1)?, role: row.get(2)?, created_at: row.get(3)?, revoked_at: row.get(4)? })
}

/// Parses a JSON list column; anything else reads as empty.
fn list_from_json(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// Reads an `actors` row selected with [`ACTOR_COLUMNS`]; also returns `created_at`.
fn actor_from_row(row: &Row<'_>) -> rusqlite::Result<(Actor, String)> {
    Ok((
        Actor {
            id: row.get(0)?,
            label: row.get(1)?,
            country: row.get(2)?,
            jurisdictions: list_from_json(row.get(3)?),
            aliases: list_from_json(row.get(4)?),
            categories: list_from_json(row.get(5)?),
            uri: row.get(6)?,
            sources: list_from_json(row.get(7)?),
        },
        row.get(8)?,
    ))
}

impl LabelStore {
    /// Opens (creating if needed) the store at `path`, switches it to WAL mode and applies pending migrations.
    /// The parent directory must exist.
    pub fn open(path: &Path) -> Result<LabelStore> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(Error::Io {
                    file: shown,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("directory {} does not exist", parent.display())),
                });
            }
        }
        let db = |source| Error::Database { file: shown.clone(), source };
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
        let mut store = LabelStore { conn, path: shown, keep_good_rows: true };
        store.migrate()?;
        Ok(store)
    }

    /// The database file as given to [`LabelStore::open`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Wraps a SQLite error with the database file name.
    fn db(&self, source: rusqlite::Error) -> Error {
        Error::Database { file: self.path.clone(), source }
    }

    /// Applies the migrations the file has not seen yet, each in its own transaction.
    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(|e| self.db(e))?;
        let latest = MIGRATIONS.len() as i64;
        if version > latest {
            return Err(Error::SchemaTooNew { file: self.path.clone(), found: version, supported: latest });
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let number = index as i64 + 1;
            let path = self.path.clone();
            let db = |source| Error::Database { file: path.clone(), source };
            let tx = self.conn.transaction().map_err(db)?;
            tx.execute_batch(sql).map_err(db)?;
            if number == 1 {
                let mut insert = tx.prepare("INSERT INTO categories (id, label, description) VALUES (?1, ?2, ?3)").map_err(db)?;
                for (id, label, description) in CATEGORIES {
                    insert.execute(params![id, label, description]).map_err(db)?;
                }
            }
            tx.pragma_update(None, "user_version", number).map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(())
    }

    /// Writes what an importer read, all in one transaction, plus one audit row.
    fn store_parsed(&mut self, file: &str, parsed: Parsed) -> Result<ImportReport> {
        let path = self.path.clone();
        let db = |source| Error::Database { file: path.clone(), source };
        let mut report = ImportReport { file: file.to_string(), format: parsed.format.to_string(), errors: parsed.errors, ..ImportReport::default() };
        let (mut tags_inserted, mut tags_unchanged, mut actors_unchanged) = (0u64, 0u64, 0u64);
        let tx = self.conn.transaction().map_err(db)?;
        for (line, actor) in &parsed.actors {
            if actor.id.trim().is_empty() || actor.label.trim().is_empty() {
                report.errors.push(RowError { file: file.to_string(), line: *line, reason: "actor without id or label".to_string() });
            } else if insert_actor(&tx, actor).map_err(db)? {
                report.actors_inserted += 1;
            } else {
                actors_unchanged += 1;
            }
        }
        for (actor, country) in &parsed.countries {
            tx.execute("UPDATE actors SET country = ?2, jurisdictions = json_array(?2) WHERE id = ?1 AND country IS NULL", rusqlite::params![actor, country])
                .map_err(db)?;
        }
        for (line, tag) in &parsed.tags {
            match prepare_tag(tag) {
                Ok(row) => {
                    if insert_tag(&tx, &row, tag.author.as_deref().unwrap_or(IMPORT_AUTHOR)).map_err(db)? {
                        tags_inserted += 1;
                    } else {
                        tags_unchanged += 1;
                    }
                }
                Err(reason) => report.errors.push(RowError { file: file.to_string(), line: *line, reason }),
            }
        }
        report.errors.sort_by_key(|e| e.line);
        if !report.errors.is_empty() && !self.keep_good_rows {
            // Dropping the transaction rolls back every row of the file.
            drop(tx);
            report.rejected = true;
            report.actors_inserted = 0;
            return Ok(report);
        }
        if parsed.counts_actors {
            (report.inserted, report.unchanged) = (report.actors_inserted, actors_unchanged);
        } else {
            (report.inserted, report.unchanged) = (tags_inserted, tags_unchanged);
        }
        let detail = serde_json::json!({
            "file": report.file,
            "format": report.format,
            "inserted": report.inserted,
            "unchanged": report.unchanged,
            "actors_inserted": report.actors_inserted,
            "errors": report.errors.len(),
        });
        audit(&tx, IMPORT_AUTHOR, "import", &detail).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(report)
    }

    /// Actors by normalized label, for linking OFAC names to existing actors.
    fn actor_index(&self) -> Result<ActorIndex> {
        let mut statement = self.conn.prepare("SELECT id, label FROM actors").map_err(|e| self.db(e))?;
        let pairs = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(|e| self.db(e))?;
        let pairs: Vec<(String, String)> = pairs.collect::<rusqlite::Result<_>>().map_err(|e| self.db(e))?;
        Ok(ActorIndex::new(pairs))
    }

    /// Whether an import stores the good rows of a file that has bad rows (the default), or
    /// stores nothing of such a file and reports it as rejected ([`ImportReport::rejected`]).
    pub fn set_keep_good_rows(&mut self, keep: bool) {
        self.keep_good_rows = keep;
    }

    /// Imports an OFAC file, detecting its format: legacy `sdn.csv` (no header), `sdn_advanced.xml`, or a per-asset
    /// list `sanctioned_addresses_<ASSET>.txt` / `.json` (the asset comes from the file name).
    pub fn import_ofac(&mut self, path: &Path) -> Result<ImportReport> {
        let (file, name, bytes) = read_file(path)?;
        self.import_ofac_bytes(&file, &name, &bytes)
    }

    /// [`LabelStore::import_ofac`] from memory: `file` names the input in reports, `name` is its file name.
    pub fn import_ofac_bytes(&mut self, file: &str, name: &str, bytes: &[u8]) -> Result<ImportReport> {
        let parsed = match ofac::detect(name, bytes) {
            ofac::OfacFormat::SdnCsv => ofac::parse_sdn_csv(file, name, bytes, &self.actor_index()?)?,
            ofac::OfacFormat::AdvancedXml => ofac::parse_advanced_xml(file, name, bytes, &self.actor_index()?)?,
            ofac::OfacFormat::ListTxt(asset) => ofac::parse_list_txt(file, name, &asset, bytes)?,
            ofac::OfacFormat::ListJson(asset) => ofac::parse_list_json(file, name, &asset, bytes)?,
        };
        self.store_parsed(file, parsed)
    }

    /// Imports a GraphSense TagPack, or an ActorPack (detected by a top-level `actors:` key).
    pub fn import_tagpack(&mut self, path: &Path) -> Result<ImportReport> {
        let (file, name, bytes) = read_file(path)?;
        self.import_tagpack_bytes(&file, &name, &bytes)
    }

    /// [`LabelStore::import_tagpack`] from memory.
    pub fn import_tagpack_bytes(&mut self, file: &str, name: &str, bytes: &[u8]) -> Result<ImportReport> {
        let parsed = tagpack::parse_pack(file, name, bytes)?;
        self.store_parsed(file, parsed)
    }

    /// Imports a CSV label list with a header row (see [`CsvImport`] for the defaults it fills in).
    pub fn import_csv(&mut self, path: &Path, opts: &CsvImport) -> Result<ImportReport> {
        let (file, name, bytes) = read_file(path)?;
        self.import_csv_bytes(&file, &name, &bytes, opts)
    }

    /// [`LabelStore::import_csv`] from memory.
    pub fn import_csv_bytes(&mut self, file: &str, name: &str, bytes: &[u8], opts: &CsvImport) -> Result<ImportReport> {
        let parsed = csv_list::parse_csv(file, name, bytes, opts, ActorRule::AllRows)?;
        self.store_parsed(file, parsed)
    }

    /// Imports the incident attacker list of the bundled set: the actor goes only to incidents attributed to it.
    pub(crate) fn import_incident_csv_bytes(&mut self, file: &str, name: &str, bytes: &[u8], opts: &CsvImport) -> Result<ImportReport> {
        let parsed = csv_list::parse_csv(file, name, bytes, opts, ActorRule::IncidentsExcept(&crate::defaults::SUSPECTED_ONLY_INCIDENTS))?;
        self.store_parsed(file, parsed)
    }

    /// Adds one tag by hand; true if it was new. Writes an audit row either way.
    pub fn add_tag(&mut self, tag: &NewTag) -> Result<bool> {
        let row = prepare_tag(tag).map_err(Error::InvalidTag)?;
        let author = non_empty(tag.author.as_deref()).unwrap_or_else(|| DEFAULT_AUTHOR.to_string());
        let path = self.path.clone();
        let db = |source| Error::Database { file: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        let inserted = insert_tag(&tx, &row, &author).map_err(db)?;
        let detail = serde_json::json!({
            "inserted": inserted,
            "subject_kind": row.kind.as_str(),
            "chain": row.chain,
            "subject": row.subject,
            "label": row.label,
            "category": row.category,
            "actor": row.actor,
            "source": row.source,
            "confidence": row.confidence,
        });
        audit(&tx, &author, "add_tag", &detail).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(inserted)
    }

    /// Inserts an actor or replaces the fields of the actor with the same id; true if it was new.
    /// The country defaults to the first jurisdiction.
    pub fn upsert_actor(&mut self, actor: &Actor) -> Result<bool> {
        let id = actor.id.trim();
        if id.is_empty() {
            return Err(Error::InvalidActor("empty actor id".to_string()));
        }
        let label = non_empty(Some(&actor.label)).unwrap_or_else(|| id.to_string());
        let path = self.path.clone();
        let db = |source| Error::Database { file: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        let exists = tx.query_row("SELECT 1 FROM actors WHERE id = ?1", [id], |_| Ok(())).optional().map_err(db)?.is_some();
        tx.execute(
            &format!(
                "INSERT INTO actors (id, label, country, jurisdictions, aliases, categories, uri, sources, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, {NOW})
                 ON CONFLICT (id) DO UPDATE SET label = excluded.label, country = excluded.country, jurisdictions = excluded.jurisdictions,
                 aliases = excluded.aliases, categories = excluded.categories, uri = excluded.uri, sources = excluded.sources"
            ),
            params![
                id,
                label,
                actor_country(actor),
                json_list(&actor.jurisdictions),
                json_list(&actor.aliases),
                json_list(&actor.categories),
                non_empty(actor.uri.as_deref()),
                json_list(&actor.sources),
            ],
        )
        .map_err(db)?;
        audit(&tx, DEFAULT_AUTHOR, "upsert_actor", &serde_json::json!({ "id": id, "inserted": !exists })).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(!exists)
    }

    /// Runs a tag query and collects the rows.
    fn query_tags(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Tag>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.db(e))?;
        let rows = statement.query_map(params, tag_from_row).map_err(|e| self.db(e))?;
        rows.collect::<rusqlite::Result<Vec<Tag>>>().map_err(|e| self.db(e))
    }

    /// Address tags of many addresses of one chain (addresses are normalized here), ordered by address,
    /// then most confident first.
    pub fn tags_for(&self, chain: &str, subjects: &[String]) -> Result<Vec<Tag>> {
        let chain = chain_name(chain, subjects.first().map_or("", String::as_str));
        let mut normalized: Vec<String> = subjects.iter().map(|s| normalize_address(&chain, s)).filter(|s| !s.is_empty()).collect();
        normalized.sort();
        normalized.dedup();
        let mut tags = Vec::new();
        for chunk in normalized.chunks(MAX_IN_PARAMS) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let sql = format!("SELECT {TAG_COLUMNS} FROM tags WHERE subject_kind = 'address' AND chain = ?1 AND subject IN ({})", placeholders.join(", "));
            let values = std::iter::once(&chain).chain(chunk.iter());
            tags.extend(self.query_tags(&sql, params_from_iter(values))?);
        }
        tags.sort_by(|a, b| a.subject.cmp(&b.subject).then(b.confidence_level.cmp(&a.confidence_level)).then(a.id.cmp(&b.id)));
        Ok(tags)
    }

    /// Tags of one subject of the given kind (the subject is normalized here), most confident first.
    pub fn tags_of_kind(&self, kind: SubjectKind, chain: &str, subject: &str) -> Result<Vec<Tag>> {
        let chain = chain_name(chain, subject);
        let subject = normalize_subject(kind, &chain, subject);
        self.query_tags(
            &format!("SELECT {TAG_COLUMNS} FROM tags WHERE subject_kind = ?1 AND chain = ?2 AND subject = ?3 ORDER BY confidence_level DESC, id"),
            params![kind.as_str(), chain, subject],
        )
    }

    /// Address tags of one chain, in insertion order.
    pub fn address_tags_of_chain(&self, chain: &str) -> Result<Vec<Tag>> {
        self.query_tags(&format!("SELECT {TAG_COLUMNS} FROM tags WHERE subject_kind = 'address' AND chain = ?1 ORDER BY id"), [chain])
    }

    /// Every tag, in insertion order (for the SQL `tags` table).
    pub fn all_tags(&self) -> Result<Vec<Tag>> {
        self.query_tags(&format!("SELECT {TAG_COLUMNS} FROM tags ORDER BY id"), [])
    }

    /// Runs an actor query and collects the rows with their `created_at`.
    fn query_actors(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<(Actor, String)>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.db(e))?;
        let rows = statement.query_map(params, actor_from_row).map_err(|e| self.db(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.db(e))
    }

    /// Case-insensitive substring search: up to `limit` actors (id, label, aliases) and up to `limit` tags
    /// (label, subject, actor). Exact matches come first. A blank query finds nothing.
    pub fn search(&self, query: &str, limit: usize) -> Result<SearchResults> {
        let needle = query.trim().to_lowercase();
        if needle.is_empty() || limit == 0 {
            return Ok(SearchResults::default());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let actors = self.query_actors(
            &format!(
                "SELECT {ACTOR_COLUMNS} FROM actors
                 WHERE instr(lower(id), ?1) > 0 OR instr(lower(label), ?1) > 0
                    OR EXISTS (SELECT 1 FROM json_each(actors.aliases) WHERE instr(lower(json_each.value), ?1) > 0)
                 ORDER BY (lower(id) = ?1 OR lower(label) = ?1) DESC, length(label), id LIMIT ?2"
            ),
            params![needle, limit],
        )?;
        let tags = self.query_tags(
            &format!(
                "SELECT {TAG_COLUMNS} FROM tags
                 WHERE instr(lower(label), ?1) > 0 OR instr(lower(subject), ?1) > 0 OR instr(lower(coalesce(actor, '')), ?1) > 0
                 ORDER BY (lower(subject) = ?1 OR lower(label) = ?1) DESC, confidence_level DESC, id LIMIT ?2"
            ),
            params![needle, limit],
        )?;
        Ok(SearchResults { actors: actors.into_iter().map(|(actor, _)| actor).collect(), tags })
    }

    /// Resolves an actor name to an id: exact id (any case), then exact label, then alias, then a unique
    /// prefix, then a unique substring of id or label. `Err(AmbiguousActor)` when a step finds several.
    fn resolve_actor(&self, query: &str) -> Result<Option<String>> {
        let wanted = query.trim().to_lowercase();
        let wanted_key = normalize_label(query);
        if wanted.is_empty() {
            return Ok(None);
        }
        let mut statement = self.conn.prepare_cached("SELECT id, label, aliases FROM actors ORDER BY id").map_err(|e| self.db(e))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?)))
            .map_err(|e| self.db(e))?;
        let actors: Vec<ActorNames> = rows
            .map(|r| r.map(|(id, label, aliases)| ActorNames { id, label, aliases: list_from_json(aliases) }))
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.db(e))?;
        let same = |text: &str| text.to_lowercase() == wanted || (!wanted_key.is_empty() && normalize_label(text) == wanted_key);
        let key_in = |text: &str, prefix_only: bool| {
            let key = normalize_label(text);
            !wanted_key.is_empty() && if prefix_only { key.starts_with(&wanted_key) } else { key.contains(&wanted_key) }
        };
        let steps: [&dyn Fn(&ActorNames) -> bool; 5] = [
            &|a| a.id.to_lowercase() == wanted,
            &|a| same(&a.label),
            &|a| a.aliases.iter().any(|alias| same(alias)),
            &|a| key_in(&a.id, true) || key_in(&a.label, true),
            &|a| key_in(&a.id, false) || key_in(&a.label, false) || a.aliases.iter().any(|alias| key_in(alias, false)),
        ];
        for step in steps {
            let found: Vec<&String> = actors.iter().filter(|a| step(a)).map(|a| &a.id).collect();
            match found.len() {
                0 => continue,
                1 => return Ok(Some(found[0].clone())),
                _ => {
                    return Err(Error::AmbiguousActor { query: query.to_string(), candidates: found.into_iter().take(10).cloned().collect() });
                }
            }
        }
        Ok(None)
    }

    /// An actor with its tag counts per chain and category and up to 20 sample tags.
    /// `id` may also be a label, an alias, or a unique prefix/substring of either (`lazarus` → `lazarusgroup`).
    pub fn actor(&self, id: &str) -> Result<Option<ActorDetails>> {
        let Some(id) = self.resolve_actor(id)? else { return Ok(None) };
        let Some((actor, created_at)) = self.query_actors(&format!("SELECT {ACTOR_COLUMNS} FROM actors WHERE id = ?1"), [&id])?.into_iter().next() else {
            return Ok(None);
        };
        let count_by = |column: &str| -> Result<BTreeMap<String, u64>> {
            let mut statement =
                self.conn.prepare_cached(&format!("SELECT {column}, count(*) FROM tags WHERE actor = ?1 GROUP BY {column}")).map_err(|e| self.db(e))?;
            let rows = statement.query_map([&id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))).map_err(|e| self.db(e))?;
            rows.collect::<rusqlite::Result<BTreeMap<_, _>>>().map_err(|e| self.db(e))
        };
        let tags_by_chain = count_by("chain")?;
        let tags_by_category = count_by("category")?;
        let sample_tags =
            self.query_tags(&format!("SELECT {TAG_COLUMNS} FROM tags WHERE actor = ?1 ORDER BY confidence_level DESC, id LIMIT {ACTOR_SAMPLE_TAGS}"), [&id])?;
        Ok(Some(ActorDetails { actor, created_at, tag_count: tags_by_chain.values().sum(), tags_by_chain, tags_by_category, sample_tags }))
    }

    /// Number of tags and actors, and tags per source, category and chain.
    pub fn counts(&self) -> Result<StoreCounts> {
        let count = |sql: &str| -> Result<u64> { self.conn.query_row(sql, [], |row| row.get::<_, i64>(0)).map(|n| n as u64).map_err(|e| self.db(e)) };
        let group = |column: &str| -> Result<BTreeMap<String, u64>> {
            let mut statement = self.conn.prepare(&format!("SELECT {column}, count(*) FROM tags GROUP BY {column}")).map_err(|e| self.db(e))?;
            let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))).map_err(|e| self.db(e))?;
            rows.collect::<rusqlite::Result<BTreeMap<_, _>>>().map_err(|e| self.db(e))
        };
        Ok(StoreCounts {
            tags: count("SELECT count(*) FROM tags")?,
            actors: count("SELECT count(*) FROM actors")?,
            by_source: group("source")?,
            by_category: group("category")?,
            by_chain: group("chain")?,
        })
    }

    /// The number of audit-log rows (each import and each `add_tag` writes one).
    pub fn audit_log_len(&self) -> Result<u64> {
        self.conn.query_row("SELECT count(*) FROM audit_log", [], |row| row.get::<_, i64>(0)).map(|n| n as u64).map_err(|e| self.db(e))
    }

    /// Up to `limit` audit-log rows with an id above `after`, oldest first.
    pub fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut statement =
            self.conn.prepare_cached("SELECT id, at, author, action, detail FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2").map_err(|e| self.db(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement
            .query_map(params![after, limit], |row| {
                let detail: String = row.get(4)?;
                Ok(AuditEntry {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    author: row.get(2)?,
                    action: row.get(3)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                })
            })
            .map_err(|e| self.db(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.db(e))
    }

    /// Stores a new API key of `role` (`viewer`, `analyst` or `admin`) by the hex SHA-256 of the
    /// key (the key itself is never stored), with an audit row by `author`.
    pub fn create_api_key(&mut self, name: &str, role: &str, key_hash: &str, author: &str) -> Result<ApiKey> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::InvalidApiKey("empty name".into()));
        }
        if !API_ROLES.contains(&role) {
            return Err(Error::InvalidApiKey(format!("role {role:?}: use one of {}", API_ROLES.join(", "))));
        }
        if key_hash.len() != 64 || !key_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidApiKey("the key hash is not a hex SHA-256".into()));
        }
        let path = self.path.clone();
        let db = |source| Error::Database { file: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            &format!("INSERT INTO api_keys (name, role, key_hash, created_at) VALUES (?1, ?2, ?3, {NOW})"),
            params![name, role, key_hash.to_ascii_lowercase()],
        )
        .map_err(db)?;
        let id = tx.last_insert_rowid();
        let key = tx.query_row(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"), [id], api_key_from_row).map_err(db)?;
        audit(&tx, author, "create_api_key", &serde_json::json!({ "id": id, "name": name, "role": role })).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(key)
    }

    /// The key whose SHA-256 is `key_hash` (hex), unless it is revoked or unknown.
    pub fn active_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let mut statement =
            self.conn.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL")).map_err(|e| self.db(e))?;
        statement.query_row([key_hash.to_ascii_lowercase()], api_key_from_row).optional().map_err(|e| self.db(e))
    }

    /// Every API key, revoked ones included, oldest first (never the keys themselves).
    pub fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut statement = self.conn.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id")).map_err(|e| self.db(e))?;
        let rows = statement.query_map([], api_key_from_row).map_err(|e| self.db(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.db(e))
    }

    /// Revokes key `id`, with an audit row by `author`; false if no active key has that id.
    pub fn revoke_api_key(&mut self, id: i64, author: &str) -> Result<bool> {
        let path = self.path.clone();
        let db = |source| Error::Database { file: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        let changed = tx.execute(&format!("UPDATE api_keys SET revoked_at = {NOW} WHERE id = ?1 AND revoked_at IS NULL"), [id]).map_err(db)?;
        if changed == 1 {
            audit(&tx, author, "revoke_api_key", &serde_json::json!({ "id": id })).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(changed == 1)
    }
}

/// Reads a whole input file; returns (path as shown, file name, bytes).
fn read_file(path: &Path) -> Result<(String, String, Vec<u8>)> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { file: shown.clone(), source })?;
    let name = path.file_name().map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
    Ok((shown, name, bytes))
}
