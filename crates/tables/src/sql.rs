//! SQL over the stored tables with Apache DataFusion.
//!
//! Every chain is a schema (`bitcoin_regtest.transactions`); the tables of the default chain
//! (the one asked for, or the only one stored) are also reachable without a prefix.
//!
//! Printing the results is [`crate::format`]'s job (exports print through it too).

use crate::{schema, Error, Result, Store};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

/// The chain whose tables answer to unqualified names: `requested`, or the only chain stored.
pub fn default_chain(store: &Store, requested: Option<&str>) -> Result<Option<String>> {
    let names = store.manifest().chain_names();
    let chains: Vec<&String> = names.iter().collect();
    match requested {
        Some(c) if names.contains(c) => Ok(Some(c.to_string())),
        Some(c) => Err(Error::NotFound(format!(
            "chain {c:?} has no data in {}; stored chains: {}",
            store.root().display(),
            if chains.is_empty() {
                "none (run `tracehound ingest` or `tracehound demo`)".into()
            } else {
                chains.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        ))),
        None if chains.len() == 1 => Ok(Some(chains[0].clone())),
        None => Ok(None),
    }
}

/// A DataFusion session with every stored table registered.
pub async fn session(store: &Store, default: Option<&str>) -> Result<SessionContext> {
    let config = SessionConfig::new().with_information_schema(true).with_default_catalog_and_schema("datafusion", "public");
    let ctx = SessionContext::new_with_config(config);
    let default = default_chain(store, default)?;
    let catalog = ctx.catalog("datafusion").expect("default catalog exists");
    for table in store.derived_tables(None) {
        let provider = table_provider(&ctx, store, "", &table).await?;
        ctx.register_table(table.as_str(), provider)?;
    }
    for chain in &store.manifest().chain_names() {
        let chain_schema = Arc::new(MemorySchemaProvider::new());
        let mut tables = store.chain(chain).map(|m| m.table_names()).unwrap_or_default();
        tables.extend(store.manifest().imports.get(chain).into_iter().flatten().map(|i| i.table.clone()));
        tables.extend(store.derived_tables(Some(chain)));
        for table in tables {
            let provider = table_provider(&ctx, store, chain, &table).await?;
            chain_schema.register_table(table.clone(), provider.clone())?;
            if default.as_deref() == Some(chain.as_str()) {
                ctx.register_table(table.as_str(), provider)?;
            }
        }
        catalog.register_schema(chain, chain_schema)?;
    }
    Ok(ctx)
}

async fn table_provider(ctx: &SessionContext, store: &Store, chain: &str, table: &str) -> Result<Arc<dyn TableProvider>> {
    let files = store.table_files(chain, table);
    let known = if chain.is_empty() { None } else { schema::chain_table(store.manifest().chain_kind(chain), table) };
    if files.is_empty() {
        let s: SchemaRef = known.ok_or_else(|| Error::NotFound(format!("table {chain}.{table} has no files")))?;
        return Ok(Arc::new(MemTable::try_new(s, vec![vec![]])?));
    }
    let urls = files.iter().map(|p| ListingTableUrl::parse(p.to_string_lossy())).collect::<Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options);
    let config = match known {
        Some(s) => config.with_schema(s),
        None => config.infer_schema(&ctx.state()).await?,
    };
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Runs one SQL statement and collects its result. A table that does not exist is named along
/// with the tables that do.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    match ctx.sql(sql).await {
        Ok(frame) => Ok(frame.collect().await?),
        Err(e) => {
            let text = e.to_string();
            if text.contains("table '") && text.contains("not found") {
                return Err(Error::NotFound(format!("{text}; the tables are {}", table_list(ctx))));
            }
            Err(e.into())
        }
    }
}

/// Every table a query can name: the default chain's tables as they are, the others with their
/// chain's schema (`bitcoin.outputs`).
fn table_list(ctx: &SessionContext) -> String {
    let Some(catalog) = ctx.catalog("datafusion") else { return String::from("(none)") };
    let mut schemas = catalog.schema_names();
    schemas.sort_by_key(|s| (s != "public", s.clone()));
    let mut names = Vec::new();
    for schema in schemas {
        if schema == "information_schema" {
            continue;
        }
        let Some(provider) = catalog.schema(&schema) else { continue };
        let mut tables = provider.table_names();
        tables.sort();
        let prefix = if schema == "public" { String::new() } else { format!("{schema}.") };
        names.extend(tables.into_iter().map(|t| format!("{prefix}{t}")));
    }
    if names.is_empty() {
        String::from("(none)")
    } else {
        names.join(", ")
    }
}
