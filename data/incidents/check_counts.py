#!/usr/bin/env python3
"""Independent check of the bundled incident registry's known answers.

Run from the repository root:  python3 data/incidents/check_counts.py

Reads data/incidents/dprk_incidents_extended.csv with the standard library only and prints
incidents and reported USD per year and attribution level, and per year in total. The Rust tests
(crates/report/tests/registry.rs) pin these numbers as constants; this script is how they were
computed, with the attribution rule written out a second time (not shared with the Rust code):

* attribution clauses: the text after every "Attribution:" or "Attribution upgraded:" up to the
  next ". " (or the end); without any clause, the note before "[extended]";
* a clause that starts with "researcher" / "suspected" is that level; otherwise the strongest
  party named: government (FBI, DOJ, police, government, joint statement) > sanctions_monitor
  (MSMT, UN Panel, S/2019/691) > company (Chainalysis, Elliptic, Mandiant) > researcher;
* the incident's level is the strongest over its clauses; "DISPUTED" in a clause marks it disputed.
"""
import collections
import csv
import re
import sys

LEVELS = ["government", "sanctions_monitor", "company", "researcher", "suspected"]
GOV = ["fbi", "doj", "police", "government", "joint statement", "joint release"]
MON = ["msmt", "un panel", "s/2019/691"]
COMPANY = ["chainalysis", "elliptic", "mandiant"]


def clause_level(c):
    t = c.strip().lower()
    if t.startswith("researcher"):
        return "researcher"
    if t.startswith("suspected"):
        return "suspected"
    for level, words in (("government", GOV), ("sanctions_monitor", MON), ("company", COMPANY)):
        if any(w in t for w in words):
            return level
    return "researcher"


def attribution(note):
    clauses = []
    for m in re.finditer(r"Attribution(?: upgraded)?:", note):
        rest = note[m.end():]
        end = rest.find(". ")
        clauses.append(rest if end < 0 else rest[:end])
    if not clauses:
        clauses = [note.split("[extended]")[0]]
    level = min((clause_level(c) for c in clauses), key=LEVELS.index)
    return level, any("DISPUTED" in c for c in clauses)


def main(path="data/incidents/dprk_incidents_extended.csv"):
    rows = list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    incidents = [r for r in rows if not r["id"].endswith("_aggregate")]
    per = collections.Counter()
    usd = collections.Counter()
    years = collections.Counter()
    year_usd = collections.Counter()
    disputed = []
    for r in incidents:
        level, dis = attribution(r["source_note"])
        y = r["date"][:4]
        per[(y, level)] += 1
        usd[(y, level)] += int(r["amount_usd"] or 0)
        years[y] += 1
        year_usd[y] += int(r["amount_usd"] or 0)
        if dis:
            disputed.append(r["id"])
    print(f"incidents {len(incidents)}, aggregates {len(rows) - len(incidents)}")
    for y in sorted(years):
        parts = ", ".join(f"{lv} {per[(y, lv)]} ${usd[(y, lv)]:,}" for lv in LEVELS if per[(y, lv)])
        print(f"{y}: {years[y]} incidents ${year_usd[y]:,} | {parts}")
    for lv in LEVELS:
        print(f"{lv}: {sum(v for (y, l), v in per.items() if l == lv)}")
    print("disputed:", ", ".join(sorted(disputed)))


if __name__ == "__main__":
    main(*sys.argv[1:])
