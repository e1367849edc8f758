"""The hardening campaign of issue 11 as a table: cases tried, cases held, tracebacks, rows lost or duplicated.

Each case of the campaign is a test in ``tests/test_faults_cli.py``,
``tests/test_faults_features.py`` and ``tests/test_faults_ingest.py`` (slow ones
included): it reproduces the fault in a temp dir and asserts the one
``error:`` line, the exit status, that no ``Traceback`` was printed, and that the
database, flat store and feature store equal a clean run afterwards.  This
script runs them with pytest's JUnit XML report, so a case "held" exactly
when its test passed; a failed test counts as not held, and its message is
searched for ``Traceback``, ``duplicated`` and ``lost`` to fill the columns.

Prints a table per file and writes ``bench/results/faults.json`` (or ``--out``).
Cases skipped (e.g. a tmpfs that cannot be mounted) are reported as skipped,
not as held.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAMPAIGN = ("tests/test_faults_cli.py", "tests/test_faults_features.py", "tests/test_faults_ingest.py")


def run_campaign(report: Path) -> float:
    """Run every campaign test (slow ones too) with a JUnit report at ``report``; return the wall time in s."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *CAMPAIGN],
        cwd=ROOT,
        check=False,
    )
    return time.perf_counter() - started


def tally(report: Path) -> dict[str, dict]:
    """Per test file: cases tried, held, skipped, and failures that mention a traceback, lost or duplicated rows."""
    by_file: dict[str, dict] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = case.get("classname", "").rsplit(".", 1)[-1]
        row = by_file.setdefault(
            name, {"tried": 0, "held": 0, "skipped": 0, "tracebacks": 0, "lost_or_duplicated": 0, "failed": []}
        )
        problems = case.findall("failure") + case.findall("error")
        if case.find("skipped") is not None:
            row["skipped"] += 1
            continue
        row["tried"] += 1
        if not problems:
            row["held"] += 1
            continue
        text = " ".join((problem.get("message") or "") + (problem.text or "") for problem in problems)
        row["tracebacks"] += "Traceback" in text
        row["lost_or_duplicated"] += any(word in text for word in ("duplicat", "lost", "orphan"))
        row["failed"].append(case.get("name"))
    return by_file


def main() -> None:
    """Run the campaign, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "faults.json", help="JSON result file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "junit.xml"
        seconds = run_campaign(report)
        by_file = tally(report)
    totals = {
        key: sum(row[key] for row in by_file.values())
        for key in ("tried", "held", "skipped", "tracebacks", "lost_or_duplicated")
    }
    print(f"\n{'campaign file':<24} {'tried':>6} {'held':>6} {'skipped':>8} {'tracebacks':>11} {'lost/dup':>9}")
    for name, row in [*by_file.items(), ("total", totals)]:
        print(
            f"{name:<24} {row['tried']:>6} {row['held']:>6} {row['skipped']:>8} {row['tracebacks']:>11} "
            f"{row['lost_or_duplicated']:>9}"
        )
    result = {
        "benchmark": "faults",
        "target": "every case held: 0 tracebacks, 0 rows lost or duplicated",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(seconds, 1),
        "per_file": by_file,
        "total": totals,
        "target_met": totals["held"] == totals["tried"] and totals["tried"] > 0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
