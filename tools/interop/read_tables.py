"""Reads tracehound's Parquet tables with DuckDB and with Polars, as their users would, and prints
one JSON object of figures per reader. `crates/cli/tests/cli.rs` compares them with tracehound's
own SQL answers.

Usage: python3 tools/interop/read_tables.py <data-dir>/chains/<chain>
"""
import glob
import json
import os
import sys

import duckdb
import polars as pl

chain = sys.argv[1]


def files(table):
    found = sorted(glob.glob(os.path.join(chain, table, "*.parquet")))
    if not found:
        sys.exit(f"no Parquet files under {chain}/{table}")
    return found


out = {}
d = lambda sql: duckdb.sql(sql).fetchall()[0]
out["duckdb"] = {
    "blocks": d(f"SELECT count(*) FROM read_parquet({files('blocks')!r})")[0],
    "transactions": d(f"SELECT count(*) FROM read_parquet({files('transactions')!r})")[0],
    "fees": int(d(f"SELECT sum(fee) FROM read_parquet({files('transactions')!r})")[0]),
    "inputs": d(f"SELECT count(*) FROM read_parquet({files('inputs')!r})")[0],
    "output_value": int(d(f"SELECT sum(value) FROM read_parquet({files('outputs')!r})")[0]),
    "addresses": d(f"SELECT count(DISTINCT a) FROM (SELECT unnest(addresses) AS a FROM read_parquet({files('outputs')!r}))")[0],
}
outputs = pl.read_parquet(files("outputs"))
out["polars"] = {
    "blocks": pl.read_parquet(files("blocks")).height,
    "transactions": pl.read_parquet(files("transactions")).height,
    "fees": int(pl.read_parquet(files("transactions"))["fee"].sum()),
    "inputs": pl.read_parquet(files("inputs")).height,
    "output_value": int(outputs["value"].sum()),
    "addresses": outputs["addresses"].explode().drop_nulls().n_unique(),
}
print(json.dumps(out))
