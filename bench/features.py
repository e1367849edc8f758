"""Feature extraction throughput: Inception-V3 pipeline against bare prediction, and the classic descriptor.

Targets (issue):

* ``extract(...)`` with Inception-V3 on CPU reaches ≥ 90 % of the throughput of
  bare ``predict`` on tensors already in memory;
* the weight-free classic descriptor reaches ≥ 50 images/s on 2 cores
  (``extract(..., workers=2)``).

Method: a demo corpus (``--images`` images, seed 0; or ``--corpus``) is
ingested into a temporary store and database and its scales are read, so the
stripe boxes exist and the data bar is cropped as in production.  Every
ingested image is used.  Inception-V3 uses random weights (``weights="none"``:
no network here; the speed does not depend on the weights' values) and is
warmed up with one batch before any clock starts.  Timed, best of ``--runs``
interleaved rounds (the highest 1-minute load average seen before a run is
reported next to it: on a shared machine above ~2 the 2-core figures mean
little):

* ``predict (pre-loaded)`` — all images decoded, cropped and resized first
  (``load_specimen`` + ``to_inception_input``), then only the loop of
  ``model.predict`` over batches of ``--batch-size``;
* ``extract (prefetch)`` — the real ``extract(...)`` end to end into a fresh
  feature store (decoding overlaps inference through the prefetch thread);
* ``serial (no prefetch)`` — the same batches decoded, resized, predicted and
  appended one after the other, to show what the overlap buys;
* ``classic, N workers`` — ``extract(..., workers=N)`` into a fresh store
  (the classic runs come first, before TensorFlow starts threads, because the
  pool forks).

The stage profile (decode + crop, resize + scale, predict: seconds per image,
measured serially while pre-loading) tells which stage bounds the pipeline.
Writes ``bench/results/features.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from semcurate.db import open_database
from semcurate.features.extract import create_extractor, extract, image_tasks, load_specimen
from semcurate.features.inception import to_inception_input
from semcurate.features.store import FeatureStore
from semcurate.datasets.demo_corpus import make_sem_corpus
from semcurate.ingest.ingestion import ingest
from semcurate.ingest.scale_database import read_scales

HERE = Path(__file__).resolve().parent
PIPELINE_TARGET = 0.9  # extract / bare predict
CLASSIC_TARGET = 50.0  # images/s on 2 workers
_STORES = itertools.count()


def build_repository(corpus: Path | None, workdir: Path, n_images: int):
    """Ingest (generating the corpus first if needed) and read scales; return the session factory and the store."""
    if corpus is None:
        corpus = workdir / "corpus"
        make_sem_corpus(corpus, n_images, seed=0, workers=2)
    store = workdir / "store"
    sessions = open_database(f"sqlite:///{workdir / 'bench.db'}")
    ingest(corpus / "new_dati_SEM", store, sessions, workers=2)
    read_scales(sessions, store, workers=2)
    return sessions, store


def best_of(runs: int, timers: dict) -> dict[str, tuple[float, float]]:
    """Per name: the smallest seconds over ``runs`` rounds and the highest 1-minute load average seen before a run.

    Each timer returns its own seconds; the rounds interleave the timers, so
    load from other processes on a shared machine hits all of them alike.
    """
    seconds: dict[str, list[float]] = {name: [] for name in timers}
    loads: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(runs):
        for name, timed in timers.items():
            loads[name].append(os.getloadavg()[0])
            seconds[name].append(timed())
    return {name: (min(seconds[name]), max(loads[name])) for name in timers}


def fresh_store(workdir: Path) -> FeatureStore:
    """A feature store under ``workdir`` whose file does not exist yet."""
    return FeatureStore(workdir / f"features-{next(_STORES)}.h5")


def timed_extract(sessions, store: Path, workdir: Path, extractor, batch_size: int, workers: int = 1) -> float:
    feature_store = fresh_store(workdir)
    started = time.perf_counter()
    result = extract(sessions, store, feature_store, extractor, batch_size=batch_size, workers=workers)
    seconds = time.perf_counter() - started
    assert result["extracted"] > 0
    return seconds


def preload(batches: list) -> tuple[list[np.ndarray], float, float]:
    """Inception inputs of every batch, with the seconds spent decoding + cropping and resizing + scaling."""
    inputs, decode_s, resize_s = [], 0.0, 0.0
    for batch in batches:
        started = time.perf_counter()
        images = [load_specimen(task) for task in batch]
        loaded = time.perf_counter()
        inputs.append(to_inception_input(images))
        decode_s, resize_s = decode_s + loaded - started, resize_s + time.perf_counter() - loaded
    return inputs, decode_s, resize_s


def timed_predict(model, inputs: list[np.ndarray]) -> float:
    started = time.perf_counter()
    for batch in inputs:
        model.predict(batch)
    return time.perf_counter() - started


def timed_serial(model, batches: list, workdir: Path) -> float:
    """Decode, resize, predict and append batch after batch, as ``extract`` does without its prefetch thread."""
    feature_store = fresh_store(workdir)
    started = time.perf_counter()
    for batch in batches:
        md5s = [task.md5 for task in batch]
        for output, values in model.transform([load_specimen(task) for task in batch]).items():
            feature_store.append(output, md5s, values)
    return time.perf_counter() - started


def row(method: str, images: int, timing: tuple[float, float], reference: float | None = None) -> dict:
    seconds, load = timing
    rate = images / seconds
    return {"method": method, "images": images, "seconds": round(seconds, 2), "images_per_s": round(rate, 2),
            "ratio": None if reference is None else round(rate / reference, 3), "load_average_1min": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=160, help="size of the generated demo corpus")
    parser.add_argument("--corpus", type=Path, help="reuse this demo corpus (else one is generated)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--runs", type=int, default=2, help="timed repeats; the best is kept")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "features.json")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="semcurate-bench-features-"))
    try:
        sessions, store = build_repository(args.corpus, workdir, args.images)
        tasks = image_tasks(sessions, store, None)
        n = len(tasks)
        batches = [tasks[start: start + args.batch_size] for start in range(0, n, args.batch_size)]

        classic = create_extractor("classic")
        classic_timings = best_of(args.runs, {
            f"classic, {workers} worker{'s' * (workers > 1)}":
                lambda w=workers: timed_extract(sessions, store, workdir, classic, args.batch_size, w)
            for workers in (1, 2)})

        model = create_extractor("inception_v3", weights="none")
        inputs, decode_s, resize_s = preload(batches)
        model.predict(inputs[0])  # warm-up: graph tracing and first allocations
        inception_timings = best_of(args.runs, {
            "inception_v3 predict (pre-loaded)": lambda: timed_predict(model, inputs),
            "inception_v3 extract (prefetch)": lambda: timed_extract(sessions, store, workdir, model, args.batch_size),
            "inception_v3 serial (no prefetch)": lambda: timed_serial(model, batches, workdir),
        })
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    predict_s = inception_timings["inception_v3 predict (pre-loaded)"][0]
    rows = [*(row(method, n, timing, n / predict_s) for method, timing in inception_timings.items()),
            *(row(method, n, timing) for method, timing in classic_timings.items())]
    profile = {"decode_crop_ms_per_image": round(1000 * decode_s / n, 1),
               "resize_scale_ms_per_image": round(1000 * resize_s / n, 1),
               "predict_ms_per_image": round(1000 * predict_s / n, 1)}
    pipeline_ratio = rows[1]["ratio"]
    classic_two = rows[4]["images_per_s"]

    print("method | images | seconds | images/s | ratio to bare predict | load (1 min)")
    for entry in rows:
        print(" | ".join("-" if entry[key] is None else str(entry[key])
                         for key in ("method", "images", "seconds", "images_per_s", "ratio", "load_average_1min")))
    print("stage profile (serial, ms/image): " + ", ".join(f"{key} {value}" for key, value in profile.items()))

    result = {
        "benchmark": "features",
        "targets": {"extract_over_bare_predict": f"≥ {PIPELINE_TARGET}",
                    "classic_images_per_s_2_workers": f"≥ {CLASSIC_TARGET}"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "setup": {"images": n, "batch_size": args.batch_size, "runs": args.runs, "inception_weights": "none",
                  "corpus": str(args.corpus) if args.corpus else f"demo, {args.images} images, seed 0"},
        "rows": rows,
        "stage_profile": profile,
        "targets_met": {"extract_over_bare_predict": pipeline_ratio >= PIPELINE_TARGET,
                        "classic_images_per_s_2_workers": classic_two >= CLASSIC_TARGET},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
