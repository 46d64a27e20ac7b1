#!/usr/bin/env bash
# Installs what the tests need besides the Rust toolchain: a real anvil node and solc-js (npm,
# pinned in tools/evm/package-lock.json) for the EVM tests, ethereum-etl (PyPI) for the
# differential test against it, DuckDB and Polars (PyPI) to check that they read the tables, and
# schemathesis (PyPI, in a virtual environment of its own: its dependencies are newer than
# ethereum-etl's) for the property-based test of the server's OpenAPI description.
# Idempotent; takes a few seconds when already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in node npm python3; do
  command -v "$tool" >/dev/null || { echo "$tool is required for the EVM tests (Debian: apt-get install nodejs npm python3-pip)"; exit 1; }
done
npm install --prefix tools/evm --no-audit --no-fund --loglevel=error
tools/evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --version | head -1
python3 -c 'import ethereumetl' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check ethereum-etl==2.4.2
python3 tools/evm/run_ethereum_etl.py --version
python3 -c 'import duckdb, polars' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check duckdb==2.0.1 polars==2.1.0
python3 -c 'import duckdb, polars; print("duckdb", duckdb.__version__, "polars", polars.__version__)'
[ -x tools/schemathesis/venv/bin/schemathesis ] || {
  python3 -m venv tools/schemathesis/venv
  tools/schemathesis/venv/bin/pip install --quiet --disable-pip-version-check schemathesis==4.32.5
}
tools/schemathesis/venv/bin/schemathesis --version
