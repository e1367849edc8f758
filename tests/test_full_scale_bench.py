"""The full-scale driver's own logic (bench/full_scale.py, issue 17) with its stages stubbed by small Python commands.

The stubs do known work, so the measurements have truth from outside the driver: a process that holds
200 MiB of written bytes, one that burns 0.4 s of CPU in a worker process it waits for, a counter file
that shows which stage ran how often. The pipeline itself (semcurate's stages) is not run here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import BENCH, bench_script

MiB = 2**20


@pytest.fixture(scope="module")
def full_scale():
    with bench_script("full_scale") as module:
        yield module


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def counting(counter: Path, name: str, code: str = "") -> list[str]:
    """A command that appends ``name`` to ``counter`` and then runs ``code``."""
    return python(f"open({str(counter)!r}, 'a').write({name + chr(10)!r})\n{code}")


def stub_stages(full_scale, tmp_path: Path) -> list:
    counter = tmp_path / "ran.txt"
    fail_marker = tmp_path / "failed_once"
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
    return [
        full_scale.Stage(
            "memory",
            lambda: counting(counter, "memory", f"x = b'1' * {200 * MiB}\nimport time; time.sleep(1.2)"),
            lambda _: {"items": 200, "unit": "MiB"},
        ),
        full_scale.Stage(
            "worker cpu",
            lambda: counting(
                counter, "worker cpu", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"
            ),
            lambda _: {},
        ),
        full_scale.Stage(
            "fails once",
            lambda: counting(
                counter,
                "fails once",
                f"import os, sys, json\nif not os.path.exists({str(fail_marker)!r}):\n"
                f"    open({str(fail_marker)!r}, 'w').close(); print('boom', file=sys.stderr); sys.exit(3)\n"
                "print('progress line'); print(json.dumps({'points': 7}))",
            ),
            lambda stdout: full_scale.with_items(full_scale.last_json(stdout), "points", "points"),
            prepare=lambda: (tmp_path / "prepared").write_text("yes"),
        ),
    ]


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def ran(tmp_path: Path) -> list[str]:
    return (tmp_path / "ran.txt").read_text().splitlines()


def test_a_failed_run_resumes_at_the_failed_stage_and_measures_each_stage(full_scale, tmp_path, capsys):
    out, config = tmp_path / "run", {"images": 3, "seed": 0, "workers": 1}
    stages = stub_stages(full_scale, tmp_path)
    written = []
    with pytest.raises(full_scale.BenchError, match="'fails once' ended with exit status 3: boom"):
        full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print, after_stage=written.append)
    assert ran(tmp_path) == ["memory", "worker cpu", "fails once"]
    assert len(written) == 3  # the JSON is rewritten after each finished stage and after the failure
    assert not (tmp_path / "prepared").exists()  # a first attempt has nothing to clear
    state = json.loads((out / full_scale.STATE_FILE).read_text())
    assert sorted(state["stages"]) == ["memory", "worker cpu"]
    assert state["failures"]["fails once"]["exit_status"] == 3
    assert "running" not in state

    state = full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print)
    assert ran(tmp_path) == ["memory", "worker cpu", "fails once", "fails once"]  # finished stages skipped
    assert (tmp_path / "prepared").read_text() == "yes"  # the retried stage's leftovers cleared first
    assert len(state["sessions"]) == 2

    memory, worker, retried = (state["stages"][name] for name in ("memory", "worker cpu", "fails once"))
    assert memory["peak_rss_bytes"] >= 200 * MiB  # the bytes the stub wrote, its own ru_maxrss
    assert memory["peak_group_rss_bytes"] >= 200 * MiB  # the sampler saw them during the 1.2 s hold
    assert memory["wall_s"] >= 1.2
    assert 0.4 <= worker["cpu_s"] <= worker["wall_s"] + 0.5  # the grandchild's CPU, counted through wait4
    assert (retried["attempts"], retried["items"], retried["unit"]) == (2, 7, "points")
    assert retried["figures"] == {"points": 7}
    assert retried["items_per_s"] == pytest.approx(7 / retried["wall_s"], rel=0.01)
    assert (out / "logs" / "fails_once.out").read_text() == 'progress line\n{"points": 7}\n'
    for record in (memory, worker, retried):
        assert len(record["load_average_before"]) == 3
        assert record["load_average_1min_max"] >= record["load_average_before"][0]

    reference = {"images": 1, "stages": [{"name": "fails once", "items_per_s": retried["items_per_s"] * 2}]}
    summary = full_scale.results(state, [stage.name for stage in stages], reference, Path("ref.json"))
    assert summary["complete"] is True
    assert summary["failures"] == {}  # the failure was made good
    assert [stage["name"] for stage in summary["stages"]] == ["memory", "worker cpu", "fails once"]
    assert summary["stages"][2]["throughput_vs_reference"] == pytest.approx(0.5, abs=0.002)
    assert summary["stages"][0]["throughput_vs_reference"] is None  # not in the reference
    assert summary["targets"]["stages_below_throughput_target"] == {"fails once": None}  # no reason known
    assert summary["targets"]["stages_above_peak_rss_target"] == {}
    assert summary["totals"]["wall_s"] == pytest.approx(sum(stage["wall_s"] for stage in summary["stages"]))
    assert summary["totals"]["peak_rss_bytes"] == memory["peak_rss_bytes"]  # the largest stage's
    assert (memory["session"], retried["session"]) == (0, 1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True, text=True).stdout
    assert summary["commit"] == commit.strip() and isinstance(summary["dirty"], bool)
    assert summary["machine"]["cpus"] == os.cpu_count()
    json.dumps(summary)  # what write_results writes must be plain JSON

    capsys.readouterr()
    full_scale.print_table(summary)
    rows = {line[:30].strip(): line[30:].split() for line in capsys.readouterr().out.splitlines()}
    assert rows["fails once"][4:7] == ["7", f"{retried['items_per_s']:.1f}", "0.50"]  # items, items/s, vs ref
    assert rows["memory"][2] == f"{memory['peak_rss_bytes'] / 1e6:.0f}"


def test_a_load_falling_as_a_stage_starts_is_not_a_peak_below_the_load_before(full_scale, tmp_path, monkeypatch):
    readings = iter([(1.5, 1.4, 0.9)] + [(1.25, 1.4, 0.9)] * 1000)  # the 1-minute load decays between two reads
    monkeypatch.setattr(full_scale.os, "getloadavg", lambda: next(readings))
    record = full_scale.StageRunner().run(python("pass"), tmp_path, tmp_path / "quiet", lambda pid: None)
    assert record["load_average_before"] == [1.5, 1.4, 0.9]
    assert record["load_average_1min_max"] == 1.5


def test_a_stopped_driver_stops_the_whole_stage_and_resumes_it(full_scale, tmp_path):
    out, config = tmp_path / "run", {"images": 3, "seed": 0, "workers": 1}
    pids = tmp_path / "pids"
    sleeper = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)"
    )
    slow = [full_scale.Stage("slow", lambda: python(sleeper), lambda _: {})]
    runner = full_scale.StageRunner()
    threading.Timer(1.5, runner.stop).start()
    started = time.perf_counter()
    with pytest.raises(full_scale.Interrupted):
        full_scale.run_pipeline(slow, out, config, runner, print)
    assert time.perf_counter() - started < 30
    time.sleep(0.2)
    assert not running(int(pids.read_text()))  # the stage's worker went with it
    state = json.loads((out / full_scale.STATE_FILE).read_text())
    assert state["stages"] == {} and state["attempts"] == {"slow": 1} and "running" not in state

    quick = [full_scale.Stage("slow", lambda: python("pass"), lambda _: {})]
    state = full_scale.run_pipeline(quick, out, config, full_scale.StageRunner(), print)
    assert state["stages"]["slow"]["attempts"] == 2


def test_a_run_paused_by_its_stop_time_ends_between_stages_and_continues_later(full_scale, tmp_path):
    """--stop-by: the second stage, predicted at 1.25 x 100 s x 3/2 images = 188 s, is not started with 100 s left."""
    from datetime import UTC, datetime, timedelta

    out, config = tmp_path / "run", {"images": 3, "seed": 0, "workers": 1}
    stages = stub_stages(full_scale, tmp_path)
    reference = {"images": 2, "stages": [{"name": "memory", "wall_s": 1.0}, {"name": "worker cpu", "wall_s": 100.0}]}
    started = datetime.now(UTC)
    pause = full_scale.pause_before_late_stages(started + timedelta(seconds=100), reference, 3, now=lambda: started)
    with pytest.raises(full_scale.Paused, match=r"'worker cpu' would take about 188 s .* 100 s are left"):
        full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print, reason_to_pause=pause)
    assert ran(tmp_path) == ["memory"]
    state = json.loads((out / full_scale.STATE_FILE).read_text())
    assert list(state["stages"]) == ["memory"] and state["attempts"] == {"memory": 1}  # nothing of the next ran

    state = full_scale.run_pipeline(stages[:2], out, config, full_scale.StageRunner(), print)
    assert ran(tmp_path) == ["memory", "worker cpu"]
    assert state["stages"]["worker cpu"]["attempts"] == 1  # timed in one piece


def test_a_finished_stage_measured_again_keeps_its_earlier_record(full_scale, tmp_path):
    out, config = tmp_path / "run", {"images": 3, "seed": 0, "workers": 1}
    stages = stub_stages(full_scale, tmp_path)[:1]
    first = full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print)["stages"]["memory"]
    with pytest.raises(full_scale.BenchError, match="no stage named 'memroy'"):
        full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print, measure_again=["memroy"])
    state = full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print, measure_again=["memory"])
    assert ran(tmp_path) == ["memory", "memory"]
    assert state["earlier"] == {"memory": [first]}
    assert (first["attempts"], state["stages"]["memory"]["attempts"]) == (1, 2)
    summary = full_scale.results(state, ["memory"], None, None)
    assert summary["earlier_measurements"] == {"memory": [first]}
    assert [stage["name"] for stage in summary["stages"]] == ["memory"]  # measured once in the totals
    full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print)
    assert ran(tmp_path) == ["memory", "memory"]  # without the option, a finished stage is skipped again


def test_a_stop_time_that_is_no_time_is_one_line(full_scale, capsys):
    with pytest.raises(SystemExit) as stopped:
        full_scale.parse_arguments(["--stop-by", "tonight"])
    assert stopped.value.code == 2
    assert "'tonight' is not a time like 2026-12-04T20:40" in capsys.readouterr().err
    assert full_scale.parse_arguments(["--stop-by", "2026-12-04T20:40"]).stop_by.tzinfo is not None


def test_a_stage_an_earlier_driver_left_running_is_refused(full_scale, tmp_path):
    out, config = tmp_path / "run", {"images": 3, "seed": 0, "workers": 1}
    orphan = subprocess.Popen(python("import time; time.sleep(60)"), process_group=0)
    try:
        out.mkdir()
        state = {"config": config, "stages": {}, "attempts": {"a": 1}, "sessions": []}
        full_scale.save_state(out, {**state, "running": {"stage": "a", "pgid": orphan.pid, "argv": []}})
        stages = [full_scale.Stage("a", lambda: python("pass"), lambda _: {})]
        with pytest.raises(
            full_scale.BenchError, match=f"'a' of an earlier run still runs \\(process group {orphan.pid}"
        ):
            full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print)
    finally:
        os.killpg(orphan.pid, signal.SIGKILL)
        orphan.wait()
    assert (
        full_scale.run_pipeline(stages, out, config, full_scale.StageRunner(), print)["stages"]["a"]["exit_status"] == 0
    )


def test_other_arguments_on_the_same_folder_are_refused(full_scale, tmp_path):
    out = tmp_path / "run"
    stages = [full_scale.Stage("a", lambda: python("pass"), lambda _: {})]
    full_scale.run_pipeline(stages, out, {"images": 3, "seed": 0, "workers": 1}, full_scale.StageRunner(), print)
    with pytest.raises(full_scale.BenchError, match="give the same arguments to resume it, or another --out"):
        full_scale.run_pipeline(stages, out, {"images": 4, "seed": 0, "workers": 1}, full_scale.StageRunner(), print)


def test_disk_check_refuses_a_run_the_disk_cannot_hold(full_scale, tmp_path):
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    # A reference of one image that took a fifth of the free space (corpus and store a tenth each).
    reference = {"complete": True, "images": 1, "totals": {"disk_bytes": {"corpus": free // 10, "store": free // 10}}}
    full_scale.check_disk(tmp_path / "new", 4, 1.0, reference)  # 80 % of the free space: accepted
    with pytest.raises(full_scale.BenchError, match="pass --no-disk-check"):
        full_scale.check_disk(tmp_path / "new", 6, 1.0, reference)  # 120 %
    full_scale.check_disk(tmp_path / "new", 12, 0.5, reference)  # half the side, a quarter of the bytes: 60 %
    with pytest.raises(full_scale.BenchError, match="--size-scale"):
        full_scale.check_disk(tmp_path / "new", 2, 1.0, {**reference, "size_scale": 0.5})  # 4 × 40 %


def test_dirty_means_a_tracked_file_changed_not_the_results_the_driver_writes(full_scale, tmp_path):
    def git(*arguments: str) -> None:
        subprocess.run(["git", *arguments], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "bench" / "results").mkdir(parents=True)
    for name in ("stage.py", "bench/results/full_scale.json"):
        (tmp_path / name).write_text("1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (tmp_path / "bench" / "results" / "full_scale.json").write_text("2\n")
    (tmp_path / "bench" / "new_bench.py").write_text("untracked\n")
    assert full_scale.git_state(tmp_path)["dirty"] is False
    (tmp_path / "stage.py").write_text("2\n")
    assert full_scale.git_state(tmp_path)["dirty"] is True


def test_a_run_resumed_at_another_commit_names_every_commit_its_stages_measured(full_scale):
    sessions = [
        {"commit": "a" * 40, "dirty": False},
        {"commit": "b" * 40, "dirty": False},  # started, then stopped before finishing a stage
        {"commit": "c" * 40, "dirty": True},
    ]
    assert full_scale.measured_commits(sessions, [{"session": 0}, {"session": 0}]) == {
        "commit": "a" * 40,
        "dirty": False,
    }
    assert full_scale.measured_commits(sessions, [{"session": 0}, {"session": 2}]) == {
        "commit": ["a" * 40, "c" * 40],
        "dirty": True,
    }


def record(name: str, wall: float, rss: int, items: int | None = None) -> dict:
    """A finished stage's record as the driver writes it: ``items`` in ``wall`` seconds, ``rss`` bytes at most."""
    return {
        "name": name,
        "wall_s": wall,
        "cpu_s": wall,
        "peak_rss_bytes": rss,
        "peak_group_rss_bytes": rss,
        "items": items,
        "items_per_s": None if items is None else items / wall,
        "disk_bytes": {"store": 10},
        "disk_total_bytes": 10,
        "session": 0,
        "load_average_before": [0.0, 0.0, 0.0],
        "load_average_1min_max": 0.0,
    }


def test_a_stage_beyond_a_target_carries_the_reason_stated_for_its_algorithm_or_none(full_scale):
    names = ["scale", "cluster classic complete", "cluster reduced density-peaks"]
    state = {
        "config": {"images": 100, "seed": 0, "workers": 1, "size_scale": 1.0},
        "sessions": [{"commit": "a" * 40, "dirty": False}],
        "stages": {
            "scale": record("scale", 100.0, 5, items=100),  # 1 image/s where the reference read 2
            "cluster classic complete": record("cluster classic complete", 500.0, 9 * 1024**3, items=100),
            "cluster reduced density-peaks": record("cluster reduced density-peaks", 1.0, 5, items=100),
        },
    }
    reference = {"images": 10, "stages": [{"name": name, "items_per_s": 2.0} for name in names]}
    targets = full_scale.results(state, names, reference, None)["targets"]
    below = targets["stages_below_throughput_target"]
    assert sorted(below) == ["cluster classic complete", "scale"]  # density peaks ran at 100 points/s
    assert below["scale"] is None  # nothing explains a slow scale reader: it is listed as unexplained
    assert "O(n²) time and memory" in below["cluster classic complete"]
    assert targets["stage_peak_rss_met"] is False
    assert list(targets["stages_above_peak_rss_target"]) == ["cluster classic complete"]
    assert "condensed distance matrix" in targets["stages_above_peak_rss_target"]["cluster classic complete"]


def test_the_second_run_is_timed_apart_from_the_pipeline(full_scale, capsys):
    """`semcurate demo` over the finished run has its own target (2 min) and is not in the 3 h total."""
    names = ["ingest", "report", full_scale.SECOND_RUN]
    state = {
        "config": {"images": 2, "seed": 0, "workers": 1, "size_scale": 1.0},
        "sessions": [{"commit": "a" * 40, "dirty": False}],
        "stages": {"ingest": record("ingest", 100.0, 5), "report": record("report", 20.0, 7)},
    }
    pending = full_scale.results(state, names, None, None)
    assert pending["complete"] is False and pending["second_run"] is None
    assert pending["targets"]["total_wall_met"] is True  # the pipeline itself is whole
    assert pending["targets"]["second_run_met"] is None

    state["stages"][full_scale.SECOND_RUN] = record(full_scale.SECOND_RUN, 150.0, 9)
    summary = full_scale.results(state, names, None, None)
    assert summary["complete"] is True
    assert [stage["name"] for stage in summary["stages"]] == ["ingest", "report"]
    assert summary["totals"]["wall_s"] == 120.0 and summary["totals"]["peak_rss_bytes"] == 7
    assert summary["second_run"]["wall_s"] == 150.0
    assert summary["targets"]["second_run_met"] is False  # 150 s > 120 s
    full_scale.print_table(summary)
    assert "demo again (not in the total)" in capsys.readouterr().out


def test_the_driver_splits_the_projection_the_invariant_stage_stored_and_places_with_the_descriptor(
    full_scale, tmp_path
):
    """The driver extracts each set the demo's tree joins, projects the joined set, splits that projection as
    ``semcurate demo`` does and places by the demo's placement set."""
    from semcurate.demo import PLACEMENT_SET, TREE_METHOD, TREE_PREPROCESSING, TREE_SOURCE_PARTS, TREE_SOURCE_SET

    assert TREE_SOURCE_PARTS == ("classic_particles", "scattering_centre")
    assert (TREE_SOURCE_SET, PLACEMENT_SET, TREE_METHOD) == (
        "classic_particles+scattering_centre",
        "classic",
        "louvain",
    )
    (tmp_path / "results" / "id").mkdir(parents=True)
    (tmp_path / "results" / "id" / "classic.id.json").write_text(json.dumps({"suggested_code_size": 7, "rows": 9}))
    (tmp_path / "results" / "reduce").mkdir()
    (tmp_path / "results" / "reduce" / "classic.inv5.json").write_text(  # another set's projection: not the tree's
        json.dumps({"feature_set": "classic.inv5", "variant_images": 9})
    )
    (tmp_path / "results" / "reduce" / "classic_particles+scattering_centre.inv61.json").write_text(
        json.dumps({"feature_set": "classic_particles+scattering_centre.inv61", "variant_images": 9})
    )
    stages = {stage.name: stage for stage in full_scale.semcurate_stages(tmp_path, 100, 0, 2)}
    names = list(stages)
    assert names.index("features classic_particles") < names.index("features scattering_centre")
    assert names.index("features scattering_centre") < names.index("id classic")
    for part in ("classic_particles", "scattering_centre"):
        assert stages[f"features {part}"].command()[3:7] == ["features", "extract", "--extractor", part]
    assert names.index("reduce classic") < names.index("invariant projection") < names.index("tree")
    invariant = stages["invariant projection"].command()
    assert invariant[3:7] == ["reduce", "classic_particles+scattering_centre", "--method", "invariant"]
    assert "--workers" in invariant
    tree = stages["tree"].command()
    assert tree[3:5] == ["tree", "build"] and tree[5] == "classic_particles+scattering_centre.inv61"
    assert tree[tree.index("--place-with") + 1] == "classic"
    assert tree[tree.index("--category-block") + 1] == "particle_facets"
    assert tree[tree.index("--method") + 1] == "louvain"
    assert tree[tree.index("--preprocessing") + 1] == TREE_PREPROCESSING
    guided = stages["tree Hierarchical"].command()
    assert names.index("evaluate") < names.index("tree Hierarchical"), (
        "evaluate scores the tree the labels did not stop"
    )
    assert guided[guided.index("--hierarchy") + 1] == "Hierarchical" and "--hierarchy" not in tree
    assert [word for word in guided if word not in ("--hierarchy", "Hierarchical")] == tree
    assert stages["invariant projection"].figures("")["feature_set"] == "classic_particles+scattering_centre.inv61"
