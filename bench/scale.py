"""Scale-bar reading: accuracy on a demo corpus, speed with 1 and 2 workers, OCR bindings, the sem-meta peer.

Targets (issue 3):

* on a 1,000-image demo corpus: ≥ 99 % correct value and unit, ≤ 0.1 % wrong
  scale, nm per pixel within 1 % of the truth where correct (shares of the
  images that carry a data bar);
* ≥ 8 images per second per core for hash + convert + scale reading together
  (ingest then ``scale``, each with the same number of workers; the 1-worker
  run is the baseline for the speed-up);
* OCR binding: one Tesseract API kept open (tesserocr) against pytesseract,
  both per crop and batched, on the same images;
* peer: PyPI ``sem-meta`` (``SEMOCR().RunOCR``) on the same TIFFs, run by
  ``bench/sem_meta_peer.py`` in its own virtualenv, side by side with ours.

Writes ``bench/results/scale.json`` and, next to it, the peer's
``sem_meta_peer.json`` (both in ``--out``'s folder when ``--out`` is given).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.db import open_database
from semcurate.ingest.images import decode_image
from semcurate.ingest.ingestion import Ingestion
from semcurate.ingest.ocr import OcrEngine
from semcurate.ingest.scale_bar import read_bar, read_scale_bytes
from semcurate.ingest.scale_database import read_scales, validate

HERE = Path(__file__).resolve().parent


def truth_by_path(corpus: Path) -> dict[str, dict]:
    """The corpus' ground-truth rows keyed by their path relative to the corpus root."""
    with (corpus / "ground_truth.csv").open(encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def pipeline_run(corpus: Path, workdir: Path, workers: int) -> dict:
    """Ingest then read scales with ``workers`` processes into a fresh store; time both."""
    sessions = open_database(f"sqlite:///{workdir / f'w{workers}.db'}")
    store = workdir / f"store{workers}"
    started = time.perf_counter()
    ingest = Ingestion(corpus / "new_dati_SEM", store, sessions, workers=workers).run()
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    read_scales(sessions, store, workers=workers)
    scale_s = time.perf_counter() - started
    images = ingest["images_total"]
    return {
        "workers": workers,
        "images": images,
        "ingest_s": round(ingest_s, 1),
        "scale_s": round(scale_s, 1),
        "images_per_s_per_core": round(images / (ingest_s + scale_s) / workers, 1),
        "scale_only_images_per_s_per_core": round(images / scale_s / workers, 1),
        "sessions": sessions,
    }


def accuracy(sessions, corpus: Path) -> dict:
    """Table 2.3 over the corpus, and the targets' shares over the images that carry a data bar."""
    import sqlite3

    validation = validate(sessions, corpus / "ground_truth.csv")
    database = sessions.kw["bind"].url.database
    connection = sqlite3.connect(database)
    readings = {
        relpath: (status, value, unit, nm_per_px)
        for relpath, status, value, unit, nm_per_px in connection.execute(
            "SELECT f.relpath, r.status, r.value, r.unit, r.nm_per_px FROM files f "
            "JOIN scale_readings r ON r.image_md5 = f.image_md5 WHERE f.status = 'image'"
        )
    }
    counts = {"with_bar": 0, "correct": 0, "wrong": 0, "abstained": 0, "nm_within_1pct": 0}
    for path, row in truth_by_path(corpus).items():
        relpath = path.removeprefix("new_dati_SEM/")
        if relpath not in readings or row["has_stripe"] != "true":
            continue
        _status, value, unit, nm_per_px = readings[relpath]
        counts["with_bar"] += 1
        if value is None:
            counts["abstained"] += 1
        elif unit == row["scale_unit"] and value == float(row["scale_value"]):
            counts["correct"] += 1
            counts["nm_within_1pct"] += abs(nm_per_px / float(row["nm_per_px"]) - 1) <= 0.01
        else:
            counts["wrong"] += 1
    share = {key: round(100 * counts[key] / counts["with_bar"], 2) for key in ("correct", "wrong", "abstained")}
    share["nm_within_1pct_of_correct"] = round(100 * counts["nm_within_1pct"] / max(1, counts["correct"]), 2)
    return {"counts": counts, "percent": share, "table_2_3": validation["table"]}


def bar_images(corpus: Path, limit: int) -> list[tuple[np.ndarray, dict, bytes]]:
    """Up to ``limit`` TIFF originals with a data bar: grey pixels, truth row and file bytes."""
    rows = [
        row
        for row in truth_by_path(corpus).values()
        if row["kind"] == "original" and row["format"] == "TIFF" and row["has_stripe"] == "true"
    ][:limit]
    images = []
    for row in rows:
        data = (corpus / row["path"]).read_bytes()
        images.append((np.asarray(decode_image(data).display.convert("L")), row, data))
    return images


class OneCallPerCrop:
    """An engine wrapper that reads each crop in its own call: what a plain pytesseract loop costs."""

    def __init__(self, engine: OcrEngine):
        self.engine = engine

    def read_lines(self, crops, whitelist=None):
        """Text of each crop, one OCR call per crop."""
        return [self.engine.read_lines([crop], whitelist=whitelist)[0] for crop in crops]

    def read_line(self, crop, whitelist=None):
        """Text of one crop."""
        return self.read_lines([crop], whitelist=whitelist)[0]


def ocr_bindings(images: list) -> list[dict]:
    """ms per image and accuracy of the reader with each OCR binding, on the same images."""
    results = []
    for backend, batched in (("tesserocr", True), ("pytesseract", True), ("pytesseract", False)):
        engine = OcrEngine(backend=backend)
        reader = engine if batched else OneCallPerCrop(engine)
        sample = images if batched else images[: max(5, len(images) // 4)]
        started = time.perf_counter()
        readings = [read_bar(grey, reader) for grey, _row, _data in sample]
        elapsed = time.perf_counter() - started
        correct = sum(
            reading.value == float(row["scale_value"]) and reading.unit == row["scale_unit"]
            for reading, (_grey, row, _data) in zip(readings, sample, strict=True)
        )
        results.append(
            {
                "binding": backend
                + (
                    " (one call per image, crops batched)"
                    if backend == "pytesseract" and batched
                    else " (one call per crop)"
                    if backend == "pytesseract"
                    else " (API kept open)"
                ),
                "images": len(sample),
                "ms_per_image": round(1000 * elapsed / len(sample), 1),
                "correct_pct": round(100 * correct / len(sample), 1),
            }
        )
        engine.close()
    return results


def ours_on_peer_images(images: list) -> dict:
    """Our reader on the peer's images: shares correct (nm/px within 2 %) and wrong, and images/s."""
    engine = OcrEngine()
    started = time.perf_counter()
    readings = [read_scale_bytes(data, engine=engine) for _grey, _row, data in images]
    elapsed = time.perf_counter() - started
    correct = sum(
        reading.nm_per_px is not None and abs(reading.nm_per_px / float(row["nm_per_px"]) - 1) <= 0.02
        for reading, (_grey, row, _data) in zip(readings, images, strict=True)
    )
    wrong = sum(reading.nm_per_px is not None for reading in readings) - correct
    return {
        "n": len(images),
        "correct_pct": round(100 * correct / len(images), 1),
        "wrong_pct": round(100 * wrong / len(images), 1),
        "images_per_s": round(len(images) / elapsed, 1),
    }


def peer(corpus: Path, limit: int, out: Path) -> dict | None:
    """The sem-meta peer's summary over images with a data bar, run by ``bench/sem_meta_peer.py`` into ``out``."""
    command = [
        sys.executable,
        str(HERE / "sem_meta_peer.py"),
        "--truth",
        str(corpus / "ground_truth.csv"),
        "--limit",
        str(limit),
        "--out",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"peer sem-meta could not run: {result.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.read_text(encoding="utf-8"))["summary"]["with a data bar"]


def main() -> None:
    """Run the pipeline per worker count, the binding and peer comparisons, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="size of the generated demo corpus")
    parser.add_argument("--corpus", type=Path, help="reuse this demo corpus (else one is generated)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="worker counts, one run each; the first is the speed-up's baseline",
    )
    parser.add_argument("--compare", type=int, default=200, help="TIFFs for the binding and peer comparisons")
    parser.add_argument("--no-peer", action="store_true", help="skip sem-meta (it needs its own venv and apt packs)")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results" / "scale.json",
        help="JSON result file (default: the committed bench/results/scale.json); the peer's "
        "sem_meta_peer.json goes into the same folder",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="semcurate-bench-scale-"))
    corpus = args.corpus or workdir / "corpus"
    if not (corpus / "ground_truth.csv").exists():
        make_sem_corpus(corpus, args.images, seed=0, workers=max(args.workers))
    runs = [pipeline_run(corpus, workdir, workers) for workers in args.workers]
    quality = accuracy(runs[-1]["sessions"], corpus)
    baseline = runs[0]["ingest_s"] + runs[0]["scale_s"]
    for run in runs:
        run.pop("sessions")
        run["speedup_vs_1_worker"] = round(baseline / (run["ingest_s"] + run["scale_s"]), 2)
    images = bar_images(corpus, args.compare)
    bindings = ocr_bindings(images[:60])
    ours = ours_on_peer_images(images)
    theirs = None if args.no_peer else peer(corpus, args.compare, args.out.parent / "sem_meta_peer.json")

    print("accuracy over images with a data bar:", quality["counts"], quality["percent"])
    print("workers | images | ingest s | scale s | img/s/core (hash+convert+scale) | scale-only img/s/core | speed-up")
    for run in runs:
        print(
            " | ".join(
                str(run[key])
                for key in (
                    "workers",
                    "images",
                    "ingest_s",
                    "scale_s",
                    "images_per_s_per_core",
                    "scale_only_images_per_s_per_core",
                    "speedup_vs_1_worker",
                )
            )
        )
    print("OCR binding | images | ms/image | correct %")
    for row in bindings:
        print(f"{row['binding']} | {row['images']} | {row['ms_per_image']} | {row['correct_pct']}")
    print("reader | n | correct % (nm/px within 2 %) | wrong % | images/s (1 process)")
    print(f"semcurate | {ours['n']} | {ours['correct_pct']} | {ours['wrong_pct']} | {ours['images_per_s']}")
    if theirs:
        print(
            f"sem-meta 0.1.1 | {theirs['n']} | {theirs['correct_pct']} | {theirs['wrong_pct']} | "
            f"{theirs['images_per_s']}"
        )
    result = {
        "benchmark": "scale",
        "targets": {
            "correct_pct": ">= 99",
            "wrong_pct": "<= 0.1",
            "nm_within_1pct_of_correct": "100",
            "images_per_s_per_core": ">= 8",
        },
        "corpus_images": args.images,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "accuracy": quality,
        "runs": runs,
        "ocr_bindings": bindings,
        "peer_comparison": {"semcurate": ours, "sem-meta 0.1.1": theirs},
        "targets_met": {
            "accuracy": quality["percent"]["correct"] >= 99 and quality["percent"]["wrong"] <= 0.1,
            "speed": all(run["images_per_s_per_core"] >= 8 for run in runs),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if args.corpus is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
