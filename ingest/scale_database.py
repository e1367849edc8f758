"""Scale-reading shell: read every ingested image's scale into the database, validate, count, make subsets.

* :func:`read_scales` reads each image that has no reading yet (resumable: a
  killed run loses at most the batch in flight), in worker processes that
  each keep one OCR engine open, from the lossless ``<md5>.tif`` in the store
  when there is one, else ``<md5>.jpg``.
* :func:`read_scale_files` reads files named directly, without the database.
* :func:`validate` compares readings with a hand-written CSV
  (``path, value, unit``) in the categories of the thesis' Table 2.3.
* :func:`histogram` counts images per scale (Table 2.4), optionally per label.
* :func:`create_subset` fixes a named subset of images by scale (the thesis'
  ``1u-2u``), which later stages take as input.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import sessionmaker

from semcurate.db.models import File, Image, Label, Subset, SubsetMember
from semcurate.db.models import ScaleReading as ReadingRow
from semcurate.ingest.length_text import NM_PER_UNIT, parse_length
from semcurate.ingest.methods import SCALE_SOURCES
from semcurate.ingest.ocr import get_engine
from semcurate.ingest.parallel import batched, parallel_map
from semcurate.ingest.scale_bar import READER_VERSION, ScaleReading, read_scale_bytes
from semcurate.ingest.walk import FileSkipped, read_regular

#: Readings per database transaction.
BATCH_SIZE = 100


class ScaleError(Exception):
    """A problem the admin must fix before scales can be read or used (one clear line)."""


def _silence_tifffile() -> None:
    # tifffile logs every malformed tag it meets; a corrupt vendor tag is already a recorded
    # reason here, so a batch over a messy repository must not flood the terminal.
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def read_image_file(task: tuple[str, Path]) -> tuple[str, ScaleReading]:
    """Worker: the reading of one stored image (OCR engine opened once per process)."""
    md5, path = task
    _silence_tifffile()
    try:
        data = read_regular(path)
    except FileSkipped as skipped:
        return md5, ScaleReading("error", reason=f"{path}: {skipped}")
    except OSError as error:
        return md5, ScaleReading("error", reason=f"cannot read {path}: {error.strerror}")
    return md5, read_scale_bytes(data, engine=get_engine())


def read_scale_files(paths: Iterable[Path], *, source: str = "auto") -> Iterator[tuple[Path, ScaleReading]]:
    """The scale reading of each file in ``paths``, read directly (no database, no store), one at a time.

    Parameters
    ----------
    paths : iterable of Path
        TIFF or JPG files.
    source : {"auto", "ocr", "metadata"}
        Where the scale comes from, see :data:`~semcurate.ingest.methods.SCALE_SOURCES`; ``metadata`` needs no
        OCR engine.

    Returns
    -------
    iterator of (Path, ScaleReading)
        In the order of ``paths``; a file that cannot be read gives status ``error`` with the reason, and so does
        one that is not a regular file (a pipe, a device: never read) or larger than
        :data:`~semcurate.ingest.walk.MAX_FILE_BYTES`.

    Raises
    ------
    ScaleError
        For an unknown ``source``.
    OcrUnavailable
        When ``source`` needs OCR and Tesseract cannot be loaded (raised here, before any file is read).
    """
    if source not in SCALE_SOURCES:
        raise ScaleError(f"unknown scale source {source!r}; choose one of {', '.join(SCALE_SOURCES)}")
    engine = None if source == "metadata" else get_engine()

    def readings() -> Iterator[tuple[Path, ScaleReading]]:
        for path in paths:
            try:
                data = read_regular(path)
            except FileSkipped as skipped:
                yield path, ScaleReading("error", reason=f"{path}: {skipped}")
                continue
            except OSError as error:
                yield path, ScaleReading("error", reason=f"cannot read {path}: {error.strerror}")
                continue
            yield path, read_scale_bytes(data, engine=engine, source=source)

    return readings()


def reading_row(md5: str, reading: ScaleReading) -> dict:
    """Column values of a :class:`semcurate.db.models.ScaleReading` row."""
    box = reading.stripe_box or (None, None, None, None)
    values = asdict(reading)
    for key in ("stripe_box", "evidence"):
        values.pop(key)
    return {
        **values,
        "image_md5": md5,
        "stripe_x0": box[0],
        "stripe_y0": box[1],
        "stripe_x1": box[2],
        "stripe_y1": box[3],
        "evidence": "; ".join(reading.evidence) or None,
        "reader_version": READER_VERSION,
    }


def read_scales(sessions: sessionmaker, store: Path, *, workers: int = 1, reread: bool = False, reporter=None) -> dict:
    """Read the scale of every image without a reading (all of them with ``reread``); return status counts."""
    store = Path(store)
    with sessions() as session:
        query = select(Image.md5, Image.jpg_only).order_by(Image.md5)
        if not reread:
            query = query.where(Image.md5.not_in(select(ReadingRow.image_md5)))
        todo = session.execute(query).all()
    tasks = [(md5, store / f"{md5}.{'jpg' if jpg_only else 'tif'}") for md5, jpg_only in todo]
    missing = [str(path) for _, path in tasks[:50] if not path.exists()]
    if tasks and len(missing) == min(len(tasks), 50):
        raise ScaleError(f"the store {store} does not hold the ingested images (e.g. {missing[0]}): pass --store")
    advance = reporter("reading scales", len(tasks)) if reporter and tasks else (lambda _n=1: None)
    for batch in batched(parallel_map(read_image_file, tasks, workers, _silence_tifffile), BATCH_SIZE):
        with sessions.begin() as session:
            md5s = [md5 for md5, _ in batch]
            session.execute(delete(ReadingRow).where(ReadingRow.image_md5.in_(md5s)))
            session.execute(insert(ReadingRow), [reading_row(md5, reading) for md5, reading in batch])
        advance(len(batch))
    return {"read": len(tasks), **status_counts(sessions)}


def status_counts(sessions: sessionmaker) -> dict:
    """Readings per status and per source, plus flagged disagreements, over the whole database."""
    with sessions() as session:
        statuses = dict(session.execute(select(ReadingRow.status, func.count()).group_by(ReadingRow.status)).all())
        sources = dict(
            session.execute(
                select(ReadingRow.source, func.count())
                .where(ReadingRow.source.is_not(None))
                .group_by(ReadingRow.source)
            ).all()
        )
        flagged = session.scalar(select(func.count()).select_from(ReadingRow).where(ReadingRow.flagged))
        unread = session.scalar(
            select(func.count()).select_from(Image).where(Image.md5.not_in(select(ReadingRow.image_md5)))
        )
    return {
        "by_status": dict(sorted(statuses.items())),
        "by_source": dict(sorted(sources.items())),
        "flagged_disagreements": flagged,
        "images_without_reading": unread,
    }


def scale_key(value: float, unit: str) -> str:
    """How a scale is written in tables and subset criteria: ``'1 µm'``, ``'200 nm'``."""
    return f"{value:g} {unit}"


def _truth_rows(path: Path) -> list[dict]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise ScaleError(f"cannot read {path}: {error.strerror}") from None
    if not rows or "path" not in rows[0]:
        raise ScaleError(f"{path} needs a header with at least: path, value, unit")
    value_key = "value" if "value" in rows[0] else "scale_value"
    unit_key = "unit" if "unit" in rows[0] else "scale_unit"
    if value_key not in rows[0] or unit_key not in rows[0]:
        raise ScaleError(f"{path} needs columns value and unit (or scale_value and scale_unit)")
    return [{"path": row["path"], "value": row[value_key], "unit": row[unit_key]} for row in rows]


def _image_of_path(sessions: sessionmaker) -> dict[str, str]:
    """Every way a truth CSV may name an image: source relpath, absolute source path, store file name."""
    names = {}
    with sessions() as session:
        for root, relpath, md5 in session.execute(
            select(File.source_root, File.relpath, File.image_md5).where(File.image_md5.is_not(None))
        ):
            names.setdefault(relpath, md5)
            names.setdefault(f"{root}/{relpath}", md5)
        for (md5,) in session.execute(select(Image.md5)):
            names[f"{md5}.tif"] = names[f"{md5}.jpg"] = md5
    return names


def _lookup(names: dict[str, str], path: str) -> str | None:
    """The image a truth path names, dropping leading folders until a known path remains."""
    parts = path.replace("\\", "/").strip("/").split("/")
    for start in range(len(parts)):
        md5 = names.get("/".join(parts[start:]))
        if md5:
            return md5
    return None


def validate(sessions: sessionmaker, truth_csv: Path, *, out_dir: Path | None = None) -> dict:
    """Compare readings with ``truth_csv`` (path, value, unit; empty value = no scale bar): thesis Table 2.3.

    Each image counts once, however many of its files the CSV lists (the
    first row naming it decides its expected scale). With ``out_dir`` the
    result is also written to ``out_dir/validation.json`` (the report reads
    ``results/scale/``).
    """
    names = _image_of_path(sessions)
    seen = set()
    with sessions() as session:
        readings = {row.image_md5: row for row in session.scalars(select(ReadingRow))}
    outcome: Counter = Counter()
    wrong, unmatched = [], []
    for row in _truth_rows(Path(truth_csv)):
        md5 = _lookup(names, row["path"])
        if md5 is None:
            unmatched.append(row["path"])
            continue
        if md5 in seen:
            continue
        seen.add(md5)
        reading = readings.get(md5)
        expected = parse_length(f"{row['value']} {row['unit']}") if row["value"].strip() else None
        if reading is None:
            outcome["not read yet"] += 1
        elif expected is None:
            outcome["positive" if reading.status == "no_stripe" or reading.value is None else "wrong scale"] += 1
        elif reading.status in ("no_stripe", "multiple_stripes"):
            outcome["stripe not detected"] += 1
        elif reading.value is None:
            outcome["unreadable"] += 1
        elif reading.unit == expected.unit and abs(reading.value - expected.value) <= 1e-9 * expected.value:
            outcome["positive"] += 1
        else:
            outcome["wrong scale"] += 1
            wrong.append(
                (row["path"], scale_key(expected.value, expected.unit), scale_key(reading.value, reading.unit))
            )
    total = sum(outcome.values())
    table = {
        category: {"images": outcome[category], "percent": round(100 * outcome[category] / total, 2) if total else 0}
        for category in ("positive", "stripe not detected", "wrong scale", "unreadable", "not read yet")
    }
    result = {"total": total, "table": table, "wrong": wrong, "unmatched_paths": unmatched}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "validation.json").write_text(
            json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return result


def histogram(sessions: sessionmaker, dataset: str | None = None) -> tuple[list[str], list[tuple[str, dict]]]:
    """Images per scale, largest scale first (thesis Table 2.4); per top category of ``dataset`` if given.

    Returns the column names and ``(scale, {column: count})`` rows; columns are
    ``images`` without a dataset, else the categories plus ``unlabelled`` and ``total``.
    """
    with sessions() as session:
        scales = session.execute(
            select(ReadingRow.image_md5, ReadingRow.value, ReadingRow.unit).where(ReadingRow.value.is_not(None))
        ).all()
        categories = {}
        if dataset is not None:
            rows = session.execute(
                select(Label.image_md5, Label.category).where(Label.dataset == dataset, Label.image_md5.is_not(None))
            ).all()
            if not rows:
                raise ScaleError(f"no labels of dataset {dataset!r}: import it with `semcurate labels import`")
            categories = {md5: category for md5, category in rows}
    counts: dict = defaultdict(Counter)
    for md5, value, unit in scales:
        counts[(value * NM_PER_UNIT[unit], scale_key(value, unit))][categories.get(md5, "unlabelled")] += 1
    columns = sorted({column for counter in counts.values() for column in counter} - {"unlabelled"})
    columns = [*columns, "unlabelled", "total"] if dataset else ["images"]
    table = []
    for (_nm, key), counter in sorted(counts.items(), reverse=True):
        if dataset:
            table.append(
                (key, {**{column: counter.get(column, 0) for column in columns[:-1]}, "total": sum(counter.values())})
            )
        else:
            table.append((key, {"images": counter["unlabelled"]}))
    return columns, table


def create_subset(sessions: sessionmaker, name: str, scales: list[str], *, replace: bool = False) -> dict:
    """Fix subset ``name`` as the images whose bar reads one of ``scales`` ("1um", "2 µm", "200nm")."""
    wanted = []
    for text in scales:
        length = parse_length(text)
        if length is None:
            raise ScaleError(f"cannot read {text!r} as a scale: write a number and nm, µm (or um) or mm, e.g. 2um")
        wanted.append(length)
    with sessions.begin() as session:
        if session.get(Subset, name) is not None:
            if not replace:
                raise ScaleError(f"subset {name!r} exists: pass --replace to rebuild it")
            session.execute(delete(SubsetMember).where(SubsetMember.subset == name))
            session.execute(delete(Subset).where(Subset.name == name))
        members = set()
        for length in wanted:
            members.update(
                session.scalars(
                    select(ReadingRow.image_md5).where(
                        ReadingRow.status == "ok",
                        ReadingRow.unit == length.unit,
                        ReadingRow.value.between(length.value * (1 - 1e-9), length.value * (1 + 1e-9)),
                    )
                )
            )
        criteria = {"scales": [scale_key(length.value, length.unit) for length in wanted], "source": "data bar"}
        session.add(Subset(name=name, criteria=json.dumps(criteria, ensure_ascii=False), size=len(members)))
        session.flush()
        if members:
            session.execute(insert(SubsetMember), [{"subset": name, "image_md5": md5} for md5 in sorted(members)])
    return {"name": name, "size": len(members), **criteria}


def list_subsets(sessions: sessionmaker) -> list[dict]:
    """Every subset with its size, criteria and creation time."""
    with sessions() as session:
        return [
            {
                "name": row.name,
                "size": row.size,
                "criteria": row.criteria,
                "created": row.created_at.isoformat(" ", "seconds"),
            }
            for row in session.scalars(select(Subset).order_by(Subset.name))
        ]
