"""Importing a labelled-dataset folder and tying its files to ingested images.

A labelled dataset is a folder of image files whose sub-folder path is the
label: ``SEM_Dataset/Nanowires/x.jpg`` is labelled ``Nanowires``,
``Hierarchical/Nanowires/Forest/crust/y.jpg`` is labelled
``Nanowires/Forest/crust``.  Each file is matched to an image as in thesis
section 2.2:

1. ``md5`` — its bytes equal a file we hold: a store JPG or TIFF, or a
   source file (a TIFF's JPG pair, a JPG-only image, or one of their copies).
   A labelled TIFF is matched this way only: one that matches nothing is
   skipped with the reason (re-encoding ties JPGs to TIFFs, not TIFFs to
   TIFFs);
2. ``reencoded`` — re-encoding a TIFF of the same size and perceptual hash
   with the file's own JPEG tables reproduces its bytes (the thesis' "different
   compression"); ``pixels`` — failing that, a TIFF whose pixels differ by at
   most :data:`semcurate.ingest.rendition.PIXEL_TOLERANCE` grey levels;
3. ``none`` — no image; the file is still recorded.

The counts are the thesis' Table 2.2: files, unique hashes, categories,
matched, unmatched, and conflicting identities (the same image, or the same
bytes when unmatched, filed under different labels).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import sessionmaker

from semcurate.db.models import File, Label, LabelDataset
from semcurate.db.models import Image as ImageRow
from semcurate.ingest.formats import INGESTED_FORMATS, JPG, TIFF, detect_format
from semcurate.ingest.images import DEFAULT_MAX_PIXELS, ImageProblem, decode_image, perceptual_hash
from semcurate.ingest.parallel import parallel_map
from semcurate.ingest.rendition import Candidate, CandidateIndex, match_rendition
from semcurate.ingest.walk import FileSkipped, name_to_text, read_regular, text_to_name, walk_tree


class LabelImportError(Exception):
    """The dataset folder cannot be imported (one clear line)."""


@dataclass(frozen=True)
class LabelledFile:
    """One image file of a dataset: its path below the root (text, see :mod:`semcurate.ingest.walk`), label path,
    MD5, and format (``JPG`` or ``TIFF``)."""

    relpath: str
    category_path: str
    md5: str
    format: str = JPG


def scan_dataset(root: Path) -> tuple[list[LabelledFile], list[str]]:
    """The labelled image files under ``root`` and the reasons others were skipped.

    Image files directly in ``root`` have no category and are skipped, as
    are unreadable files and non-image formats.
    """
    files, skipped = [], []
    for entry in walk_tree(root):
        if entry.problem:
            skipped.append(f"{entry.relpath}: {entry.problem}")
            continue
        if "/" not in entry.relpath:
            skipped.append(f"{entry.relpath}: not inside a category folder")
            continue
        try:
            data = read_regular(root / text_to_name(entry.relpath))
        except FileSkipped as problem:
            skipped.append(f"{entry.relpath}: {problem}")
            continue
        except OSError as error:
            skipped.append(f"{entry.relpath}: cannot read: {error.strerror}")
            continue
        fmt = detect_format(data[:16], entry.relpath)
        if fmt not in INGESTED_FORMATS:
            skipped.append(f"{entry.relpath}: not a TIFF or JPG")
            continue
        category_path = entry.relpath.rsplit("/", 1)[0]
        files.append(LabelledFile(entry.relpath, category_path, hashlib.md5(data).hexdigest(), fmt))
    return files, skipped


_CANDIDATES: CandidateIndex | None = None
_STORE: Path | None = None


def _install(index: CandidateIndex, store: Path) -> None:
    global _CANDIDATES, _STORE
    _CANDIDATES, _STORE = index, store


def match_by_reencoding(task: tuple[Path, str]) -> tuple[str, str | None, str]:
    """Worker: ``(md5, image md5 or None, how)`` for one labelled file not matched by MD5."""
    path, md5 = task
    try:
        decoded = decode_image(read_regular(path), DEFAULT_MAX_PIXELS)
    except (ImageProblem, FileSkipped, OSError):
        return md5, None, "none"
    candidates = _CANDIDATES.near(decoded.width, decoded.height, perceptual_hash(decoded.display))
    if not candidates:
        return md5, None, "none"
    match = match_rendition(
        decoded.source,
        md5,
        candidates,
        lambda candidate: decode_image((_STORE / f"{candidate}.tif").read_bytes(), DEFAULT_MAX_PIXELS).display,
    )
    return (md5, match.md5, match.how) if match else (md5, None, "none")


def count_conflicts(rows: list[tuple[str | None, str, str]]) -> int:
    """Identities filed under more than one label; rows are ``(image_md5, file_md5, category_path)``."""
    labels_of = defaultdict(set)
    for image_md5, file_md5, category_path in rows:
        labels_of[image_md5 or f"file:{file_md5}"].add(category_path)
    return sum(1 for labels in labels_of.values() if len(labels) > 1)


def import_labels(
    directory: Path,
    name: str,
    sessions: sessionmaker,
    store: Path,
    *,
    workers: int = 1,
    reporter=None,
) -> dict:
    """Import (or re-import, replacing) dataset ``name`` from ``directory``; return its Table 2.2 row."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LabelImportError(f"dataset folder {directory} does not exist or is not a folder")
    files, skipped = scan_dataset(directory)
    if not files:
        raise LabelImportError(f"no labelled TIFF or JPG files under {directory} (expected CATEGORY/…/file.jpg)")
    with sessions() as session:
        by_md5 = dict(session.execute(select(ImageRow.jpg_md5, ImageRow.md5)).all())
        by_md5.update((md5, md5) for md5 in session.scalars(select(ImageRow.md5)))  # the store's <md5>.tif
        for file_md5, image_md5 in session.execute(
            select(File.md5, File.image_md5).where(File.image_md5.is_not(None), File.format.in_((JPG, TIFF)))
        ):
            by_md5.setdefault(file_md5, image_md5)
        index = CandidateIndex(
            Candidate(md5, width, height, phash)
            for md5, width, height, phash in session.execute(
                select(ImageRow.md5, ImageRow.width, ImageRow.height, ImageRow.phash).where(
                    ImageRow.source_format == TIFF
                )
            )
        )
    unmatched_tiffs = [file for file in files if file.format == TIFF and file.md5 not in by_md5]
    skipped += [f"{file.relpath}: a TIFF whose MD5 matches no ingested image" for file in unmatched_tiffs]
    files = [file for file in files if not (file.format == TIFF and file.md5 not in by_md5)]
    if not files:
        raise LabelImportError(f"no labelled file under {directory} could be imported: {skipped[0]}")
    matches: dict[str, tuple[str | None, str]] = {
        file.md5: (by_md5[file.md5], "md5") for file in files if file.md5 in by_md5
    }
    first_path = {}
    for file in files:
        first_path.setdefault(file.md5, directory / text_to_name(file.relpath))
    tasks = [(path, md5) for md5, path in first_path.items() if md5 not in matches]
    advance = reporter(f"matching {name}", len(tasks)) if reporter and tasks else (lambda _n=1: None)
    for md5, image_md5, how in parallel_map(match_by_reencoding, tasks, workers, _install, (index, Path(store))):
        matches[md5] = (image_md5, how)
        advance(1)
    rows = [
        {
            "dataset": name,
            "relpath": file.relpath,
            "file_md5": file.md5,
            "category_path": file.category_path,
            "category": file.category_path.split("/")[0],
            "image_md5": matches[file.md5][0],
            "match": matches[file.md5][1],
        }
        for file in files
    ]
    unique = {file.md5 for file in files}
    summary = {
        "name": name,
        "directory": name_to_text(str(directory.resolve())),
        "n_files": len(files),
        "n_unique": len(unique),
        "n_matched": sum(1 for md5 in unique if matches[md5][0] is not None),
        "n_matched_reencoded": sum(1 for md5 in unique if matches[md5][1] in ("reencoded", "pixels")),
        "n_unmatched": sum(1 for md5 in unique if matches[md5][0] is None),
        "n_conflicting": count_conflicts([(r["image_md5"], r["file_md5"], r["category_path"]) for r in rows]),
    }
    with sessions.begin() as session:
        session.execute(delete(Label).where(Label.dataset == name))
        session.execute(delete(LabelDataset).where(LabelDataset.name == name))
        session.add(LabelDataset(**summary))
        session.flush()
        session.execute(insert(Label), rows)
    return {
        **summary,
        "n_categories": len({file.category_path.split("/")[0] for file in files}),
        "n_leaves": len({file.category_path for file in files}),
        "n_skipped": len(skipped),
        "skipped": skipped,
    }


def dataset_table(sessions: sessionmaker) -> list[dict]:
    """Table 2.2 for every imported dataset.

    ``categories`` counts the top-level categories (first path level,
    ``Nanowires``), ``leaves`` the distinct full label paths
    (``Nanowires/vertical``); for a flat dataset the two are equal.
    """
    with sessions() as session:
        paths: dict[str, set[str]] = {}
        for dataset, path in session.execute(select(Label.dataset, Label.category_path).distinct()):
            paths.setdefault(dataset, set()).add(path)
        return [
            {
                "name": row.name,
                "categories": len({path.split("/")[0] for path in paths.get(row.name, ())}),
                "leaves": len(paths.get(row.name, ())),
                "files": row.n_files,
                "unique hashes": row.n_unique,
                "matched": row.n_matched,
                "matched by re-encoding": row.n_matched_reencoded,
                "no match": row.n_unmatched,
                "conflicting": row.n_conflicting,
            }
            for row in session.scalars(select(LabelDataset).order_by(LabelDataset.name))
        ]


def category_distribution(
    sessions: sessionmaker, dataset: str | None = None, depth: int = 1
) -> dict[str, dict[str, int]]:
    """Distinct matched images per label (cut to ``depth`` levels), per dataset (thesis Fig. 2.3)."""
    query = select(Label.dataset, Label.category_path, Label.image_md5).where(Label.image_md5.is_not(None))
    if dataset is not None:
        query = query.where(Label.dataset == dataset)
    images = defaultdict(lambda: defaultdict(set))
    with sessions() as session:
        for name, category_path, image_md5 in session.execute(query):
            images[name]["/".join(category_path.split("/")[:depth])].add(image_md5)
    return {
        name: {label: len(members) for label, members in sorted(by_label.items())}
        for name, by_label in sorted(images.items())
    }
