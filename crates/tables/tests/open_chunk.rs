//! A chunk written batch by batch through `Store::open_chunk`: invisible until committed, the
//! same rows as a chunk committed whole, and its files deleted when a crash leaves it open.

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracehound_tables::Store;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("block_number", DataType::Int64, false), Field::new("hash", DataType::Utf8, false)]))
}

fn rows(from: i64, to: i64) -> RecordBatch {
    let numbers: Vec<i64> = (from..to).collect();
    let hashes: Vec<String> = numbers.iter().map(|n| format!("{n:064x}")).collect();
    RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(numbers)), Arc::new(StringArray::from(hashes))]).unwrap()
}

fn read_all(store: &Store, table: &str) -> Vec<RecordBatch> {
    let mut out = vec![];
    for path in store.table_files("btc", table) {
        let file = std::fs::File::open(path).unwrap();
        out.extend(ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(Result::unwrap));
    }
    out
}

fn numbers(batches: &[RecordBatch]) -> Vec<i64> {
    batches.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()).collect()
}

#[test]
fn a_chunk_written_in_batches_equals_one_committed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(dir.path()).unwrap();
    let tables = [("a", schema()), ("b", schema())];
    let mut chunk = store.open_chunk("btc", 0, &tables).unwrap();
    // Nothing is visible while the chunk is open.
    chunk.write(0, &rows(0, 100_000)).unwrap();
    chunk.write(1, &rows(0, 10)).unwrap();
    chunk.write(0, &rows(100_000, 200_001)).unwrap();
    assert!(store.chain("btc").is_none());
    assert!(store.table_files("btc", "a").is_empty());
    store.commit_open_chunk(chunk, 9, "tip", BTreeMap::new()).unwrap();

    let whole_dir = tempfile::tempdir().unwrap();
    let mut whole = Store::open_for_write(whole_dir.path()).unwrap();
    whole.commit_chunk("btc", 0, 9, "tip", &[("a", vec![rows(0, 200_001)]), ("b", vec![rows(0, 10)])], BTreeMap::new()).unwrap();

    for table in ["a", "b"] {
        assert_eq!(numbers(&read_all(&store, table)), numbers(&read_all(&whole, table)), "table {table}");
        let (rows, _) = store.chain("btc").unwrap().table_totals(table);
        assert_eq!(rows, if table == "a" { 200_001 } else { 10 });
    }
    // More than one row group: a writer never holds a whole chunk.
    let file = std::fs::File::open(&store.table_files("btc", "a")[0]).unwrap();
    assert!(ParquetRecordBatchReaderBuilder::try_new(file).unwrap().metadata().num_row_groups() > 1);
    // The next chunk must follow the tip.
    let early = store.open_chunk("btc", 5, &tables).unwrap();
    let err = store.commit_open_chunk(early, 20, "x", BTreeMap::new()).unwrap_err().to_string();
    assert!(err.contains("does not follow the committed tip"), "{err}");
}

#[test]
fn a_chunk_left_open_by_a_crash_is_invisible_and_its_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open_for_write(dir.path()).unwrap();
        store.commit_chunk("btc", 0, 9, "h9", &[("a", vec![rows(0, 10)])], BTreeMap::new()).unwrap();
        let mut chunk = store.open_chunk("btc", 10, &[("a", schema())]).unwrap();
        chunk.write(0, &rows(10, 20)).unwrap();
        std::mem::forget(chunk); // as if the process died here
    }
    let open_files = || std::fs::read_dir(dir.path().join("chains/btc/a")).unwrap().count();
    assert_eq!(open_files(), 2, "the committed file and the open one");
    let store = Store::open_for_write(dir.path()).unwrap();
    assert_eq!(numbers(&read_all(&store, "a")), (0..10).collect::<Vec<_>>());
    assert_eq!(open_files(), 1, "the open chunk's file is deleted");
}

#[test]
fn a_closed_chunk_synced_on_another_thread_is_invisible_until_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(dir.path()).unwrap();
    store.commit_chunk("btc", 0, 9, "h9", &[("a", vec![rows(0, 10)])], BTreeMap::new()).unwrap();
    let mut chunk = store.open_chunk("btc", 10, &[("a", schema())]).unwrap();
    chunk.write(0, &rows(10, 1000)).unwrap();
    let closed = chunk.close().unwrap();
    // The next chunk is written while this one is synced.
    let synced = std::thread::spawn(move || closed.sync().unwrap());
    let mut next = store.open_chunk("btc", 20, &[("a", schema())]).unwrap();
    next.write(0, &rows(1000, 1500)).unwrap();
    let synced = synced.join().unwrap();
    let committed = |store: &Store| store.chain("btc").unwrap().table_totals("a").0;
    assert_eq!(committed(&store), 10, "a synced chunk is not visible before its commit");
    let next = next.close().unwrap().sync().unwrap();
    // Chunks are committed in order: the second cannot go first.
    let err = store.commit_synced_chunk(next, 29, "h29", BTreeMap::new()).unwrap_err().to_string();
    assert!(err.contains("does not follow the committed tip"), "{err}");
    assert_eq!(committed(&store), 10, "a refused commit records nothing");
    store.commit_synced_chunk(synced, 19, "h19", BTreeMap::new()).unwrap();
    assert_eq!(numbers(&read_all(&store, "a")), (0..1000).collect::<Vec<_>>());
    let (rows, bytes) = store.chain("btc").unwrap().table_totals("a");
    assert_eq!(rows, 1000);
    let on_disk: u64 = store.table_files("btc", "a").iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert_eq!(bytes, on_disk, "the manifest records the files' sizes");
}

#[test]
fn unprunable_columns_are_compressed_without_statistics() {
    use datafusion::arrow::array::{ListBuilder, StringBuilder, UInt32Array, UInt64Array};
    use datafusion::parquet::basic::Compression;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_for_write(dir.path()).unwrap();
    let schema = tracehound_tables::schema::outputs();
    let n = 100;
    let hex = |i: usize| format!("{i:064x}");
    let mut addresses = ListBuilder::new(StringBuilder::new());
    for i in 0..n {
        addresses.values().append_value(format!("bcrt1q{i}"));
        addresses.append(true);
    }
    let columns: Vec<datafusion::arrow::array::ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> datafusion::arrow::array::ArrayRef {
            match f.name().as_str() {
                "transaction_hash" | "script_hex" => Arc::new(StringArray::from((0..n).map(hex).collect::<Vec<_>>())),
                "type" => Arc::new(StringArray::from(vec!["witness_v0_keyhash"; n])),
                "addresses" => Arc::new(addresses.finish()),
                "block_timestamp" => Arc::new(Int64Array::from(vec![1_700_000_000; n])),
                "index" | "required_signatures" => Arc::new(UInt32Array::from(vec![1; n])),
                _ => Arc::new(UInt64Array::from((0..n as u64).collect::<Vec<_>>())),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    store.commit_chunk("btc", 0, 0, "tip", &[("outputs", vec![batch])], BTreeMap::new()).unwrap();
    let file = std::fs::File::open(&store.table_files("btc", "outputs")[0]).unwrap();
    let meta = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().metadata().clone();
    let group = meta.row_group(0);
    let column = |path: &str| group.columns().iter().find(|c| c.column_path().string() == path).unwrap_or_else(|| panic!("no column {path}"));
    for path in ["transaction_hash", "script_hex", "addresses.list.item"] {
        assert!(column(path).statistics().is_none_or(|s| s.min_bytes_opt().is_none()), "{path} has min/max statistics");
        assert_eq!(column(path).compression(), Compression::LZ4_RAW, "{path}");
    }
    for path in ["block_number", "value", "type"] {
        assert!(column(path).statistics().and_then(|s| s.min_bytes_opt()).is_some(), "{path} lost its statistics");
    }
}
