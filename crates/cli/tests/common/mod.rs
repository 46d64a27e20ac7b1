//! What the CLI tests share: running the `tracehound` binary on a data directory and reading
//! what it prints.
#![allow(dead_code)] // each test file uses its own part

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehound"))
}

/// `tracehound --data-dir DATA ARGS…`, whatever its exit status.
pub fn run(data: &Path, args: &[&str]) -> Output {
    bin().arg("--data-dir").arg(data).args(args).output().unwrap()
}

/// Its standard output, asserting it succeeded.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(out.status.success(), "tracehound {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Its standard output as JSON.
pub fn json(data: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(data, args)).unwrap()
}

/// An amount as JSON writes it (a decimal string, or a number).
pub fn n(v: &Value) -> u128 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(x) => x.as_u64().unwrap() as u128,
        _ => panic!("not an amount: {v}"),
    }
}

/// The rows of a SQL query, as JSON objects.
pub fn sql_rows(data: &Path, sql: &str) -> Vec<Value> {
    let out = ok(data, &["sql", sql, "--format", "json"]);
    out.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}
