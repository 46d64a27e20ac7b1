//! `labels` and `actors`: the label store (SQLite) and its importers, plus the `tags` table.

use anyhow::{bail, Context, Result};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracehound_labels::{CsvImport, ImportReport, LabelStore, NewTag, SubjectKind, Tag};
use tracehound_tables::Store;

/// Path of the label store under the data directory.
pub fn labels_path(data_dir: &Path) -> PathBuf {
    data_dir.join("labels.sqlite")
}

/// Opens (creating) the label store of `data_dir`.
pub fn open_labels(data_dir: &Path) -> Result<LabelStore> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = labels_path(data_dir);
    LabelStore::open(&path).with_context(|| format!("cannot open the label store {}", path.display()))
}

/// Address tags of `chain`, by address.
pub fn tags_by_address(labels: &LabelStore, chain: &str) -> Result<BTreeMap<String, Vec<Tag>>> {
    let mut out: BTreeMap<String, Vec<Tag>> = BTreeMap::new();
    for t in labels.address_tags_of_chain(chain)? {
        out.entry(t.subject.clone()).or_default().push(t);
    }
    Ok(out)
}

/// Rewrites the derived `tags` table from the label store, so SQL and exports see the labels.
pub fn write_tags_table(data_dir: &Path, labels: &LabelStore) -> Result<u64> {
    let tags = labels.all_tags()?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("chain", DataType::Utf8, false),
        Field::new("subject_kind", DataType::Utf8, false),
        Field::new("address", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("actor", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("confidence", DataType::Utf8, true),
        Field::new("confidence_level", DataType::Int64, true),
        Field::new("is_cluster_definer", DataType::Boolean, false),
        Field::new("abuse", DataType::Utf8, true),
        Field::new("origin_file", DataType::Utf8, true),
        Field::new("created_at", DataType::Utf8, false),
        Field::new("author", DataType::Utf8, true),
    ]));
    let s = |f: &dyn Fn(&Tag) -> Option<&str>| -> ArrayRef { Arc::new(StringArray::from_iter(tags.iter().map(f))) };
    let cols: Vec<ArrayRef> = vec![
        s(&|t| Some(&t.chain)),
        s(&|t| Some(t.subject_kind.as_str())),
        s(&|t| Some(&t.subject)),
        s(&|t| Some(&t.label)),
        s(&|t| Some(&t.category)),
        s(&|t| t.actor.as_deref()),
        s(&|t| Some(&t.source)),
        s(&|t| t.confidence.as_deref()),
        Arc::new(Int64Array::from_iter(tags.iter().map(|t| t.confidence_level))),
        Arc::new(BooleanArray::from_iter(tags.iter().map(|t| Some(t.is_cluster_definer)))),
        s(&|t| t.abuse.as_deref()),
        s(&|t| t.origin_file.as_deref()),
        s(&|t| Some(&t.created_at)),
        s(&|t| t.author.as_deref()),
    ];
    let batch = RecordBatch::try_new(schema, cols)?;
    let store = Store::open(data_dir)?;
    store.write_derived(None, "tags", &[batch])?;
    Ok(tags.len() as u64)
}

/// Prints import reports; bad rows go to standard error with file and line.
fn print_reports(reports: &[ImportReport], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(reports)?);
        return Ok(());
    }
    for r in reports {
        println!(
            "{} ({}): {} tags added, {} already present, {} actors added{}",
            r.file,
            r.format,
            r.inserted,
            r.unchanged,
            r.actors_inserted,
            match (r.errors.len(), r.rejected) {
                (0, _) => String::new(),
                (n, true) => format!(", {n} bad rows: file not stored"),
                (n, false) => format!(", {n} bad rows skipped"),
            }
        );
        for e in r.errors.iter().take(20) {
            eprintln!("  warning: {e}");
        }
        if r.errors.len() > 20 {
            eprintln!("  warning: … {} more bad rows in {}", r.errors.len() - 20, r.file);
        }
    }
    Ok(())
}

/// What `labels import` reads.
pub enum ImportKind {
    /// OFAC files.
    Ofac(Vec<PathBuf>),
    /// TagPack or ActorPack YAML files.
    Tagpack(Vec<PathBuf>),
    /// A CSV label list.
    Csv(PathBuf, CsvImport),
    /// The bundled default set.
    Defaults,
}

/// `tracehound labels import ...`.
pub fn import_cmd(data_dir: &Path, kind: ImportKind, keep_good_rows: bool, json: bool) -> Result<()> {
    let mut labels = open_labels(data_dir)?;
    // The bundled set is checked by its own tests; a user's file is all or nothing unless asked.
    labels.set_keep_good_rows(keep_good_rows || matches!(kind, ImportKind::Defaults));
    let mut reports = vec![];
    match kind {
        ImportKind::Defaults => reports = labels.import_defaults()?,
        ImportKind::Ofac(files) => {
            for f in files {
                reports.push(labels.import_ofac(&f).with_context(|| format!("importing {}", f.display()))?);
            }
        }
        ImportKind::Tagpack(files) => {
            for f in files {
                reports.push(labels.import_tagpack(&f).with_context(|| format!("importing {}", f.display()))?);
            }
        }
        ImportKind::Csv(f, opts) => reports.push(labels.import_csv(&f, &opts).with_context(|| format!("importing {}", f.display()))?),
    }
    let n = write_tags_table(data_dir, &labels)?;
    print_reports(&reports, json)?;
    if !json {
        println!("label store {}: {n} tags (table `tags` in tracehound sql)", labels_path(data_dir).display());
    }
    let bad: usize = reports.iter().map(|r| r.errors.len()).sum();
    let rejected: Vec<&str> = reports.iter().filter(|r| r.rejected).map(|r| r.file.as_str()).collect();
    if !rejected.is_empty() {
        return Err(crate::RejectedRows(format!(
            "{bad} bad rows (listed above): nothing of {} was stored; fix the rows, or give --keep-good-rows to store the good rows",
            rejected.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// Arguments of `labels add`.
pub struct AddArgs {
    /// Chain.
    pub chain: String,
    /// Address, cluster id or transaction hash.
    pub subject: String,
    /// What the subject is.
    pub kind: SubjectKind,
    /// Label.
    pub label: String,
    /// Actor id, label or alias.
    pub actor: Option<String>,
    /// Category.
    pub category: String,
    /// Source.
    pub source: String,
    /// Author.
    pub author: Option<String>,
}

/// `tracehound labels add`.
pub fn add_cmd(data_dir: &Path, a: AddArgs, json: bool) -> Result<()> {
    let mut labels = open_labels(data_dir)?;
    let actor = match &a.actor {
        Some(name) => Some(
            labels
                .actor(name)?
                .with_context(|| format!("no actor {name:?} is known; find one with `tracehound labels search {name}` or import actors first (`tracehound labels import --defaults`)"))?
                .actor
                .id,
        ),
        None => None,
    };
    if !tracehound_labels::category_known(&a.category) {
        eprintln!("warning: category {:?} is not in the taxonomy (e.g. exchange, hacker, mixing_service, sanctioned); stored as given", a.category);
    }
    let tag = NewTag {
        subject_kind: a.kind,
        chain: a.chain.clone(),
        subject: a.subject.clone(),
        label: a.label.clone(),
        category: a.category.clone(),
        actor: actor.clone(),
        source: a.source.clone(),
        confidence: Some("manual".to_string()),
        author: a.author.clone().or_else(|| std::env::var("USER").ok()),
        abuse: None,
        is_cluster_definer: false,
        origin_file: None,
    };
    let inserted = labels.add_tag(&tag)?;
    write_tags_table(data_dir, &labels)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"inserted": inserted, "chain": a.chain, "subject": a.subject, "label": a.label, "actor": actor, "category": a.category})
        );
    } else if inserted {
        println!(
            "tagged {} {} on {} as {:?} [{}]{}",
            a.kind.as_str(),
            a.subject,
            a.chain,
            a.label,
            a.category,
            actor.map(|x| format!(" actor {x}")).unwrap_or_default()
        );
    } else {
        println!("{} {} on {} already has the label {:?} from {:?}: nothing changed", a.kind.as_str(), a.subject, a.chain, a.label, a.source);
    }
    Ok(())
}

/// `tracehound labels search`.
pub fn search_cmd(data_dir: &Path, query: &str, limit: usize, json: bool) -> Result<()> {
    let labels = open_labels(data_dir)?;
    let r = labels.search(query, limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    if r.actors.is_empty() && r.tags.is_empty() {
        println!("nothing matches {query:?} (is the label store empty? try `tracehound labels import --defaults`)");
    }
    for a in &r.actors {
        println!("actor {} \"{}\" country {} categories {}", a.id, a.label, a.country.as_deref().unwrap_or("-"), a.categories.join(","));
    }
    for t in &r.tags {
        println!(
            "{} {} {} \"{}\" [{}]{} source {}",
            t.chain,
            t.subject_kind.as_str(),
            t.subject,
            t.label,
            t.category,
            t.actor.as_ref().map(|a| format!(" actor {a}")).unwrap_or_default(),
            t.source
        );
    }
    Ok(())
}

/// `tracehound labels stats`.
pub fn stats_cmd(data_dir: &Path, json: bool) -> Result<()> {
    let labels = open_labels(data_dir)?;
    let c = labels.counts()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    println!("{}: {} tags, {} actors", labels_path(data_dir).display(), c.tags, c.actors);
    for (title, m) in [("by chain", &c.by_chain), ("by category", &c.by_category), ("by source", &c.by_source)] {
        println!("  {title}:");
        for (k, v) in m {
            println!("    {k:<40} {v:>8}");
        }
    }
    Ok(())
}

/// `tracehound actors show`.
pub fn actor_cmd(data_dir: &Path, id: &str, json: bool) -> Result<()> {
    let labels = open_labels(data_dir)?;
    let Some(d) = labels.actor(id)? else {
        bail!("no actor matches {id:?}; try `tracehound labels search {id}` (actors come with `tracehound labels import --defaults` or an ActorPack)");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    let a = &d.actor;
    println!("{} \"{}\"", a.id, a.label);
    println!("  country: {}", a.country.as_deref().unwrap_or("-"));
    if !a.jurisdictions.is_empty() {
        println!("  jurisdictions: {}", a.jurisdictions.join(", "));
    }
    println!("  categories: {}", a.categories.join(", "));
    if !a.aliases.is_empty() {
        println!("  aliases: {}", a.aliases.join(", "));
    }
    if let Some(u) = &a.uri {
        println!("  uri: {u}");
    }
    println!("  {} tags", d.tag_count);
    for (k, v) in &d.tags_by_chain {
        println!("    on {k}: {v}");
    }
    for (k, v) in &d.tags_by_category {
        println!("    as {k}: {v}");
    }
    for t in d.sample_tags.iter().take(10) {
        println!("  e.g. {} {} \"{}\" ({})", t.chain, t.subject, t.label, t.source);
    }
    Ok(())
}
