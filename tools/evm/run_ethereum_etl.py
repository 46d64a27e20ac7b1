"""Runs the `ethereumetl` command (PyPI ethereum-etl 2.4.2) on Python 3.11+.

ethereum-etl pins parsimonious 0.8.1, which imports `inspect.getargspec`, removed in Python 3.11;
parsimonious only reads `.args` of the result, which `getfullargspec` also has.
Usage: python3 tools/evm/run_ethereum_etl.py export_blocks_and_transactions -s 0 -e 10 -p URL ...
(Not named ethereumetl.py: the script would shadow the package it imports.)
"""
import inspect
import sys

if not hasattr(inspect, "getargspec"):
    inspect.getargspec = inspect.getfullargspec

from ethereumetl.cli import cli  # noqa: E402

sys.argv[0] = "ethereumetl"
cli()
