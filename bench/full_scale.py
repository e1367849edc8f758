"""The whole ``semcurate demo`` pipeline at the thesis' size (issue 17): one process per stage, measured.

``python bench/full_scale.py [--images 52682] [--workers N] [--out DIR] [--json PATH] [--reference PATH]``
draws a demo corpus of ``--images`` images (``semcurate demo-data``), then runs
every stage ``semcurate demo`` runs, in its order and with its arguments, each
as its own ``python -m semcurate`` process: ingest, the three label imports,
scale (read, validate, the 1u-2u subset), image quality, the weight-free features, the 2-NN
intrinsic dimension, the autoencoder (grid search, 30 epochs), the
acquisition-invariant projection of the descriptor, the distance
study, the five thesis algorithms on the descriptor and on its codes, the
sub-category tree (split on the projection, placed with the descriptor), the
evaluation, the 2-D comparison and the report; and last
``semcurate demo`` itself over the finished run (:data:`SECOND_RUN`: every
stage finds its work done, which issue 17 wants within 2 minutes; it is not
counted in the pipeline's total).  (``semcurate demo`` also extracts Inception-V3 features when the ImageNet
weights are on the machine; this driver measures the weight-free pipeline
only, as issue 17's targets do.)

Per stage it records the wall time; the CPU time (user + system of the stage
and of the worker processes it waited for: ``os.wait4``'s resource usage);
the peak resident set size of the largest single process (``ru_maxrss``) and,
sampled every half second, of the whole process group (workers included;
pages shared after a fork are counted in every process, so this is an upper
bound); the disk used afterwards by the corpus, flat store, database, feature
store, cluster store, results and report; the load average before, after and
at its highest during the stage; and the stage's own key figure (images,
files, rows, points) with its throughput.  With ``--reference`` (the JSON of
an earlier, smaller run, e.g. ``bench/results/full_scale_1000.json``) each
stage's throughput is also given as a ratio of the reference's: 1.0 is linear
scaling, and issue 17 asks for at least 0.8.

The run is resumable: ``DIR/full_scale_state.json`` records every finished
stage, so the same command started again after a kill skips them and continues
with the first unfinished one (a half-written corpus is removed and drawn
anew; every other ``semcurate`` command keeps what it finished and does the
rest; a stage run again is timed over its last attempt, and ``attempts``
says how many it took).  A stage that an earlier, killed driver left running
is refused, not raced.  With a complete ``--reference``, a run the free disk
cannot hold at the reference's bytes per image is refused before it starts.
With ``--stop-by TIME`` the driver starts no stage that the reference run
predicts would still run at TIME (its wall time per image there times this
run's images, plus a quarter), so a run longer than one sitting stops between
stages and every stage is timed in one piece; the same command with a later
``--stop-by`` (or none) continues it.  ``--measure-again STAGE ...`` runs
finished stages once more (their earlier records are kept in the JSON).
The JSON (default ``bench/results/full_scale.json``) is rewritten
after every stage with ``complete`` false until the last one; it records the
commit measured, whether the working tree was dirty, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
#: The state file in the output folder: configuration, finished stages, attempts, the stage now running.
STATE_FILE = "full_scale_state.json"
#: Seconds between two samples of the process group's memory and the load average.
SAMPLE_INTERVAL_S = 0.5
#: Issue 17's targets on the 2-core, 24 GiB machine.
#: The last stage: ``semcurate demo`` over the finished run, timed apart from the pipeline's total.
SECOND_RUN = "demo again"
TARGETS = {
    "total_wall_s": 3 * 3600,
    "second_run_wall_s": 120,
    "stage_peak_rss_bytes": 8 * 1024**3,
    "report_bytes": 50 * 1000**2,
    "throughput_vs_reference": 0.8,
}
#: Why a stage's work grows faster than its items, so that its throughput cannot keep within 20 % of the
#: reference's (issue 17 asks for the reason in the JSON): stage-name pattern (``re.fullmatch``) -> reason.
#: Stated from the algorithms, before measuring; a slow stage matching none is listed as unexplained.
SUPERLINEAR_STAGES = {
    "ingest": "its near-duplicate step confirms candidate pairs, and at the corpus' rate of false candidates "
    "(about 1e-4 of all pairs, bench/results/near_duplicates.json) their number grows with the square of the "
    "images; ingest before 3aa0d47 also looked up each JPG's rendition candidates one hash string at a time "
    "(re-measured since: bench/results/ingest_52682.json)",
    r"cluster \S+ (ward|centroid|single)": "agglomerative clustering merges by pairwise distances: fastcluster's "
    "memory-lean algorithms (nearest-neighbour chain, minimum spanning tree, generic) take O(n²) time",
    r"cluster \S+ complete": "complete linkage has no memory-lean algorithm: all n(n-1)/2 distances are computed "
    "and kept, O(n²) time and memory",
    r"tree( Hierarchical)?": "each category's images are split by Louvain on a 10-nearest-neighbour graph that "
    "scikit-learn finds by brute force over the tree set's 60-odd columns, O(m²) time for a category of m images",
}
#: Why a stage needs more than the per-stage memory target: stage-name pattern -> reason (as above).
LARGE_MEMORY_STAGES = {
    r"cluster \S+ complete": "complete linkage keeps the condensed distance matrix in float32, 4 n(n-1)/2 bytes "
    "(5.6 GB at 52,682 points), with the stage's other 0.3 GB passes 8 GB at about 62,000 points",
}
#: What ``disk_usage`` measures in the output folder: component name -> file or folder names.
DISK_COMPONENTS = {
    "corpus": ("corpus",),
    "store": ("store",),
    "database": ("semcurate.db", "semcurate.db-wal", "semcurate.db-shm"),
    "feature_store": ("features.h5",),
    "cluster_store": ("clusterings.h5",),
    "results": ("results",),
    "report": ("report.html",),
}


class BenchError(Exception):
    """A run that cannot go on: arguments that do not match the output folder's, a failed stage (one line)."""


class Interrupted(Exception):
    """The driver was asked to stop (SIGINT, SIGTERM); the running stage was stopped with it."""


class Paused(Exception):
    """The driver stopped between stages because the next one would not end by ``--stop-by`` (the reason)."""


@dataclass
class Stage:
    """One step of the pipeline: the process to run and how to read its key figures.

    Parameters
    ----------
    name : str
        Stable name, the key of the state file and of the reference comparison.
    command : callable
        Returns the argument vector; called just before the stage runs, so it can read what earlier stages
        wrote (the autoencoder's code size).
    figures : callable
        ``figures(stdout)``: the stage's key figures, read from its output or its files after it finished.
        ``items`` and ``unit`` in the result give the throughput (``items`` per wall second).
    prepare : callable, optional
        Run before the stage when an earlier attempt of it was interrupted (e.g. removing a half-written corpus).
    """

    name: str
    command: Callable[[], list[str]]
    figures: Callable[[str], dict]
    prepare: Callable[[], None] | None = None


def semcurate_stages(out: Path, images: int, seed: int, workers: int, size_scale: float = 1.0) -> list[Stage]:
    """The stages of ``semcurate demo`` (:func:`semcurate.demo.run_demo`) as ``python -m semcurate`` commands.

    Every path is absolute under ``out``; the arguments are the ones ``run_demo`` passes to the stage
    functions, so the work is the demo's (``size_scale`` other than 1 draws smaller or larger images than the
    demo does: ``semcurate demo-data --size-scale``).  The reduced feature set is ``classic.ae<K>`` with ``K`` the code
    size the intrinsic-dimension stage suggested; the stages on it are named ``... reduced ...`` so that runs
    with different ``K`` compare.  One features stage per set the demo's tree joins
    (:data:`semcurate.demo.TREE_SOURCE_PARTS`: ``classic_particles``, which fills ``classic_blobs`` and ``classic``
    in the same pass, and ``scattering_centre``); the invariant stage projects the joined set
    (:data:`semcurate.demo.TREE_SOURCE_SET`) and the tree splits that projection, ``<joined>.inv<K>``, whose name
    the invariant stage writes, by :data:`semcurate.demo.TREE_METHOD` with :data:`semcurate.demo.TREE_CATEGORY_BLOCK`
    appended to each category's rows, and places by :data:`semcurate.demo.PLACEMENT_SET`.
    """
    from semcurate.clustering.methods import THESIS_METHODS

    # semcurate.demo imports the pipeline (86 MB resident); asked in a process of its own, the driver stays at
    # ~20 MB, which matters: Linux counts the driver's peak in every stage's ru_maxrss (see StageRunner).
    demo_datasets, tree_parts, tree_source, placement_set, tree_method, category_block = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import json; from semcurate import demo as d; "
                "print(json.dumps([d.DEMO_DATASETS, d.TREE_SOURCE_PARTS, d.TREE_SOURCE_SET, d.PLACEMENT_SET, "
                "d.TREE_METHOD, d.TREE_CATEGORY_BLOCK]))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    out = out.resolve()
    id_json = out / "results" / "id" / "classic.id.json"
    values = {
        "out": out,
        "corpus": out / "corpus",
        "store": out / "store",
        "results": out / "results",
        "images": images,
        "seed": seed,
        "workers": workers,
        "size_scale": size_scale,
        "db": f"--db=sqlite:///{out / 'semcurate.db'}",
        "features": f"--feature-store={out / 'features.h5'}",
        "tree_source": tree_source,
        "placement_set": placement_set,
        "tree_method": tree_method,
        "category_block": category_block,
        "clusters": f"--cluster-store={out / 'clusterings.h5'}",
    }

    def code_size() -> int:
        return json.loads(id_json.read_text(encoding="utf-8"))["suggested_code_size"]

    def classic_rows() -> int:
        return json.loads(id_json.read_text(encoding="utf-8"))["rows"]

    def invariant_result() -> dict:
        """What the invariant stage stored: the newest ``<tree source>.inv<K>.json`` it wrote."""
        written = sorted(
            (out / "results" / "reduce").glob(f"{tree_source}.inv*.json"), key=lambda path: path.stat().st_mtime
        )
        return json.loads(written[-1].read_text(encoding="utf-8"))

    def invariant_set() -> str:
        return invariant_result()["feature_set"]

    def command(template: str) -> Callable[[], list[str]]:
        """``python -m semcurate`` and ``template``'s words, each formatted with :data:`values`, ``code``, the
        autoencoder's code size, and ``invariant``, the projection's name (read when the stage starts: the ID
        and invariant stages write them)."""

        def argv() -> list[str]:
            late: dict = {"code": code_size()} if "{code}" in template else {}
            if "{invariant}" in template:
                late["invariant"] = invariant_set()
            return [sys.executable, "-m", "semcurate", *(word.format(**values, **late) for word in template.split())]

        return argv

    stages = [
        Stage(
            "corpus",
            command("demo-data {corpus} --images {images} --seed {seed} --workers {workers} --size-scale {size_scale}"),
            lambda _: {"items": images, "unit": "images"},
            prepare=lambda: shutil.rmtree(values["corpus"], ignore_errors=True),
        ),
        Stage(
            "ingest",
            command("ingest {corpus}/new_dati_SEM --store {store} --workers {workers} --json {db}"),
            lambda stdout: with_items(last_json(stdout), "files_seen", "files"),
        ),
        *(
            Stage(
                f"labels {dataset}",
                command(
                    f"labels import {{corpus}}/datasets/{dataset} --name {dataset} --store {{store}} "
                    "--workers {workers} --json {db}"
                ),
                lambda stdout: with_items(without(last_json(stdout), "skipped"), "n_files", "files"),
            )
            for dataset in demo_datasets
        ),
        Stage(
            "scale",
            command("scale --workers {workers} --store {store} {db}"),
            lambda stdout: with_items(matched_numbers(stdout, r"read (\d+) images now", ("read",)), "read", "images"),
        ),
        Stage(
            "scale validate",
            command("scale validate {corpus}/ground_truth.csv --out {results}/scale --json {db}"),
            lambda stdout: validation_figures(last_json(stdout)),
        ),
        Stage(
            "subset 1u-2u",
            command("subset create 1u-2u --scale 1um --scale 2um --replace {db}"),
            lambda stdout: with_items(matched_numbers(stdout, r"1u-2u: (\d+) images", ("size",)), "size", "images"),
        ),
        Stage(
            "quality",
            command("quality --workers {workers} --store {store} {db}"),
            lambda stdout: with_items(
                matched_numbers(stdout, r"scored (\d+) images now", ("scored",)), "scored", "images"
            ),
        ),
        *(
            Stage(
                f"features {part}",
                command(
                    f"features extract --extractor {part} --workers {{workers}} --store {{store}} {{features}} {{db}}"
                ),
                lambda stdout: with_items(
                    matched_numbers(stdout, r"extracted (\d+)", ("extracted",)), "extracted", "images"
                ),
            )
            for part in tree_parts
        ),
        Stage(
            "id classic",
            command("id classic --out {results}/id {features} {db}"),
            lambda _: {"suggested_code_size": code_size(), "items": classic_rows(), "unit": "rows"},
        ),
        Stage(
            "reduce classic",
            command(
                "reduce classic --method ae --code-size {code} --grid --epochs 30 --batch-size 64 "
                "--workers {workers} --out {results}/reduce {features} {db}"
            ),
            lambda _: {"feature_set": f"classic.ae{code_size()}", "items": classic_rows(), "unit": "rows"},
        ),
        Stage(
            "invariant projection",
            command(
                "reduce {tree_source} --method invariant --workers {workers} --store {store} "
                "--out {results}/reduce {features} {db}"
            ),
            lambda _: {
                "feature_set": invariant_set(),
                "variant_images": invariant_result()["variant_images"],
                "items": classic_rows(),
                "unit": "rows",
            },
        ),
        Stage(
            "distances",
            command(
                "distances classic classic.ae{code} --dataset SEM_Dataset --per-category 20 "
                "--out {results}/distances {features} {db}"
            ),
            lambda _: {"fixed_work": "a sample of 20 labelled images per category"},
        ),
        *(
            Stage(
                f"cluster {label} {method}",
                command(f"cluster {feature_set} --method {method} --json {{features}} {{clusters}} {{db}}"),
                lambda stdout: with_items(last_json(stdout), "points", "points"),
            )
            for label, feature_set in (("classic", "classic"), ("reduced", "classic.ae{code}"))
            for method in THESIS_METHODS
        ),
        Stage(
            "tree",
            command(
                "tree build {invariant} --method {tree_method} --dataset SEM_Dataset --min-size 5 --preprocessing none "
                "--place-with {placement_set} --category-block {category_block} --store {store} {features} {db}"
            ),
            lambda _: tree_figures(out / "semcurate.db"),
        ),
        Stage(
            "evaluate",
            command(
                f"evaluate --feature-sets classic classic.ae{{code}} --methods {' '.join(THESIS_METHODS)} "
                "--dataset SEM_Dataset --hierarchy Hierarchical --out {results}/evaluate {db}"
            ),
            lambda _: {"items": images, "unit": "corpus images"},
        ),
        Stage(
            "tree Hierarchical",
            command(
                "tree build {invariant} --method {tree_method} --dataset SEM_Dataset --min-size 5 --preprocessing none "
                "--place-with {placement_set} --category-block {category_block} --hierarchy Hierarchical "
                "--store {store} {features} {db}"
            ),
            lambda _: tree_figures(out / "semcurate.db"),
        ),
        Stage(
            "compare-2d",
            command("compare-2d --out {results}/compare2d"),
            lambda _: {"fixed_work": "30 clusterings of 3,000 synthetic 2-D points"},
        ),
        Stage(
            "report",
            command("report {out}/report.html --results {results} --store {store} {db}"),
            lambda stdout: {
                **matched_numbers(stdout, r"\): (\d+) sections", ("sections",)),
                "bytes": (out / "report.html").stat().st_size,
                "items": images,
                "unit": "corpus images",
            },
        ),
        Stage(
            SECOND_RUN,
            command("demo --out {out} --images {images} --seed {seed} --workers {workers}"),
            lambda _: {"fixed_work": "semcurate demo over the finished run: every stage finds its work done"},
        ),
    ]
    return stages


def last_json(stdout: str) -> dict:
    """The last line of ``stdout`` that is a JSON object (a ``--json`` command's summary)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError("the stage printed no JSON summary")


def without(summary: dict, *keys: str) -> dict:
    """``summary`` less ``keys`` (long lists that do not belong in the results)."""
    return {key: value for key, value in summary.items() if key not in keys}


def with_items(figures: dict, key: str, unit: str) -> dict:
    """``figures`` with ``items`` set to ``figures[key]`` counted in ``unit``."""
    return {**figures, "items": figures[key], "unit": unit}


def matched_numbers(stdout: str, pattern: str, names: Iterable[str]) -> dict:
    """The whole numbers ``pattern``'s groups capture in ``stdout``, by ``names``."""
    found = re.search(pattern, stdout)
    if found is None:
        raise BenchError(f"the stage's output has no line matching {pattern!r}")
    return {name: int(value) for name, value in zip(names, found.groups(), strict=True)}


def validation_figures(result: dict) -> dict:
    """The images validated and the share of each outcome (percent), from ``scale validate --json``."""
    percent = {outcome: cell["percent"] for outcome, cell in result["table"].items()}
    return {"total": result["total"], "percent": percent, "items": result["total"], "unit": "images"}


def tree_figures(database: Path) -> dict:
    """The newest tree's images, labelled images and nodes, read from the SQLite file ``database``."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tree_id, n_images, n_labelled = connection.execute(
            "SELECT id, n_images, n_labelled FROM trees ORDER BY id DESC LIMIT 1"
        ).fetchone()
        (nodes,) = connection.execute("SELECT count(*) FROM tree_nodes WHERE tree_id = ?", (tree_id,)).fetchone()
    return {
        "tree_id": tree_id,
        "images": n_images,
        "labelled": n_labelled,
        "nodes": nodes,
        "items": n_images,
        "unit": "images",
    }


def disk_usage(out: Path) -> dict[str, int]:
    """Bytes allocated on disk (``st_blocks``) by each of :data:`DISK_COMPONENTS` under ``out``; 0 when absent."""

    def allocated(path: Path) -> int:
        if path.is_file():
            return path.stat().st_blocks * 512
        total = 0
        for folder, _, files in os.walk(path):
            for name in files:
                try:
                    total += os.stat(os.path.join(folder, name)).st_blocks * 512
                except FileNotFoundError:  # a temporary file renamed away while we walked
                    continue
        return total

    return {
        component: sum(allocated(out / name) for name in names if (out / name).exists())
        for component, names in DISK_COMPONENTS.items()
    }


class GroupSampler(threading.Thread):
    """Samples the resident memory of process group ``pgid`` (summed) and the 1-minute load average.

    Reads ``/proc/*/stat`` every :data:`SAMPLE_INTERVAL_S`; ``peak_rss_bytes`` and ``peak_load`` hold the
    highest readings once :meth:`stop` returns.  On a system without ``/proc`` the memory stays 0.
    """

    def __init__(self, pgid: int) -> None:
        super().__init__(daemon=True)
        self.pgid = pgid
        self.peak_rss_bytes = 0
        self.peak_load = os.getloadavg()[0]
        self._stopped = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self._stopped.wait(SAMPLE_INTERVAL_S):
            self.sample()

    def sample(self) -> None:
        """Take one reading and keep the highest."""
        self.peak_rss_bytes = max(self.peak_rss_bytes, self.group_rss_bytes())
        self.peak_load = max(self.peak_load, os.getloadavg()[0])

    def group_rss_bytes(self) -> int:
        """Resident bytes of every process whose process group is :attr:`pgid`."""
        total = 0
        for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            # After the command name: state, ppid, pgrp (fields 3-5 of proc(5)), ..., rss (field 24).
            if int(fields[2]) == self.pgid:
                total += int(fields[21]) * self._page
        return total

    def stop(self) -> None:
        """Stop sampling after one last reading."""
        self._stopped.set()
        self.join()
        self.sample()


class StageRunner:
    """Runs stage processes one at a time in their own process groups; stops the running one when told to.

    :meth:`stop` (the driver's SIGINT and SIGTERM handler) terminates the running stage's whole process group,
    workers included, so a stopped driver leaves nothing running.

    A stage's ``peak_rss_bytes`` (``ru_maxrss`` from ``os.wait4``) is never below the driver's own peak: Linux
    records the resident size of the memory image a new process replaces when it starts the stage's program,
    and that image is the driver's.  The results give the driver's peak (``driver_peak_rss_bytes``) for this
    reason; the driver keeps it small by importing no pipeline module.
    """

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.stopped = False

    def stop(self, signum: int = signal.SIGTERM, _frame=None) -> None:
        """Terminate the running stage's process group and mark the run stopped."""
        self.stopped = True
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self, argv: list[str], cwd: Path, log_stem: Path, on_start: Callable[[int], None]) -> dict:
        """Run ``argv`` to its end; return its exit status, times, memory, load and output.

        stdout and stderr go to ``log_stem.out`` and ``log_stem.err`` (kept for the record and re-read here).
        """
        if self.stopped:
            raise Interrupted
        load_before = os.getloadavg()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        with open(f"{log_stem}.out", "wb") as stdout, open(f"{log_stem}.err", "wb") as stderr:
            clock = time.perf_counter()
            process = subprocess.Popen(argv, cwd=cwd, stdout=stdout, stderr=stderr, process_group=0)
            self.pgid = process.pid
            sampler = GroupSampler(process.pid)
            sampler.start()
            on_start(process.pid)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - clock
            self.pgid = None
            process.returncode = os.waitstatus_to_exitcode(status)
            sampler.stop()
        if self.stopped:
            raise Interrupted
        return {
            "started": started,
            "exit_status": process.returncode,
            "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "user_s": round(usage.ru_utime, 2),
            "system_s": round(usage.ru_stime, 2),
            "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
            "peak_group_rss_bytes": sampler.peak_rss_bytes,
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in os.getloadavg()],
            # the load read before the start counts: a load falling while the stage starts is no lower peak
            "load_average_1min_max": round(max(load_before[0], sampler.peak_load), 2),
            "stdout": Path(f"{log_stem}.out").read_text(encoding="utf-8", errors="replace"),
            "stderr": Path(f"{log_stem}.err").read_text(encoding="utf-8", errors="replace"),
        }


def process_group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_state(out: Path, config: dict) -> dict:
    """The state of the run in ``out``: a new one, or the earlier run's when its ``config`` is the same.

    Raises
    ------
    BenchError
        When ``out`` holds a run with other arguments (the stages would mix two corpora).
    """
    path = out / STATE_FILE
    if not path.exists():
        return {"config": config, "stages": {}, "attempts": {}, "sessions": []}
    state = json.loads(path.read_text(encoding="utf-8"))
    if state["config"] != config:
        raise BenchError(
            f"{out} holds a run with {state['config']}, not {config}: give the same arguments to resume it, "
            "or another --out"
        )
    return state


def save_state(out: Path, state: dict) -> None:
    """Write the state file atomically (a temporary file renamed over it), so a kill never leaves half of it."""
    temporary = out / f"{STATE_FILE}.tmp"
    temporary.write_text(json.dumps(state, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, out / STATE_FILE)


def git_state(repository: Path = REPOSITORY) -> dict:
    """The commit measured and whether a tracked file differs from it (``git status --porcelain``).

    Untracked files and ``bench/results/`` do not count: this driver rewrites its JSON there after every
    stage, so a resumed run would otherwise always say dirty; neither is code a stage runs.
    """

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], cwd=repository, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results")
    return {"commit": commit or None, "dirty": bool(changed) if commit else None}


def machine() -> dict:
    """CPU count, the cores this process may use, total memory (bytes), platform and Python."""
    memory = None
    if os.path.exists("/proc/meminfo"):
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def run_pipeline(
    stages: list[Stage],
    out: Path,
    config: dict,
    runner: StageRunner,
    say: Callable[[str], None],
    after_stage: Callable[[dict], object] = lambda state: None,
    reason_to_pause: Callable[[str], str | None] = lambda name: None,
    measure_again: Iterable[str] = (),
) -> dict:
    """Run every stage not finished yet in ``out``'s state, in order, recording each; return the state.

    A finished stage named in ``measure_again`` runs again: its earlier record moves to the state's ``earlier``
    (name -> records, oldest first), which the JSON keeps, and the new one takes its place.

    The state file is rewritten when a stage starts (its process group, so a later driver can refuse to race a
    stage an earlier one left running) and when it ends; then ``after_stage(state)`` runs (writing the JSON).

    Raises
    ------
    BenchError
        When a stage fails (its exit status and last error line, also kept in the state's ``failures``), its
        figures cannot be read, or an earlier driver's stage still runs.
    Interrupted
        When ``runner`` was stopped; the interrupted stage is recorded as an attempt, not as finished.
    Paused
        When ``reason_to_pause(name)`` gives a reason not to start the next stage (nothing of it has run).
    """
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    state = load_state(out, config)
    unknown = sorted(set(measure_again) - {stage.name for stage in stages})
    if unknown:
        raise BenchError(f"no stage named {', '.join(map(repr, unknown))}; the stages: {[s.name for s in stages]}")
    for name in measure_again:
        if name in state["stages"]:
            state.setdefault("earlier", {}).setdefault(name, []).append(state["stages"].pop(name))
    state["sessions"].append({"started": datetime.now(UTC).isoformat(timespec="seconds"), **git_state()})
    save_state(out, state)
    for stage in stages:
        if stage.name in state["stages"]:
            say(f"{stage.name}: finished in an earlier run, skipped")
            continue
        running = state.get("running")
        if running and process_group_alive(running["pgid"]):
            raise BenchError(
                f"stage {running['stage']!r} of an earlier run still runs (process group {running['pgid']}): "
                "wait for it to end or stop it, then start again"
            )
        reason = reason_to_pause(stage.name)
        if reason is not None:
            raise Paused(reason)
        attempts = state["attempts"].get(stage.name, 0)
        if attempts and stage.prepare is not None:
            stage.prepare()
        state["attempts"][stage.name] = attempts + 1
        argv = stage.command()

        def started(pid: int, stage: Stage = stage, argv: list[str] = argv) -> None:
            state["running"] = {"stage": stage.name, "pgid": pid, "argv": argv}
            save_state(out, state)

        say(f"{stage.name}: {' '.join(argv[1:])}")
        try:
            measured = runner.run(argv, out, logs / re.sub(r"[^\w.-]+", "_", stage.name), started)
        finally:
            state.pop("running", None)
            save_state(out, state)
        stdout, stderr = measured.pop("stdout"), measured.pop("stderr")
        if measured["exit_status"] != 0:
            last = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
            state.setdefault("failures", {})[stage.name] = {"argv": argv[1:], **measured, "error": last}
            save_state(out, state)
            after_stage(state)
            raise BenchError(f"stage {stage.name!r} ended with exit status {measured['exit_status']}: {last}")
        figures = stage.figures(stdout)
        items = figures.pop("items", None)
        disk = disk_usage(out)
        state["stages"][stage.name] = {
            "name": stage.name,
            "argv": argv[1:],
            **measured,
            "attempts": attempts + 1,
            "session": len(state["sessions"]) - 1,
            "items": items,
            "unit": figures.pop("unit", None),
            "items_per_s": None if items is None or measured["wall_s"] == 0 else round(items / measured["wall_s"], 3),
            "figures": figures,
            "disk_bytes": disk,
            "disk_total_bytes": sum(disk.values()),
        }
        save_state(out, state)
        after_stage(state)
        say(f"{stage.name}: {measured['wall_s']:.1f} s wall, {measured['cpu_s']:.1f} s CPU")
    return state


def compare(stages: list[dict], reference: dict | None) -> list[dict]:
    """``stages`` with each one's throughput relative to the same stage in ``reference`` (None: not comparable)."""
    earlier = {stage["name"]: stage for stage in (reference or {}).get("stages", [])}
    compared = []
    for stage in stages:
        before = earlier.get(stage["name"], {}).get("items_per_s")
        ratio = None if not before or stage["items_per_s"] is None else round(stage["items_per_s"] / before, 3)
        compared.append({**stage, "reference_items_per_s": before, "throughput_vs_reference": ratio})
    return compared


def pause_before_late_stages(
    stop_by: datetime | None,
    reference: dict | None,
    images: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[str], str | None]:
    """A ``reason_to_pause`` for :func:`run_pipeline`: pause before a stage predicted to end after ``stop_by``.

    The prediction is the reference stage's wall time scaled by ``images`` over the reference's images, with a
    quarter added (ingest and the tree grow a little faster than the images); a stage the reference lacks is
    predicted to take no time, so it is started while any time is left.  No ``stop_by``: never pause.

    Examples
    --------
    >>> noon = datetime(2026, 12, 4, 12, tzinfo=UTC)
    >>> reference = {"images": 1000, "stages": [{"name": "scale", "wall_s": 40.0}]}
    >>> reason = pause_before_late_stages(noon.replace(minute=10), reference, 5000, now=lambda: noon)
    >>> reason("scale"), reason("report")
    (None, None)
    >>> pause_before_late_stages(noon.replace(minute=4), reference, 5000, now=lambda: noon)("scale")
    "stage 'scale' would take about 250 s (the reference's 40 s for 1000 images, scaled), 240 s are left"
    """
    walls = {stage["name"]: stage["wall_s"] for stage in (reference or {}).get("stages", [])}
    factor = images / reference["images"] if reference else 0.0

    def reason(name: str) -> str | None:
        if stop_by is None:
            return None
        left = (stop_by - now()).total_seconds()
        predicted = 1.25 * walls.get(name, 0.0) * factor
        if left > 0 and predicted <= left:
            return None
        return (
            f"stage {name!r} would take about {predicted:.0f} s (the reference's {walls.get(name, 0.0):.0f} s "
            f"for {reference['images'] if reference else 0} images, scaled), {max(left, 0):.0f} s are left"
        )

    return reason


def measured_commits(sessions: list[dict], stages: list[dict]) -> dict:
    """The commit the finished ``stages`` measured (a list when a resumed run spans several) and whether any
    of the driver sessions that ran them had a dirty working tree."""
    ran = [sessions[index] for index in sorted({stage["session"] for stage in stages})]
    commits = sorted({session["commit"] for session in ran}, key=[session["commit"] for session in ran].index)
    return {
        "commit": commits[0] if len(commits) == 1 else commits,
        "dirty": any(session["dirty"] for session in ran) if ran else None,
    }


def results(state: dict, stage_names: list[str], reference: dict | None, reference_path: Path | None) -> dict:
    """The results JSON: configuration, commit(s), machine, stages in pipeline order, totals and targets."""
    measured = compare([state["stages"][name] for name in stage_names if name in state["stages"]], reference)
    complete = len(measured) == len(stage_names)
    second_run = next((stage for stage in measured if stage["name"] == SECOND_RUN), None)
    stages = [stage for stage in measured if stage is not second_run]  # the pipeline from nothing to the report
    pipeline_complete = len(stages) == len([name for name in stage_names if name != SECOND_RUN])
    total_wall = round(sum(stage["wall_s"] for stage in stages), 2)
    peak = max((stage["peak_rss_bytes"] for stage in stages), default=0)
    report_bytes = state["stages"].get("report", {}).get("figures", {}).get("bytes")
    ratios = {
        stage["name"]: stage["throughput_vs_reference"]
        for stage in stages
        if stage["throughput_vs_reference"] is not None
    }
    return {
        "benchmark": "full_scale",
        "issue": 17,
        **state["config"],
        "complete": complete,
        **measured_commits(state["sessions"], measured),
        "sessions": state["sessions"],
        "machine": machine(),
        "driver_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "failures": {
            name: failure for name, failure in state.get("failures", {}).items() if name not in state["stages"]
        },
        "stages": stages,
        "second_run": second_run,
        "earlier_measurements": state.get("earlier", {}),
        "totals": {
            "wall_s": total_wall,
            "cpu_s": round(sum(stage["cpu_s"] for stage in stages), 2),
            "peak_rss_bytes": peak,
            "peak_group_rss_bytes": max((stage["peak_group_rss_bytes"] for stage in stages), default=0),
            "disk_bytes": stages[-1]["disk_bytes"] if stages else {},
        },
        "reference": None
        if reference is None
        else {key: reference.get(key) for key in ("images", "size_scale", "commit")} | {"path": str(reference_path)},
        "targets": {
            **TARGETS,
            "total_wall_met": total_wall <= TARGETS["total_wall_s"] if pipeline_complete else None,
            "second_run_met": None if second_run is None else second_run["wall_s"] <= TARGETS["second_run_wall_s"],
            "stage_peak_rss_met": peak <= TARGETS["stage_peak_rss_bytes"],
            "report_bytes_met": None if report_bytes is None else report_bytes <= TARGETS["report_bytes"],
            "stages_below_throughput_target": reasons(
                (name for name, ratio in ratios.items() if ratio < TARGETS["throughput_vs_reference"]),
                SUPERLINEAR_STAGES,
            ),
            "stages_above_peak_rss_target": reasons(
                (stage["name"] for stage in stages if stage["peak_rss_bytes"] > TARGETS["stage_peak_rss_bytes"]),
                LARGE_MEMORY_STAGES,
            ),
        },
    }


def reasons(names: Iterable[str], known: dict[str, str]) -> dict[str, str | None]:
    """Each of ``names`` (sorted) with the reason of the first pattern in ``known`` it matches, else None.

    Examples
    --------
    >>> reasons(["tree", "cluster classic complete", "scale"], LARGE_MEMORY_STAGES)["scale"] is None
    True
    >>> reasons(["cluster reduced ward"], SUPERLINEAR_STAGES)["cluster reduced ward"][:27]
    'agglomerative clustering me'
    """
    return {
        name: next((reason for pattern, reason in known.items() if re.fullmatch(pattern, name)), None)
        for name in sorted(names)
    }


def print_table(summary: dict) -> None:
    """The per-stage table: wall, CPU, memory, throughput (and its ratio to the reference), load, disk."""
    header = (
        f"{'stage':<30}{'wall s':>9}{'CPU s':>9}{'RSS MB':>8}{'group MB':>9}{'items':>8}{'/s':>9}"
        f"{'vs ref':>8}{'load':>11}{'disk MB':>9}"
    )
    commits = summary["commit"] if isinstance(summary["commit"], list) else [summary["commit"] or "?"]
    print(
        f"\nfull scale: {summary['images']} images, {summary['workers']} workers, commit "
        f"{' then '.join(commit[:10] for commit in commits)}{' (dirty)' if summary['dirty'] else ''}"
    )
    print(header)
    print("-" * len(header))
    for stage in summary["stages"]:
        ratio = stage["throughput_vs_reference"]
        throughput = stage["items_per_s"]
        load = f"{stage['load_average_before'][0]:.1f}-{stage['load_average_1min_max']:.1f}"
        print(
            f"{stage['name']:<30}{stage['wall_s']:>9.1f}{stage['cpu_s']:>9.1f}"
            f"{stage['peak_rss_bytes'] / 1e6:>8.0f}{stage['peak_group_rss_bytes'] / 1e6:>9.0f}"
            f"{'' if stage['items'] is None else stage['items']:>8}"
            f"{'' if throughput is None else f'{throughput:.1f}':>9}"
            f"{'' if ratio is None else f'{ratio:.2f}':>8}{load:>11}{stage['disk_total_bytes'] / 1e6:>9.0f}"
        )
    totals = summary["totals"]
    print("-" * len(header))
    print(
        f"{'total':<30}{totals['wall_s']:>9.1f}{totals['cpu_s']:>9.1f}{totals['peak_rss_bytes'] / 1e6:>8.0f}"
        f"{totals['peak_group_rss_bytes'] / 1e6:>9.0f}"
    )
    if summary.get("second_run"):
        again = summary["second_run"]
        print(f"{again['name'] + ' (not in the total)':<30}{again['wall_s']:>9.1f}{again['cpu_s']:>9.1f}")
    print(
        "load: 1-minute load average before the stage and its highest during it; RSS: the largest process; "
        "group: the stage's processes summed (sampled)"
    )


def check_disk(out: Path, images: int, size_scale: float, reference: dict | None) -> None:
    """Refuse a run the free disk under ``out`` cannot hold, judged by a complete reference's bytes per image.

    The images dominate the bytes, so a reference drawn at another ``size_scale`` is scaled by the square of
    the ratio.  What ``out`` already holds (a run being resumed) counts as free: the estimate is for the whole run.
    """
    if not reference or not reference.get("complete"):
        return
    per_image = sum(reference["totals"]["disk_bytes"].values()) / reference["images"]
    per_image *= (size_scale / reference.get("size_scale", 1.0)) ** 2
    probe = out
    while not probe.exists():
        probe = probe.parent
    available = shutil.disk_usage(probe).free + (sum(disk_usage(out).values()) if out.exists() else 0)
    if per_image * images > available:
        raise BenchError(
            f"{images} images need about {per_image * images / 1e9:.0f} GB ({per_image / 1e6:.1f} MB per image, "
            f"from the reference run), and {probe} has {available / 1e9:.0f} GB: give --out a bigger disk, draw "
            "smaller images (--size-scale), or pass --no-disk-check to try anyway"
        )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=52_682, help="distinct images in the corpus (default 52,682)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0, as semcurate demo)")
    parser.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="processes per stage (default: every core)"
    )
    parser.add_argument("--out", type=Path, default=REPOSITORY / "build" / "full_scale", help="folder for the run")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "full_scale.json", help="results file")
    parser.add_argument("--reference", type=Path, help="results JSON of an earlier run to compare throughput with")
    parser.add_argument(
        "--size-scale",
        type=float,
        default=1.0,
        help="image size factor of the corpus (semcurate demo-data --size-scale; default 1.0, the demo's); "
        "bytes per image scale with its square",
    )
    parser.add_argument("--no-disk-check", action="store_true", help="run even if the disk looks too small")
    parser.add_argument(
        "--stop-by",
        type=stop_time,
        help="start no stage the --reference run predicts would end after this time (ISO 8601, UTC unless it "
        "says otherwise, e.g. 2026-12-04T20:40); the same command continues the run",
    )
    parser.add_argument(
        "--measure-again",
        nargs="+",
        default=[],
        metavar="STAGE",
        help="run these finished stages again (e.g. 'demo again'); the JSON keeps their earlier records",
    )
    arguments = parser.parse_args(argv)
    if arguments.images < 1 or arguments.workers < 1 or arguments.size_scale < 0.05:
        parser.error("--images and --workers must be at least 1, --size-scale at least 0.05")
    return arguments


def stop_time(text: str) -> datetime:
    """``--stop-by``'s value as an aware datetime (UTC when it names no zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2026-12-04T20:40") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_reference(path: Path | None) -> dict | None:
    """The results JSON of an earlier run at ``path`` (None: no reference)."""
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BenchError(f"cannot read the reference {path}: {error}") from None


def write_results(summary: dict, path: Path) -> None:
    """Write the results JSON to ``path`` (its folder created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def say(line: str) -> None:
    """Progress line on stdout, flushed (the run takes hours; its log should keep up)."""
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) the pipeline, writing the JSON after every stage; print the table; the exit status."""
    arguments = parse_arguments(argv)
    out = arguments.out.resolve()
    try:
        reference = read_reference(arguments.reference)
        if not arguments.no_disk_check:
            check_disk(out, arguments.images, arguments.size_scale, reference)
        stages = semcurate_stages(out, arguments.images, arguments.seed, arguments.workers, arguments.size_scale)
        names = [stage.name for stage in stages]

        def record(state: dict) -> dict:
            summary = results(state, names, reference, arguments.reference)
            write_results(summary, arguments.json)
            return summary

        runner = StageRunner()
        signal.signal(signal.SIGTERM, runner.stop)
        signal.signal(signal.SIGINT, runner.stop)
        config = {
            "images": arguments.images,
            "seed": arguments.seed,
            "workers": arguments.workers,
            "size_scale": arguments.size_scale,
        }
        pause = pause_before_late_stages(arguments.stop_by, reference, arguments.images)
        state = run_pipeline(
            stages,
            out,
            config,
            runner,
            say,
            after_stage=record,
            reason_to_pause=pause,
            measure_again=arguments.measure_again,
        )
    except Paused as reason:
        print(f"paused before the next stage: {reason}; the same command continues the run in {out}")
        return 0
    except Interrupted:
        print(f"stopped; the same command resumes the run in {out}", file=sys.stderr)
        return 130
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_table(record(state))
    print(f"\nresults: {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
