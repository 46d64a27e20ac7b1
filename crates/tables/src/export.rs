//! Exports of stored tables to CSV, JSON lines or Parquet, chunk by chunk (memory stays bounded
//! by one chunk).

use crate::format::{lists_to_strings, write_results, OutputFormat};
use crate::{Error, Result, Store};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// File formats of `tracehound export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV with a header; list columns joined with `,`.
    Csv,
    /// JSON lines, one object per row.
    Json,
    /// One Parquet file.
    Parquet,
}

/// Reads every batch of one committed chunk file.
pub fn read_chunk_file(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?.build().map_err(|e| Error::parquet(path, e))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| Error::parquet(path, e))
}

/// Exports `table` of `chain` to `out` (`-` for standard output) and returns the number of rows.
pub fn export_table(store: &Store, chain: &str, table: &str, format: ExportFormat, out: &Path) -> Result<u64> {
    let files = store.table_files(chain, table);
    if files.is_empty() {
        let known = store.chain(chain).map(|c| c.table_names().into_iter().collect::<Vec<_>>().join(", ")).unwrap_or_default();
        return Err(Error::NotFound(format!("no table {table:?} stored for chain {chain:?} (tables: {known})")));
    }
    let mut sink: Box<dyn Write + Send> = if out == Path::new("-") {
        Box::new(BufWriter::new(std::io::stdout()))
    } else {
        Box::new(BufWriter::new(File::create(out).map_err(|e| Error::io(out, e))?))
    };
    let mut rows = 0u64;
    match format {
        ExportFormat::Parquet => {
            let first = read_chunk_file(&files[0])?;
            let schema = first.first().map(|b| b.schema()).expect("chunk files hold a schema batch");
            let mut w = ArrowWriter::try_new(sink, schema, None).map_err(|e| Error::parquet(out, e))?;
            for (i, f) in files.iter().enumerate() {
                let batches = if i == 0 { first.clone() } else { read_chunk_file(f)? };
                for b in &batches {
                    rows += b.num_rows() as u64;
                    w.write(b).map_err(|e| Error::parquet(out, e))?;
                }
            }
            w.close().map_err(|e| Error::parquet(out, e))?;
            return Ok(rows);
        }
        ExportFormat::Csv | ExportFormat::Json => {
            let fmt = if format == ExportFormat::Csv { OutputFormat::Csv } else { OutputFormat::Json };
            let mut header_written = false;
            let mut schema = None;
            for f in &files {
                let all = read_chunk_file(f)?;
                schema = schema.or_else(|| all.first().map(|b| b.schema()));
                let batches: Vec<RecordBatch> = all.into_iter().filter(|b| b.num_rows() > 0).collect();
                if batches.is_empty() {
                    continue;
                }
                rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
                if fmt == OutputFormat::Csv && header_written {
                    // One header for the whole file.
                    let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(false).build(&mut sink);
                    for b in &batches {
                        w.write(&lists_to_strings(b)?).map_err(|e| Error::Query(e.into()))?;
                    }
                } else {
                    write_results(&batches, fmt, &mut sink)?;
                    header_written = true;
                }
            }
            // A table with no rows still gets its header.
            if fmt == OutputFormat::Csv && !header_written {
                if let Some(schema) = schema {
                    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    writeln!(sink, "{}", names.join(",")).map_err(|e| Error::io(out, e))?;
                }
            }
        }
    }
    sink.flush().map_err(|e| Error::io(out, e))?;
    Ok(rows)
}
