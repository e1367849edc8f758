"""Image-quality shell: score every ingested image, set the repository's thresholds, flag, list, exclude.

* :func:`score_images` scores each image that has no score yet
  (:func:`semcurate.ingest.quality.score_image`; resumable: a killed run
  loses at most the batch in flight), in worker processes, from the lossless
  ``<md5>.tif`` in the store when there is one (16-bit and float kept as
  such), else ``<md5>.jpg``, with the data bar the scale reader found cut
  away; an image scored with its bar before its bar was found is scored
  again.  Then :func:`apply_thresholds` sets every flag's threshold from the
  score distributions of the whole repository (overridable), records them
  with the run and stores each image's flags.
* :func:`flagged_images` lists the images one flag raised, worst first;
  :func:`exclude_flagged` fixes a subset of the scored images that raise none
  of the given flags (nothing is deleted); :func:`score_table` gives every
  stored score as arrays (for the report and the benchmark).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import sessionmaker

from semcurate.db.models import File, Image, QualityRun, QualityScore, Subset, SubsetMember
from semcurate.db.models import ScaleReading as ReadingRow
from semcurate.ingest.images import ImageProblem, decode_image
from semcurate.ingest.parallel import batched, parallel_map
from semcurate.ingest.quality import (
    FLAG_RULES,
    FLAGS,
    SCORE_NAMES,
    UNUSABLE_PICTURE_FLAGS,
    QualityScores,
    derived_scores,
    score_image,
    set_thresholds,
)
from semcurate.ingest.walk import FileSkipped, read_regular

#: Version of the scores; images scored by another version are scored again.
SCORER_VERSION = "3"
#: Scores per database transaction.
BATCH_SIZE = 100
#: Pillow modes whose pixels are scored as decoded (16-bit, 32-bit integer, float) rather than as the 8-bit rendition.
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class QualityError(Exception):
    """A problem the admin must fix before images can be scored or flags used (one clear line)."""


def _unreadable(reason: str) -> QualityScores:
    return QualityScores(width=0, height=0, picture_height=0, bar_included=True, aspect=0.0, reason=reason)


def score_file(task: tuple[str, Path, tuple[int, int, int, int] | None]) -> tuple[str, QualityScores]:
    """Worker: the quality scores of one stored image, or a reason why there are none."""
    md5, path, stripe_box = task
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    try:
        data = read_regular(path)
        decoded = decode_image(data)
    except FileSkipped as skipped:
        return md5, _unreadable(f"{path}: {skipped}")
    except OSError as error:
        return md5, _unreadable(f"cannot read {path}: {error.strerror}")
    except ImageProblem as problem:
        return md5, _unreadable(f"{path}: {problem.reason}")
    source = decoded.source if decoded.source.mode in WIDE_MODES else decoded.display
    return md5, score_image(np.asarray(source), stripe_box)


def _row(md5: str, scores: QualityScores) -> dict:
    values = asdict(scores)
    values["charging_rows"] = " ".join(str(row) for row in scores.charging_rows) or None
    return {**values, "image_md5": md5, "flags": "", "scorer_version": SCORER_VERSION}


def _todo(sessions: sessionmaker, rescore: bool) -> list[tuple[str, bool, tuple | None]]:
    """``(md5, jpg_only, stripe box)`` of the images to score: unscored, of another version, or scored with a
    bar that the scale reader has found since."""
    stripe = (ReadingRow.stripe_x0, ReadingRow.stripe_y0, ReadingRow.stripe_x1, ReadingRow.stripe_y1)
    with sessions() as session:
        query = (
            select(Image.md5, Image.jpg_only, *stripe)
            .outerjoin(ReadingRow, ReadingRow.image_md5 == Image.md5)
            .outerjoin(QualityScore, QualityScore.image_md5 == Image.md5)
            .order_by(Image.md5)
        )
        if not rescore:
            query = query.where(
                or_(
                    QualityScore.image_md5.is_(None),
                    QualityScore.scorer_version != SCORER_VERSION,
                    QualityScore.bar_included & ReadingRow.stripe_y0.is_not(None),
                )
            )
        rows = session.execute(query).all()
    return [(md5, jpg_only, None if box[1] is None else tuple(box)) for md5, jpg_only, *box in rows]


def score_images(
    sessions: sessionmaker,
    store: Path,
    *,
    workers: int = 1,
    rescore: bool = False,
    overrides: Mapping[str, float] | None = None,
    rules: Mapping[str, Mapping] | None = None,
    reporter: Callable | None = None,
    scheduler: str | None = None,
) -> dict:
    """Score every image that needs it, then set the thresholds and flags (:func:`apply_thresholds`).

    The images are scored in ``workers`` local processes, or on the Dask
    workers of ``scheduler`` (:func:`~semcurate.ingest.parallel.parallel_map`).

    Returns the summary: ``scored`` now, ``unscored`` (images that could not
    be read, with a reason), ``bar_included`` (images scored with their data
    bar: no bar found), and :func:`apply_thresholds`' run id, thresholds and
    flag counts.
    """
    store = Path(store)
    todo = _todo(sessions, rescore)
    tasks = [(md5, store / f"{md5}.{'jpg' if jpg_only else 'tif'}", box) for md5, jpg_only, box in todo]
    missing = [str(path) for _, path, _ in tasks[:50] if not path.exists()]
    if tasks and len(missing) == min(len(tasks), 50):
        raise QualityError(f"the store {store} does not hold the ingested images (e.g. {missing[0]}): pass --store")
    advance = reporter("scoring image quality", len(tasks)) if reporter and tasks else (lambda _n=1: None)
    for batch in batched(parallel_map(score_file, tasks, workers, scheduler=scheduler), BATCH_SIZE):
        with sessions.begin() as session:
            md5s = [md5 for md5, _ in batch]
            session.execute(delete(QualityScore).where(QualityScore.image_md5.in_(md5s)))
            session.execute(insert(QualityScore), [_row(md5, scores) for md5, scores in batch])
        advance(len(batch))
    summary = apply_thresholds(sessions, overrides=overrides, rules=rules)
    with sessions() as session:
        summary["unscored"] = session.scalar(select(func.count()).where(QualityScore.width == 0)) or 0
        summary["bar_included"] = session.scalar(select(func.count()).where(QualityScore.bar_included)) or 0
    return {"scored": len(tasks), **summary}


def score_table(sessions: sessionmaker) -> tuple[list[str], dict[str, np.ndarray]]:
    """The md5s of the scored images and one float array per score (NaN where missing), plus width and height."""
    columns = ("width", "height", *SCORE_NAMES)
    with sessions() as session:
        rows = session.execute(
            select(QualityScore.image_md5, *(getattr(QualityScore, name) for name in columns))
            .where(QualityScore.width > 0)
            .order_by(QualityScore.image_md5)
        ).all()
    md5s = [row[0] for row in rows]
    table = {
        name: np.array([np.nan if row[index + 1] is None else row[index + 1] for row in rows], dtype=np.float64)
        for index, name in enumerate(columns)
    }
    return md5s, table


def merged_rules(rules: Mapping[str, Mapping] | None) -> dict[str, dict]:
    """:data:`~semcurate.ingest.quality.FLAG_RULES` with each flag's ``z`` and ``bounds`` updated from ``rules``."""
    merged = {flag: dict(rule) for flag, rule in FLAG_RULES.items()}
    for flag, changes in (rules or {}).items():
        if flag not in merged:
            raise QualityError(f"no flag named {flag!r} in the configuration; flags are {', '.join(FLAGS)}")
        unknown = set(changes) - {"z", "bounds"}
        if unknown:
            raise QualityError(f"flag {flag}: only z and bounds can be configured, not {', '.join(sorted(unknown))}")
        try:
            if "z" in changes:
                merged[flag]["z"] = float(changes["z"])
            if "bounds" in changes:
                low, high = (float(bound) for bound in changes["bounds"])
                merged[flag]["bounds"] = (min(low, high), max(low, high))
        except (TypeError, ValueError):
            raise QualityError(f"flag {flag}: z is a number and bounds two numbers, e.g. [20, 50]") from None
    return merged


def apply_thresholds(
    sessions: sessionmaker,
    *,
    overrides: Mapping[str, float] | None = None,
    rules: Mapping[str, Mapping] | None = None,
) -> dict:
    """Set every flag's threshold from the stored scores, store each image's flags, record the run.

    Returns ``run_id``, ``images`` (scored), ``thresholds`` (per flag: score,
    direction, value, how) and ``flag_counts`` (images per flag).

    Raises
    ------
    QualityError
        For an override or rule naming no flag.
    """
    chosen = merged_rules(rules)
    unknown = sorted(set(overrides or {}) - set(FLAGS))
    if unknown:
        raise QualityError(f"no flag named {', '.join(unknown)}; flags are {', '.join(FLAGS)}")
    md5s, table = score_table(sessions)
    thresholds = set_thresholds(table, overrides, chosen) if md5s else {}
    derived = derived_scores(table) if md5s else {}
    raised = {
        flag: threshold.raised_many(derived[threshold.score]) if md5s else np.zeros(0, bool)
        for flag, threshold in thresholds.items()
    }
    flags_of = [
        ",".join(flag for flag in FLAGS if flag in raised and raised[flag][index]) for index in range(len(md5s))
    ]
    counts = {flag: int(raised[flag].sum()) if flag in raised else 0 for flag in FLAGS}
    described = {flag: {**asdict(threshold)} for flag, threshold in thresholds.items()}
    with sessions.begin() as session:
        run = QualityRun(
            scorer_version=SCORER_VERSION,
            n_images=len(md5s),
            thresholds=json.dumps(described),
            config=json.dumps({"overrides": dict(overrides or {}), "rules": chosen}),
            flag_counts=json.dumps(counts),
        )
        session.add(run)
        session.flush()
        run_id = run.id
        session.execute(update(QualityScore).values(flags="", run_id=run_id))
        changed = [{"image_md5": md5, "flags": flags} for md5, flags in zip(md5s, flags_of, strict=True) if flags]
        for batch in batched(changed, 500):
            session.execute(update(QualityScore), [{**row, "run_id": run_id} for row in batch])
    return {"run_id": run_id, "images": len(md5s), "thresholds": described, "flag_counts": counts}


def latest_run(sessions: sessionmaker) -> dict | None:
    """The newest quality run as a dict (thresholds and counts decoded), or None before any."""
    with sessions() as session:
        run = session.scalar(select(QualityRun).order_by(QualityRun.id.desc()).limit(1))
        if run is None:
            return None
        return {
            "run_id": run.id,
            "images": run.n_images,
            "thresholds": json.loads(run.thresholds),
            "flag_counts": json.loads(run.flag_counts),
            "created": run.created_at.isoformat(" ", "seconds"),
        }


def _check_flags(flags: Sequence[str]) -> None:
    unknown = [flag for flag in flags if flag not in FLAGS]
    if unknown:
        raise QualityError(f"unknown flag {unknown[0]!r}; choose one of {', '.join(FLAGS)}")


def raised_flags(
    sessions: sessionmaker, flags: Sequence[str] = UNUSABLE_PICTURE_FLAGS
) -> tuple[int | None, dict[str, tuple[str, ...]]]:
    """The newest quality run's id and, for each image it flagged with any of ``flags``, those of its flags.

    ``(None, {})`` before any quality run: nothing is known to be unusable.

    Raises
    ------
    QualityError
        For an unknown flag.
    """
    _check_flags(flags)
    run = latest_run(sessions)
    if run is None:
        return None, {}
    wanted = set(flags)
    with sessions() as session:
        rows = session.execute(select(QualityScore.image_md5, QualityScore.flags).where(QualityScore.flags != "")).all()
    raised = {md5: tuple(flag for flag in listed.split(",") if flag in wanted) for md5, listed in rows}
    return run["run_id"], {md5: hit for md5, hit in raised.items() if hit}


def flagged_images(sessions: sessionmaker, flag: str) -> list[dict]:
    """The images the newest run flagged ``flag``, worst first: md5, the score and its threshold, a source path.

    Raises
    ------
    QualityError
        For an unknown flag, or when no quality run exists yet.
    """
    _check_flags([flag])
    run = latest_run(sessions)
    if run is None:
        raise QualityError("no quality scores yet: run `semcurate quality`")
    threshold = run["thresholds"][flag]
    score = threshold["score"]
    column = {"clipped": QualityScore.clipped_low + QualityScore.clipped_high}.get(score)
    with sessions() as session:
        if column is None and score == "size_ratio":
            column = QualityScore.width * QualityScore.height
        elif column is None:
            column = getattr(QualityScore, score)
        rows = session.execute(
            select(QualityScore.image_md5, column, QualityScore.flags, QualityScore.charging_rows)
            .where(QualityScore.flags.contains(flag))
            .order_by(column.asc() if threshold["direction"] == "below" else column.desc())
        ).all()
        paths = dict(
            session.execute(
                select(File.image_md5, func.min(File.relpath))
                .where(File.status == "image", File.image_md5.in_([row[0] for row in rows]))
                .group_by(File.image_md5)
            ).all()
        )
    return [
        {
            "md5": md5,
            score: value,
            "threshold": threshold["value"],
            "flags": flags,
            **({"charging_rows": charging_rows or ""} if flag == "charging" else {}),
            "path": paths.get(md5, ""),
        }
        for md5, value, flags, charging_rows in rows
        if flag in flags.split(",")
    ]


def exclude_flagged(sessions: sessionmaker, flags: Sequence[str], name: str, *, replace: bool = False) -> dict:
    """Fix subset ``name`` as the scored images that raise none of ``flags`` (nothing is deleted).

    Images never scored (or unreadable) are left out too: only images known
    to be good are in it.  Returns the subset's name, size, the flags, how
    many images were left out for them, and how many were not scored.
    """
    _check_flags(flags)
    if not flags:
        raise QualityError("name at least one --flag to exclude")
    run = latest_run(sessions)
    if run is None:
        raise QualityError("no quality scores yet: run `semcurate quality` first")
    with sessions.begin() as session:
        if session.get(Subset, name) is not None:
            if not replace:
                raise QualityError(f"subset {name!r} exists: pass --replace to rebuild it")
            session.execute(delete(SubsetMember).where(SubsetMember.subset == name))
            session.execute(delete(Subset).where(Subset.name == name))
        scored = session.execute(select(QualityScore.image_md5, QualityScore.flags).where(QualityScore.width > 0)).all()
        excluded = Counter()
        members = []
        for md5, raised in scored:
            hit = set(raised.split(",")) & set(flags)
            if hit:
                excluded.update(hit)
            else:
                members.append(md5)
        total = session.scalar(select(func.count()).select_from(Image)) or 0
        criteria = {"quality": "none of the flags", "flags": sorted(flags), "quality_run": run["run_id"]}
        session.add(Subset(name=name, criteria=json.dumps(criteria), size=len(members)))
        session.flush()
        for batch in batched(members, 1000):
            session.execute(insert(SubsetMember), [{"subset": name, "image_md5": md5} for md5 in batch])
    return {
        "name": name,
        "size": len(members),
        "flags": sorted(flags),
        "excluded": {flag: excluded[flag] for flag in sorted(flags)},
        "not_scored": total - len(scored),
    }
