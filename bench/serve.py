"""The web browser at the size of the thesis' 1u-2u subset (issue 14): pages, thumbnails, similar images, start-up.

Builds a synthetic database of 52,682 images (rows entered with the Python
API: no corpus, no ingest) holding one tree of 36 categories, one of them of
10,000 images, with feature set ``synthetic`` (52,682 × 2,048 float32, drawn
around 36 centres) and the tree's own 18-d set, plus real store files for the
first gallery page: each image as the store keeps it, an uncompressed 8-bit
TIFF (2,048 × 1,536, a smooth relief with noise, as SEM instruments write
them) and its quality-95 JPG (``ingest.convert.encode_jpeg``).  Then, against
``semcurate serve`` run as its own process (as a user runs it) and fetched
over HTTP:

- node page of the 10,000-image node plus its first 100 thumbnails from a warm
  cache, fetched one after another (target < 200 ms),
- tree page with every node's strip (target < 300 ms),
- a similar-image query, k = 12 over 52,682 × 2,048, in this process (target
  < 50 ms; exact search, so recall@12 is 1 by construction and checked
  against a plain NumPy argsort over 20 queries), and over HTTP,
- thumbnail generation on one core (target ≥ 100 images/s): CPU seconds per
  thumbnail made from the store's files (the TIFF, as the cache picks it), and
  for JPG-only images (the quality-95 JPG, decoded at 1/8 scale),
- ``semcurate serve`` start-up: a fresh process until its first answered
  request (target < 2 s), with the CPU seconds it used by then.

The server's CPU seconds per page are read from ``/proc`` besides the wall
time, since the machine is shared; the load average before and after is
recorded.  Prints a table and writes ``bench/results/serve.json`` (or
``--out``) with the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_load import wait_for_quiet
from PIL import Image as PILImage

HERE = Path(__file__).resolve().parent
N_IMAGES, BIG_NODE, DIMENSION, CATEGORIES = 52_682, 10_000, 2_048, 36
TARGETS = {
    "node page + 100 thumbnails (warm), ms": ("<", 200.0),
    "tree page, ms": ("<", 300.0),
    "similar k=12 over 52,682 x 2,048, ms": ("<", 50.0),
    "thumbnails per second, one core": (">=", 100.0),
    "semcurate serve start-up, s": ("<", 2.0),
}


def md5_of(index: int) -> str:
    return f"{index:032x}"


def build(folder: Path) -> tuple[str, int]:
    """The synthetic database, feature store and store under ``folder``; returns (database URL, big node id)."""
    from sqlalchemy import insert

    from semcurate.db import FeatureSet, Image, IngestRun, TreeMemberRow, TreeNodeRow, TreeRow, open_database
    from semcurate.features.store import FeatureStore

    url = f"sqlite:///{folder / 'bench.db'}"
    sessions = open_database(url)
    rng = np.random.default_rng(0)
    sizes = [BIG_NODE] + [len(part) for part in np.array_split(np.arange(N_IMAGES - BIG_NODE), CATEGORIES - 1)]
    category_of = np.repeat(np.arange(CATEGORIES), sizes)
    md5s = [md5_of(index) for index in range(N_IMAGES)]
    centres = rng.normal(size=(CATEGORIES, DIMENSION)).astype(np.float32) * 3
    values = centres[category_of] + rng.normal(size=(N_IMAGES, DIMENSION)).astype(np.float32)
    codes = values[:, :18].copy()
    features = FeatureStore(folder / "features.h5")
    for name, rows in (("synthetic", values), ("synthetic.ae18", codes)):
        for start in range(0, N_IMAGES, 8192):
            features.append(name, md5s[start : start + 8192], rows[start : start + 8192])
    (folder / "store").mkdir()
    with sessions.begin() as session:
        session.add(IngestRun(source_root="(synthetic)", store=str(folder / "store")))
        for name, rows in (("synthetic", values), ("synthetic.ae18", codes)):
            session.add(
                FeatureSet(name=name, extractor="synthetic", weights="none", weights_digest="none", layer="none",
                           dimension=rows.shape[1], n_rows=N_IMAGES, store_path=str(folder / "features.h5"))
            )  # fmt: skip
        session.execute(
            insert(Image),
            [
                {"md5": md5, "source_format": "tif", "jpg_md5": md5[::-1], "jpg_only": False, "width": 2048,
                 "height": 1536, "mode": "L", "pages": 1, "phash": "0" * 16}
                for md5 in md5s
            ],
        )  # fmt: skip
        tree = TreeRow(feature_set="synthetic.ae18", method="ward", labels_dataset="SEM_Dataset", depth=3,
                       rule="gap", parameters="{}", n_images=N_IMAGES, n_labelled=N_IMAGES // 7)  # fmt: skip
        session.add(tree)
        session.flush()
        start, members, big = 0, [], None
        for category, size in enumerate(sizes):
            indices = np.arange(start, start + size)
            start += size
            root = TreeNodeRow(tree_id=tree.id, path=f"C{category}", depth=1, position=category,
                               category=f"C{category}", size=size, representative_md5=md5s[indices[0]])  # fmt: skip
            session.add(root)
            session.flush()
            big = big or root.id
            members += [(root.id, index) for index in indices]
            for number, part in enumerate(np.array_split(indices, 4), 1):
                child = TreeNodeRow(tree_id=tree.id, parent_id=root.id, path=f"C{category}.{number}", depth=2,
                                    position=number, category=f"C{category}", size=len(part),
                                    representative_md5=md5s[part[0]])  # fmt: skip
                session.add(child)
                session.flush()
                members += [(child.id, index) for index in part]
        session.execute(
            insert(TreeMemberRow),
            [
                {"node_id": node, "image_md5": md5s[index], "assigned_by": "label" if index % 7 == 0 else "classifier",
                 "probability": None if index % 7 == 0 else 0.8, "doubtful": False}
                for node, index in members
            ],
        )  # fmt: skip
    sessions.kw["bind"].dispose()
    return url, big


def relief(rng: np.random.Generator, width: int = 2048, height: int = 1536) -> np.ndarray:
    """A smooth random relief with noise, like an SEM frame, as 8-bit grey pixels."""
    coarse = rng.random((height // 32 + 2, width // 32 + 2))
    smooth = np.kron(coarse, np.ones((32, 32)))[:height, :width] * 150 + 50
    return np.clip(smooth + rng.normal(0, 8, (height, width)), 0, 255).astype(np.uint8)


def store_files(pixels: np.ndarray) -> tuple[bytes, bytes]:
    """The store's two files of one image: its uncompressed TIFF and the JPG ingest makes of it."""
    from semcurate.ingest.convert import encode_jpeg

    image = PILImage.fromarray(pixels)
    out = io.BytesIO()
    image.save(out, "TIFF")
    return out.getvalue(), encode_jpeg(image)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(url: str, store: Path) -> tuple[subprocess.Popen, str, float, float]:
    """``semcurate serve`` in a new process; returns it, its base URL, the seconds until ``/trees`` answered 200
    and the CPU seconds it had used by then."""
    import httpx

    port = free_port()
    begun = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "semcurate", "serve", "--db", url, "--store", str(store), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/trees", timeout=5).raise_for_status()
            break
        except httpx.TransportError:
            if process.poll() is not None:
                raise SystemExit("semcurate serve exited before answering") from None
            time.sleep(0.02)
    return process, f"http://127.0.0.1:{port}", time.perf_counter() - begun, cpu_seconds(process.pid)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed(call, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    """Build the synthetic store, measure, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve.json", help="JSON results file.")
    parser.add_argument("--runs", type=int, default=7, help="Timed runs of each page; the median is reported.")
    parser.add_argument(
        "--quiet-load", type=float, default=1.5, help="Wait (up to 3 min) for a 1-minute load average below this."
    )
    options = parser.parse_args()

    import httpx

    from semcurate.db import open_database
    from semcurate.web.browser import Browser
    from semcurate.web.thumbnails import ThumbnailCache, thumbnail_bytes

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        store = folder / "store"
        started = time.perf_counter()
        url, big = build(folder)
        print(f"synthetic store of {N_IMAGES} images built in {time.perf_counter() - started:.1f} s")
        process, base, _, _ = start_server(url, store)
        client = httpx.Client(base_url=base, timeout=60)
        try:
            first = client.get(f"/api/nodes/{big}").json()  # computes the gallery order (cold)
            page_md5s = [member["md5"] for member in first["gallery"]]
            rng = np.random.default_rng(1)
            files = [store_files(relief(rng)) for _ in range(20)]
            for number, md5 in enumerate(page_md5s):
                tiff, jpg = files[number % len(files)]
                (store / f"{md5}.tif").write_bytes(tiff)
                (store / f"{md5}.jpg").write_bytes(jpg)
            for md5 in page_md5s:  # warm the thumbnail cache
                assert client.get(f"/thumbs/{md5}.webp").status_code == 200
            tree_id = first["tree"]["id"]
            for node in walk(client.get(f"/api/trees/{tree_id}").json()["nodes"]):  # every node's strip order
                client.get(f"/api/nodes/{node['id']}?per_page=1").raise_for_status()
            print("cold node page, thumbnails and gallery orders done", flush=True)
            wait_for_quiet(options.quiet_load, max_wait_s=180.0)
            load_before = os.getloadavg()

            def node_page() -> None:
                html = client.get(f"/nodes/{big}")
                assert html.status_code == 200 and html.text.count('src="/thumbs/') >= 100
                for md5 in page_md5s:
                    assert client.get(f"/thumbs/{md5}.webp").status_code == 200

            cpu = cpu_seconds(process.pid)
            node_s = timed(node_page, options.runs)
            node_cpu = (cpu_seconds(process.pid) - cpu) / options.runs
            print("node page measured", flush=True)
            cpu = cpu_seconds(process.pid)
            tree_s = timed(lambda: client.get(f"/trees/{tree_id}").raise_for_status(), options.runs)
            tree_cpu = (cpu_seconds(process.pid) - cpu) / options.runs
            print("tree page measured", flush=True)
            queries = [md5_of(row) for row in np.random.default_rng(2).choice(N_IMAGES, 50, replace=False)]
            client.get(f"/api/images/{queries[0]}/similar?feature_set=synthetic").raise_for_status()  # loads the set
            http_similar_s = timed(lambda: client.get(f"/api/images/{queries[1]}/similar?feature_set=synthetic"), 5)
        finally:
            client.close()
            process.terminate()
            process.wait(timeout=10)

        neighbours = Browser(open_database(url, read_only=True), store).index("synthetic")
        similar_s = [timed(lambda md5=md5: neighbours.query(md5, 12), 1)[0] for md5 in queries]
        print("similar measured", flush=True)
        recalls = []
        for md5 in queries[:20]:
            row = neighbours.rows_[neighbours.row_of[md5]]
            exact = np.argsort(np.linalg.norm(neighbours.rows_ - row, axis=1), kind="stable")
            truth = {neighbours.md5s[i] for i in exact[:13] if neighbours.md5s[i] != md5}
            recalls.append(len(truth & {found.md5 for found in neighbours.query(md5, 12)}) / 12)

        cache = ThumbnailCache(store)
        made = page_md5s[: len(files)] * 5
        begun = time.process_time()
        for md5 in made:
            cache.make(md5)  # made, not cached: what a first visit costs
        thumbnails_per_s = len(made) / (time.process_time() - begun)
        begun = time.process_time()
        for _, jpg in files * 5:
            thumbnail_bytes(jpg)
        jpg_thumbnails_per_s = len(files) * 5 / (time.process_time() - begun)

        startup_s, startup_cpu = [], []
        for _ in range(3):
            process, _, seconds, cpu = start_server(url, store)
            process.terminate()
            process.wait(timeout=10)
            startup_s.append(seconds)
            startup_cpu.append(cpu)
        load_after = os.getloadavg()

    measured = {
        "node page + 100 thumbnails (warm), ms": statistics.median(node_s) * 1000,
        "tree page, ms": statistics.median(tree_s) * 1000,
        "similar k=12 over 52,682 x 2,048, ms": statistics.median(similar_s) * 1000,
        "thumbnails per second, one core": thumbnails_per_s,
        "semcurate serve start-up, s": statistics.median(startup_s),
    }
    print(f"{'measure':<40} {'value':>9} {'target':>9}  met")
    met = {}
    for key, value in measured.items():
        sign, target = TARGETS[key]
        met[key] = value < target if sign == "<" else value >= target
        print(f"{key:<40} {value:>9.1f} {sign + format(target, 'g'):>9}  {'yes' if met[key] else 'no'}")
    print(f"server CPU: node page + 100 thumbnails {node_cpu * 1000:.0f} ms, tree page {tree_cpu * 1000:.0f} ms; "
          f"start-up CPU {statistics.median(startup_cpu):.2f} s")  # fmt: skip
    print(f"thumbnails of JPG-only images (quality-95 JPG, 1/8-scale decode): {jpg_thumbnails_per_s:.1f} per s")
    print(f"recall@12 against exact argsort: {np.mean(recalls):.3f} (exact search); similar over HTTP "
          f"{statistics.median(http_similar_s) * 1000:.1f} ms")  # fmt: skip
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)")
    record = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "images": N_IMAGES,
        "big_node": BIG_NODE,
        "dimension": DIMENSION,
        "measured": {key: round(value, 2) for key, value in measured.items()},
        "targets": {key: f"{sign} {target:g}" for key, (sign, target) in TARGETS.items()},
        "met": met,
        "server_cpu_ms": {
            "node page + 100 thumbnails": round(node_cpu * 1000, 1),
            "tree page": round(tree_cpu * 1000, 1),
        },
        "startup_cpu_s": startup_cpu,
        "thumbnails_per_second_jpg_only": round(jpg_thumbnails_per_s, 1),
        "recall_at_12": float(np.mean(recalls)),
        "similar_over_http_ms": round(statistics.median(http_similar_s) * 1000, 2),
        "runs_s": {"node": node_s, "tree": tree_s, "startup": startup_s},
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"written {options.out}")


def walk(nodes: list[dict]):
    """Every node of a tree's JSON, depth first."""
    for node in nodes:
        yield node
        yield from walk(node["children"])


if __name__ == "__main__":
    main()
