//! Result formatting shared by SQL and exports: query results as an aligned table, CSV or JSON
//! lines, and list columns flattened for CSV.

use crate::{Error, Result};
use datafusion::arrow::array::{Array, ArrayRef, ListArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;

/// How query results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header row (lists joined with `,`).
    Csv,
    /// One JSON object per row (JSON lines).
    Json,
}

/// Writes query results to `out` in `format`.
pub fn write_results(batches: &[RecordBatch], format: OutputFormat, out: &mut dyn std::io::Write) -> Result<()> {
    use datafusion::arrow::{csv, json, util::pretty};
    let io = |e: std::io::Error| Error::Io { path: "<output>".into(), source: e };
    match format {
        OutputFormat::Table => {
            let text = pretty::pretty_format_batches(batches).map_err(|e| Error::Query(e.into()))?;
            writeln!(out, "{text}").map_err(io)?;
        }
        OutputFormat::Csv => {
            let mut w = csv::WriterBuilder::new().with_header(true).build(out);
            for b in batches {
                w.write(&lists_to_strings(b)?).map_err(|e| Error::Query(e.into()))?;
            }
        }
        OutputFormat::Json => {
            let mut w = json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b).map_err(|e| Error::Query(e.into()))?;
            }
            w.finish().map_err(|e| Error::Query(e.into()))?;
        }
    }
    Ok(())
}

/// Replaces list columns by their items joined with `,` (CSV has no lists).
pub fn lists_to_strings(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| matches!(f.data_type(), DataType::List(_))) {
        return Ok(batch.clone());
    }
    let mut fields = vec![];
    let mut columns: Vec<ArrayRef> = vec![];
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
        if let DataType::List(_) = field.data_type() {
            let list = col.as_any().downcast_ref::<ListArray>().expect("list column");
            let mut b = StringBuilder::new();
            for i in 0..list.len() {
                if list.is_null(i) {
                    b.append_null();
                    continue;
                }
                let item = list.value(i);
                let strings = datafusion::arrow::compute::cast(&item, &DataType::Utf8).map_err(|e| Error::Query(e.into()))?;
                let strings = strings.as_any().downcast_ref::<datafusion::arrow::array::StringArray>().expect("utf8");
                let joined: Vec<&str> = (0..strings.len()).map(|j| strings.value(j)).collect();
                b.append_value(joined.join(","));
            }
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(b.finish()));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(col.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| Error::Query(e.into()))
}
