"""Command-line latency: ``semcurate --help``, ``tree list`` and ``cluster --list`` (issue 11, case 11).

Builds a small database with the Python API (one sub-category tree of three
images, entered row by row: no corpus, no features), then runs each command
``--runs`` times as a user would (a fresh ``python -m semcurate`` process) and
keeps the median wall time. Prints a table and writes JSON to
``bench/results/cli.json`` (or ``--out``) with the targets and the load
averages before and after: the machine may be shared, and a run above ~1.5 on
two cores competes for them.

Targets (issue 11): ``--help`` < 0.3 s (the database layer and Alembic are not
imported), ``tree list`` < 0.6 s (no Alembic on an up-to-date database).
``cluster --list`` has no target; it is measured because it imports the
clustering stage's scientific stack.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_load import wait_for_quiet

HERE = Path(__file__).resolve().parent
#: Seconds each command should stay under; None: measured only.
TARGETS_S = {"--help": 0.3, "tree list": 0.6, "cluster --list": None}


def small_database(path: Path) -> None:
    """A database at ``path`` holding one tree (category Fibres, three images) and nothing else."""
    from semcurate.db import Image, TreeMemberRow, TreeNodeRow, TreeRow, open_database

    sessions = open_database(str(path))
    md5s = [f"{index:032x}" for index in range(3)]
    with sessions.begin() as session:
        session.add_all(
            Image(md5=md5, source_format="tif", jpg_md5=f"{index + 100:032x}", width=8, height=8, mode="L", phash="0")
            for index, md5 in enumerate(md5s)
        )
        tree = TreeRow(
            feature_set="classic",
            method="ward",
            labels_dataset="SEM_Dataset",
            depth=1,
            rule="silhouette",
            parameters="{}",
            n_images=3,
            n_labelled=3,
        )
        session.add(tree)
        session.flush()
        root = TreeNodeRow(tree_id=tree.id, path="Fibres", depth=1, position=0, category="Fibres", size=3)
        session.add(root)
        session.flush()
        session.add_all(TreeMemberRow(node_id=root.id, image_md5=md5, assigned_by="label") for md5 in md5s)
    sessions.kw["bind"].dispose()


def time_command(args: list[str], runs: int) -> dict:
    """Median and every wall time (s) of ``python -m semcurate ARGS`` over ``runs`` fresh processes."""
    seconds, statuses = [], set()
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "semcurate", *args], capture_output=True, check=False)
        seconds.append(time.perf_counter() - start)
        statuses.add(done.returncode)
    return {"median_s": statistics.median(seconds), "runs_s": seconds, "exit_status": sorted(statuses)}


def main() -> None:
    """Parse the options, time the commands, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cli.json", help="JSON results file.")
    parser.add_argument("--runs", type=int, default=5, help="Runs per command; the median is reported.")
    parser.add_argument(
        "--quiet-load", type=float, default=1.5, help="Wait (up to 3 min) for a 1-minute load average below this."
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.db"
        small_database(database)
        commands = {
            "--help": ["--help"],
            "tree list": ["tree", "list", "--db", str(database)],
            "cluster --list": ["cluster", "--list", "--db", str(database)],
        }
        wait_for_quiet(options.quiet_load, max_wait_s=180.0)
        load_before = os.getloadavg()
        results = {name: time_command(args, options.runs) for name, args in commands.items()}
        load_after = os.getloadavg()

    print(f"{'command':<16} {'median s':>9} {'target s':>9}  met")
    for name, result in results.items():
        target = TARGETS_S[name]
        met = "-" if target is None else "yes" if result["median_s"] < target else "no"
        print(f"{name:<16} {result['median_s']:>9.3f} {target if target else '':>9}  {met}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)")

    options.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "commands": {
            name: {**result, "target_s": TARGETS_S[name], "args": commands[name][:2]}
            for name, result in results.items()
        },
        "runs": options.runs,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    options.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"written {options.out}")


if __name__ == "__main__":
    main()
