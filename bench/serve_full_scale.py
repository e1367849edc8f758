"""The web browser over the finished 52,682-image run of ``bench/full_scale.py`` (issue 17, point 3).

``python bench/serve_full_scale.py --run DIR`` starts ``semcurate serve`` on
the run's database and store (``DIR/semcurate.db``, ``DIR/store``), as a user
would, and times over HTTP what a researcher does first:

- start-up: a fresh process until its first answered request;
- the newest tree's page (every node with its thumbnail strip), first visit
  and then warm (the median of ``--runs``);
- the page of the tree's largest node with its first 100 thumbnails, first
  visit (thumbnails made from the store's files and cached in
  ``store/thumbs/``) and then warm;
- a similar-image query (k = 12) in the tree's own feature set and in the
  descriptor it was reduced from, the first one (the rows are loaded and
  standardised) and then warm over ``--queries`` images drawn at random;
- the admin and quality pages, which count over every image.

The targets are ``bench/serve.py``'s, measured there on a synthetic store of
the same size; here the store, the tree and the feature sets are the ones the
pipeline made.  The server's CPU seconds are read from ``/proc`` beside the
wall times, and the load average before and after is recorded.  Prints a
table and writes ``bench/results/serve_full_scale.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sqlite3
import statistics
from pathlib import Path

from machine_load import wait_for_quiet
from serve import TARGETS, cpu_seconds, start_server, timed

HERE = Path(__file__).resolve().parent
#: How many thumbnails a node page shows first (the browser's ``PER_PAGE``).
FIRST_PAGE = 100


def newest_tree(database: Path) -> dict:
    """The newest tree of the SQLite file ``database``: its id, feature set, images and largest node."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        try:
            newest = connection.execute("SELECT id, feature_set, n_images FROM trees ORDER BY id DESC LIMIT 1")
            newest = newest.fetchone()
        except sqlite3.DatabaseError:  # no schema yet, or not a database
            newest = None
        if newest is None:
            raise SystemExit(f"{database} holds no tree yet: let bench/full_scale.py finish the run first")
        tree_id, feature_set, n_images = newest
        node_id, size, path = connection.execute(
            "SELECT id, size, path FROM tree_nodes WHERE tree_id = ? ORDER BY size DESC, id LIMIT 1", (tree_id,)
        ).fetchone()
        (nodes,) = connection.execute("SELECT count(*) FROM tree_nodes WHERE tree_id = ?", (tree_id,)).fetchone()
        source = connection.execute("SELECT parent FROM feature_sets WHERE name = ?", (feature_set,)).fetchone()
    return {
        "id": tree_id,
        "feature_set": feature_set,
        "source_feature_set": None if source is None else source[0],
        "images": n_images,
        "nodes": nodes,
        "largest_node": {"id": node_id, "size": size, "path": path},
    }


def main() -> None:
    """Serve the run, measure, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the output folder of bench/full_scale.py")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve_full_scale.json", help="JSON file")
    parser.add_argument("--runs", type=int, default=5, help="warm visits of each page; the median is reported")
    parser.add_argument("--queries", type=int, default=20, help="similar-image queries per feature set")
    parser.add_argument("--quiet-load", type=float, default=1.5, help="wait (up to 3 min) for a load below this")
    options = parser.parse_args()
    run = options.run.resolve()
    database, store = run / "semcurate.db", run / "store"
    if not database.is_file() or not store.is_dir():
        raise SystemExit(f"{run} holds no finished run (semcurate.db and store/); run bench/full_scale.py first")

    import httpx

    tree = newest_tree(database)
    big = tree["largest_node"]["id"]
    wait_for_quiet(options.quiet_load, max_wait_s=180.0)
    load_before = os.getloadavg()
    process, base, startup_s, startup_cpu = start_server(f"sqlite:///{database}", store)
    client = httpx.Client(base_url=base, timeout=300)
    measured: dict[str, float] = {"semcurate serve start-up, s": startup_s}
    cpu: dict[str, float] = {"start-up": startup_cpu}

    def visit(name: str, call, runs: int = 1) -> list[float]:
        """Time ``call`` ``runs`` times; the server's CPU seconds per call go into ``cpu``."""
        before = cpu_seconds(process.pid)
        seconds = timed(call, runs)
        cpu[name] = (cpu_seconds(process.pid) - before) / runs
        return seconds

    def tree_page() -> None:
        client.get(f"/trees/{tree['id']}").raise_for_status()

    shown: list[str] = []  # the md5s of the thumbnails on the largest node's page

    def node_page() -> None:
        html = client.get(f"/nodes/{big}")
        html.raise_for_status()
        shown[:] = [part.split(".webp", 1)[0] for part in html.text.split('src="/thumbs/')[1:]]
        for md5 in shown[:FIRST_PAGE]:
            client.get(f"/thumbs/{md5}.webp").raise_for_status()

    try:
        measured["tree page, first visit, ms"] = visit("tree page, first", tree_page)[0] * 1000
        measured["tree page, ms"] = statistics.median(visit("tree page", tree_page, options.runs)) * 1000
        measured["largest node page + 100 thumbnails, first visit, ms"] = (
            visit("largest node, first", node_page)[0] * 1000
        )
        measured["node page + 100 thumbnails (warm), ms"] = (
            statistics.median(visit("largest node", node_page, options.runs)) * 1000
        )
        md5s = [member["md5"] for member in client.get(f"/api/nodes/{big}?per_page=500").json()["gallery"]]
        queries = random.Random(0).sample(md5s, min(options.queries, len(md5s)))
        similar = {}
        for feature_set in filter(None, (tree["feature_set"], tree["source_feature_set"])):

            def query(md5: str, feature_set: str = feature_set) -> None:
                client.get(f"/api/images/{md5}/similar", params={"feature_set": feature_set}).raise_for_status()

            first = timed(lambda: query(queries[0]), 1)[0]
            warm = [timed(lambda md5=md5: query(md5), 1)[0] for md5 in queries[1:]]
            similar[feature_set] = {
                "first_ms": round(first * 1000, 1),
                "warm_median_ms": statistics.median(warm) * 1000,
            }
        measured["similar k=12 over HTTP, tree's feature set, ms"] = similar[tree["feature_set"]]["warm_median_ms"]
        for page in ("admin", "quality"):
            measured[f"{page} page, ms"] = (
                visit(f"{page} page", lambda page=page: client.get(f"/{page}").raise_for_status())[0] * 1000
            )
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
    load_after = os.getloadavg()

    met = {}
    print(f"{'measure':<55} {'value':>9} {'target':>9}  met")
    for key, value in measured.items():
        sign, target = TARGETS.get(key, (None, None))
        met[key] = None if sign is None else (value < target if sign == "<" else value >= target)
        goal = "" if sign is None else sign + format(target, "g")
        print(f"{key:<55} {value:>9.1f} {goal:>9}  {'' if met[key] is None else 'yes' if met[key] else 'no'}")
    for feature_set, times in similar.items():
        print(f"similar in {feature_set}: first {times['first_ms']:.0f} ms, warm {times['warm_median_ms']:.1f} ms")
    print(
        f"{len(shown)} thumbnails on the largest node's page; load average {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    record = {
        "benchmark": "serve_full_scale",
        "issue": 17,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run": str(run),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "tree": tree,
        "thumbnails_on_largest_node_page": len(shown),
        "measured": {key: round(value, 1) for key, value in measured.items()},
        "targets": {key: f"{TARGETS[key][0]} {TARGETS[key][1]:g}" for key in measured if key in TARGETS},
        "met": met,
        "similar": similar,
        "server_cpu_s": {key: round(value, 3) for key, value in cpu.items()},
        "similar_queries": len(queries),
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"written {options.out}")


if __name__ == "__main__":
    main()
