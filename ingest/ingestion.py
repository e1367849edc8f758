"""Ingestion shell: walk a source tree, hash, classify, admit into the flat store.

Thesis section 2.1, step by step, with every file accounted for:

1. **Inventory.**  Walk the source (read-only, loops skipped), stat every
   file, MD5 the new or changed ones in parallel, and record each with its
   format (:mod:`semcurate.ingest.formats`).  Files whose format is not
   ingested, zero-byte files and files whose content contradicts their image
   extension are settled here.
2. **TIFFs.**  One decode per unique TIFF MD5: the bytes are copied to
   ``STORE/<md5>.tif`` and converted to ``STORE/<md5>.jpg``
   (:mod:`semcurate.ingest.convert`).  When the converted JPG equals one we
   already hold, the TIFFs differ only in metadata: the thesis kept one of
   each such pair, and so do we (the first admitted); the other becomes a
   ``metadata_variant`` duplicate, reported as a JPG collision.
3. **JPGs.**  A JPG identical to a store JPG, or reproduced by re-encoding a
   TIFF of the same picture (:mod:`semcurate.ingest.rendition`), is a
   ``jpg_rendition`` duplicate; any other decodable JPG is admitted as a
   JPG-only image under its own MD5 and flagged.
4. **Near-duplicates.**  Copies of one acquisition, even resized,
   re-compressed, slightly cropped, contrast-stretched or cut above their data
   bar, are grouped, never deleted: candidate pairs from perceptual hashes of
   the whole image and of its top square, confirmed by the correlation of
   their pixels (:mod:`semcurate.ingest.near_duplicates`).  A later run
   compares only pairs with an image admitted since the last finished run.

Resumable and idempotent: file rows are committed in batches, a file whose
size and mtime are unchanged is not hashed again, and only ``pending`` files
are classified, so a re-run after SIGKILL finishes the job and a re-run after
success does no new work.  The store is written atomically
(:class:`semcurate.ingest.store.FlatStore`).  Work runs in ``workers``
processes, or on Dask workers with ``scheduler``
(:func:`~semcurate.ingest.parallel.parallel_map`); only this process writes to
the database.

One ingest at a time on an SQLite database: a run holds the store's lock and
a lock next to the database, and a second run stops at once with "another
ingest is running on … (pid N)".  On PostgreSQL several ingests (several
admins, overlapping sources) run at once: each holds the store's lock shared,
their write transactions take turns (:func:`~semcurate.db.session.serialise_writers`),
each re-reads inside its transaction which files are still pending and which
images exist, and rows are inserted with ``ON CONFLICT DO NOTHING``, so every
file and every image ends up recorded once, as by one ingest.  One store per database: the images a
database knows are in the store of its latest run, so a run into another
store is refused (unless that store already holds them all: a moved store).
A full or read-only store or database ends the run with one line
(:class:`IngestError`), staged files removed; a re-run picks up where it
stopped, re-admitting the pending files whose store copies lost their rows.
File names are kept as escaped text (:func:`semcurate.ingest.walk.name_to_text`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from semcurate.db.location import write_failure
from semcurate.db.models import File, ImageSignature, IngestRun, utcnow
from semcurate.db.models import Image as ImageRow
from semcurate.db.session import insert_ignoring_duplicates, serialise_writers
from semcurate.ingest.convert import encode_jpeg
from semcurate.ingest.formats import (
    INGESTED_FORMATS,
    JPG,
    SIGNATURE_BYTES,
    TIFF,
    detect_format,
    format_from_content,
    format_from_extension,
)
from semcurate.ingest.images import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    ImageProblem,
    decode_image,
    perceptual_hash,
)
from semcurate.ingest.near_duplicates import (
    GROUPING_RULE,
    TOP_SQUARE_BITS,
    VIEW_WIDTH,
    WHOLE_IMAGE_BITS,
    ComparedImage,
    candidate_pairs,
    is_copy,
    match,
    top_square_hash,
)
from semcurate.ingest.parallel import batched, parallel_map
from semcurate.ingest.rendition import Candidate, CandidateIndex, match_rendition
from semcurate.ingest.store import (
    LOCK_NAME,
    SHARED_LOCK_WAIT_S,
    FlatStore,
    StoreError,
    hold_lock,
    lock_holder,
    open_lock_file,
    shared_lock_within,
)
from semcurate.ingest.walk import FileSkipped, name_to_text, open_regular, read_regular, text_to_name, walk_tree

#: Near-duplicate candidate pairs confirmed per worker task: enough that a task decodes each of its store JPGs once
#: (pairs are sorted, so one image's pairs come together; the 1,000-image demo has about 350 pairs, one task, as when
#: this ran in one process), few enough that its decoded JPGs (256 px wide, about 50 kB each) stay under 200 MB.
PAIRS_PER_TASK = 2000
#: Most rows written per database transaction; a transaction also closes after a second,
#: so a SIGKILL undoes at most that much finished work.
BATCH_SIZE = 200

Reporter = Callable[[str, int], Callable[[int], None]]


def silent_reporter(_phase: str, _total: int) -> Callable[[int], None]:
    """A progress reporter that reports nothing."""
    return lambda _advance=1: None


class IngestError(Exception):
    """A problem with the source or the store that stops the run before it starts."""


@dataclass(frozen=True)
class HashResult:
    """MD5 and leading bytes of one file, or the reason it could not be read."""

    relpath: str
    md5: str | None
    head: bytes
    error: str | None


@dataclass(frozen=True)
class Admission:
    """What a worker made of one unique TIFF or JPG (staged paths are in the store's ``.incoming``)."""

    md5: str
    problem: ImageProblem | None = None
    width: int = 0
    height: int = 0
    mode: str = ""
    pages: int = 1
    note: str | None = None
    phash: str = ""
    top_phash: str = ""
    jpg_md5: str = ""
    staged_tif: Path | None = None
    staged_jpg: Path | None = None
    rendition_of: str | None = None
    rendition_how: str | None = None
    rendition_difference: float = 0.0
    changed: bool = False


# --------------------------------------------------------------------------- workers
# Module-level functions so that they pickle into worker processes.


def hash_file(path: Path, relpath: str) -> HashResult:
    """MD5 of a file's bytes (read in 1 MiB chunks) and its first bytes; a pipe or device is not read."""
    digest = hashlib.md5()
    head = b""
    try:
        with open_regular(path) as handle:
            while chunk := handle.read(1 << 20):
                if len(head) < SIGNATURE_BYTES:
                    head += chunk[: SIGNATURE_BYTES - len(head)]
                digest.update(chunk)
    except FileSkipped as skipped:
        return HashResult(relpath, None, b"", str(skipped))
    except OSError as error:
        return HashResult(relpath, None, b"", f"cannot read: {error.strerror or error}")
    return HashResult(relpath, digest.hexdigest(), head, None)


def _load(md5: str, path: Path, max_pixels: int) -> tuple[bytes, DecodedImage] | Admission:
    """A task file's bytes and decoded image, or the :class:`Admission` that says why not.

    The bytes are hashed again: a file that changed since the inventory must
    not be stored under its old MD5.
    """
    try:
        data = read_regular(path)
    except FileSkipped as skipped:
        return Admission(md5, ImageProblem("unreadable", str(skipped)))
    except OSError as error:
        return Admission(md5, ImageProblem("unreadable", f"cannot read: {error.strerror or error}"))
    if hashlib.md5(data).hexdigest() != md5:
        return Admission(md5, changed=True)
    try:
        return data, decode_image(data, max_pixels)
    except ImageProblem as problem:
        return Admission(md5, problem)


def _described(decoded: DecodedImage) -> dict:
    """The :class:`Admission` fields that describe a decoded image."""
    return {
        "width": decoded.width,
        "height": decoded.height,
        "mode": decoded.mode,
        "pages": decoded.pages,
        "note": decoded.note,
    }


def prepare_tiff(task: tuple[str, Path, Path, int]) -> Admission:
    """Decode one unique TIFF, stage its copy and its JPG conversion."""
    md5, path, store_root, max_pixels = task
    loaded = _load(md5, path, max_pixels)
    if isinstance(loaded, Admission):
        return loaded
    data, decoded = loaded
    jpg = encode_jpeg(decoded.display)
    store = FlatStore(store_root)
    return Admission(
        md5,
        **_described(decoded),
        phash=perceptual_hash(decoded.display),
        top_phash=top_square_hash(decoded.display),
        jpg_md5=hashlib.md5(jpg).hexdigest(),
        staged_tif=store.stage(data, md5, "tif"),
        staged_jpg=store.stage(jpg, md5, "jpg"),
    )


_JPG_CANDIDATES: CandidateIndex | None = None


def _install_candidates(index: CandidateIndex) -> None:
    global _JPG_CANDIDATES
    _JPG_CANDIDATES = index


def prepare_jpg(task: tuple[str, Path, Path, int]) -> Admission:
    """Decode one unique JPG; find the TIFF it renders, or stage it as a JPG-only image."""
    md5, path, store_root, max_pixels = task
    loaded = _load(md5, path, max_pixels)
    if isinstance(loaded, Admission):
        return loaded
    data, decoded = loaded
    store = FlatStore(store_root)
    phash = perceptual_hash(decoded.display)
    candidates = _JPG_CANDIDATES.near(decoded.width, decoded.height, phash) if _JPG_CANDIDATES else []
    if candidates:
        match = match_rendition(
            decoded.source,
            md5,
            candidates,
            lambda candidate: decode_image(store.path(candidate, "tif").read_bytes(), max_pixels).display,
        )
        if match is not None:
            return Admission(
                md5,
                rendition_of=match.md5,
                rendition_how=match.how,
                rendition_difference=match.mean_abs_difference,
            )
    return Admission(
        md5,
        **_described(decoded),
        phash=phash,
        top_phash=top_square_hash(decoded.display),
        jpg_md5=md5,
        staged_jpg=store.stage(data, md5, "jpg"),
    )


# --------------------------------------------------------------------------- the run


def _extension(relpath: str) -> str:
    name = relpath.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower()[:16] if dot > 0 else ""


def _settle_without_decoding(result: HashResult, size: int) -> tuple[str, str, str | None]:
    """Format, status and reason of a freshly hashed file, deciding what needs no decoding."""
    declared = format_from_extension(result.relpath)
    if result.error:
        return declared, "unreadable", result.error
    content = format_from_content(result.head)
    fmt = detect_format(result.head, result.relpath)
    if size == 0:
        return fmt, "corrupt", "zero-byte file"
    if content is None:
        if declared in INGESTED_FORMATS:
            named, start = _extension(result.relpath), result.head[:8]
            return fmt, "corrupt", f"named {named} but the content is not {declared} (starts {start!r})"
        return fmt, "unsupported", f"{fmt} files are not ingested (only TIFF and JPG)"
    if content not in INGESTED_FORMATS:
        if declared not in (content, "OTHER"):
            named = _extension(result.relpath)
            return fmt, "unsupported", f"{content} content named {named}: {content} files are not ingested"
        return fmt, "unsupported", f"{content} files are not ingested (only TIFF and JPG)"
    if declared != content:
        return fmt, "pending", f"named {_extension(result.relpath)} but the content is {content}"
    return fmt, "pending", None


class Ingestion:
    """One ingestion of ``source`` into ``store`` recorded through ``sessions``."""

    def __init__(
        self,
        source: Path,
        store: Path,
        sessions: sessionmaker,
        *,
        workers: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        retry_failed: bool = False,
        reporter: Reporter = silent_reporter,
        scheduler: str | None = None,
    ):
        source, store = Path(source), Path(store)
        if not source.is_dir():
            raise IngestError(f"source {source} does not exist or is not a folder")
        source_resolved = source.resolve()
        # Stored and shown as text (undecodable bytes escaped, see semcurate.ingest.walk).
        self.source_root = name_to_text(str(source_resolved))
        store_resolved = store.resolve()
        if store_resolved == source_resolved or source_resolved in store_resolved.parents:
            raise IngestError(f"store {store} is inside the source {source}, which must stay read-only")
        self.store = FlatStore(store_resolved)
        self.sessions = sessions
        self.workers = max(1, workers)
        self.scheduler = scheduler
        self.max_pixels = max_pixels
        self.retry_failed = retry_failed
        self.reporter = reporter
        self.images_new = 0

    # -- helpers over the database
    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction, taking turns with any other ingest writing this database (PostgreSQL)."""
        with self.sessions.begin() as session:
            serialise_writers(session, "ingest")
            yield session

    def _insert_new(self, session: Session, model):
        """An insert into ``model``'s table that skips rows another ingest already stored."""
        return insert_ignoring_duplicates(model.__table__, session.get_bind().dialect.name)

    def _still_pending(self, session: Session, rows: list[File]) -> list[File]:
        """``rows`` as stored now, loaded into ``session``, less those another ingest settled meanwhile."""
        ids = [row.id for row in rows]
        fresh: list[File] = []
        for start in range(0, len(ids), 1000):
            fresh += session.scalars(
                select(File).where(File.id.in_(ids[start : start + 1000]), File.status == "pending")
            ).all()
        return sorted(fresh, key=lambda row: row.relpath)

    def _abs(self, relpath: str) -> Path:
        """The file to open for a stored (escaped) relpath."""
        return Path(text_to_name(self.source_root)) / text_to_name(relpath)

    def _pending(self, session: Session, fmt: str) -> dict[str, list[File]]:
        rows = session.scalars(
            select(File)
            .where(File.source_root == self.source_root, File.status == "pending", File.format == fmt)
            .order_by(File.relpath)
        ).all()
        groups: dict[str, list[File]] = defaultdict(list)
        for row in rows:
            groups[row.md5].append(row)
        return groups

    def _bad_md5s(self, session: Session) -> dict[str, tuple[str, str, str]]:
        """Status, reason and path of files already found corrupt or rejected, by MD5."""
        rows = session.execute(
            select(File.md5, File.status, File.reason, File.relpath).where(
                File.status.in_(("corrupt", "rejected")), File.md5.is_not(None), File.size > 0
            )
        )
        return {md5: (status, reason, relpath) for md5, status, reason, relpath in rows}

    @staticmethod
    def _settle(rows: list[File], status: str, reason: str | None, relation=None, image_md5=None, run_id=None):
        for row in rows:
            inventory_note = row.reason if row.status == "pending" else None
            row.status, row.relation, row.image_md5, row.run_id = status, relation, image_md5, run_id
            row.reason = "; ".join(filter(None, [reason, inventory_note])) or None

    # -- phase 1
    def inventory(self, run_id: int) -> int:
        """Walk, stat, hash new or changed files, settle what needs no decoding. Returns files seen."""
        if self.retry_failed:
            with self._write() as session:
                session.execute(
                    update(File)
                    .where(File.source_root == self.source_root, File.status.in_(("corrupt", "rejected", "unreadable")))
                    .values(md5=None)
                )
        with self.sessions() as session:
            known = {
                row.relpath: row
                for row in session.execute(
                    select(File.id, File.relpath, File.size, File.mtime_ns, File.md5, File.reason).where(
                        File.source_root == self.source_root
                    )
                )
            }
        seen = 0
        to_hash: list[tuple[str, int, int]] = []
        problems = []
        for entry in walk_tree(Path(self.source_root)):
            seen += 1
            if entry.problem:
                problems.append(entry)
                continue
            previous = known.get(entry.relpath)
            unchanged = previous is not None and (previous.size, previous.mtime_ns) == (entry.size, entry.mtime_ns)
            if not unchanged or not previous.md5:
                to_hash.append((entry.relpath, entry.size, entry.mtime_ns))
        with self._write() as session:
            for entry in problems:
                if entry.relpath in known and known[entry.relpath].reason == entry.problem:
                    continue  # already recorded with this reason
                self._upsert(
                    session,
                    known,
                    entry.relpath,
                    {
                        "size": None,
                        "mtime_ns": None,
                        "md5": None,
                        "extension": "" if entry.is_folder else _extension(entry.relpath),
                        "format": "FOLDER" if entry.is_folder else format_from_extension(entry.relpath),
                        "status": entry.status,
                        "relation": None,
                        "image_md5": None,
                        "reason": entry.problem,
                        "run_id": run_id,
                    },
                )
        sizes = {relpath: (size, mtime_ns) for relpath, size, mtime_ns in to_hash}
        advance = self.reporter("hashing", len(to_hash))
        tasks = [(self._abs(relpath), relpath) for relpath, _, _ in to_hash]
        results = parallel_map(_hash_task, tasks, self.workers, scheduler=self.scheduler)
        for batch in batched(results, BATCH_SIZE):
            with self._write() as session:
                for result in batch:
                    size, mtime_ns = sizes[result.relpath]
                    fmt, status, reason = _settle_without_decoding(result, size)
                    self._upsert(
                        session,
                        known,
                        result.relpath,
                        {
                            "size": size,
                            "mtime_ns": mtime_ns,
                            "md5": result.md5,
                            "extension": _extension(result.relpath),
                            "format": fmt,
                            "status": status,
                            "relation": None,
                            "image_md5": None,
                            "reason": reason,
                            "run_id": run_id,
                        },
                    )
            advance(len(batch))
        return seen

    def _upsert(self, session: Session, known: dict, relpath: str, values: dict) -> None:
        previous = known.get(relpath)
        if previous is None:  # another ingest of this source may have recorded it meanwhile: its row stands
            session.execute(
                self._insert_new(session, File), [{"source_root": self.source_root, "relpath": relpath, **values}]
            )
        else:
            session.execute(update(File), [{"id": previous.id, "updated_at": utcnow(), **values}])

    # -- phases 2 and 3
    def admit(self, fmt: str, run_id: int) -> None:
        """Classify pending files of one format, decoding each unique content once."""
        with self.sessions() as session:
            groups = self._pending(session, fmt)
            bad = self._bad_md5s(session)
            index = (
                CandidateIndex(
                    Candidate(md5, width, height, phash)
                    for md5, width, height, phash in session.execute(
                        select(ImageRow.md5, ImageRow.width, ImageRow.height, ImageRow.phash).where(
                            ImageRow.source_format == TIFF
                        )
                    )
                )
                if fmt == JPG
                else None
            )
        with self._write() as session:
            # Read under the writers' turn: another ingest may have admitted some of these meanwhile.
            known_images = set(session.scalars(select(ImageRow.md5)))
            known_jpg = dict(session.execute(select(ImageRow.jpg_md5, ImageRow.md5)).all())
            fresh = self._by_md5(self._still_pending(session, [row for rows in groups.values() for row in rows]))
            tasks = []
            for md5, rows in fresh.items():
                if self._settle_known(rows, md5, fmt, known_images, known_jpg, run_id):
                    continue
                if md5 in bad:
                    status, reason, relpath = bad[md5]
                    self._settle(rows, status, f"same bytes as {relpath}: {reason}", run_id=run_id)
                else:
                    tasks.append((md5, self._abs(rows[0].relpath), self.store.root, self.max_pixels))
        advance = self.reporter(f"admitting {fmt}", len(tasks))
        worker = prepare_tiff if fmt == TIFF else prepare_jpg
        results = (
            parallel_map(worker, tasks, self.workers, _install_candidates, (index,), scheduler=self.scheduler)
            if fmt == JPG
            else parallel_map(worker, tasks, self.workers, scheduler=self.scheduler)
        )
        for batch in batched(results, BATCH_SIZE):
            with self._write() as session:
                self._refresh_known(session, batch, known_images, known_jpg)
                fresh = self._by_md5(
                    self._still_pending(session, [row for admission in batch for row in groups[admission.md5]])
                )
                for admission in batch:
                    self._record(session, admission, fresh.get(admission.md5, []), known_images, known_jpg, fmt, run_id)
            advance(len(batch))

    @staticmethod
    def _by_md5(rows: list[File]) -> dict[str, list[File]]:
        groups: dict[str, list[File]] = defaultdict(list)
        for row in rows:
            groups[row.md5].append(row)
        return groups

    @staticmethod
    def _refresh_known(session: Session, batch: list[Admission], known_images: set, known_jpg: dict) -> None:
        """Add to ``known_images``/``known_jpg`` the images of ``batch``'s md5s that another ingest stored."""
        md5s = {admission.md5 for admission in batch}
        jpgs = {admission.jpg_md5 for admission in batch if admission.jpg_md5}
        for md5, jpg_md5 in session.execute(
            select(ImageRow.md5, ImageRow.jpg_md5).where(or_(ImageRow.md5.in_(md5s), ImageRow.jpg_md5.in_(md5s | jpgs)))
        ):
            known_images.add(md5)
            known_jpg[jpg_md5] = md5

    def _settle_known(self, rows: list[File], md5: str, fmt: str, known_images: set, known_jpg: dict, run_id: int):
        """Settle ``rows`` (content ``md5``) as duplicates when an image with these bytes is known; say whether."""
        if fmt == JPG and md5 in known_jpg:
            self._settle(
                rows,
                "duplicate",
                f"same bytes as the store JPG of image {known_jpg[md5]}",
                "jpg_rendition",
                known_jpg[md5],
                run_id,
            )
            return True
        if md5 in known_images:
            self._settle(rows, "duplicate", f"same bytes as admitted image {md5}", "exact", md5, run_id)
            return True
        return False

    def _record(
        self,
        session: Session,
        admission: Admission,
        rows: list[File],
        known_images: set,
        known_jpg: dict,
        fmt: str,
        run_id: int,
    ) -> None:
        """Record what a worker made of one content on its file rows (those still pending) and admit the image."""
        if not rows or self._settle_known(rows, admission.md5, fmt, known_images, known_jpg, run_id):
            # Another ingest settled these files or admitted these bytes while the worker ran.
            for staged in (admission.staged_tif, admission.staged_jpg):
                if staged is not None:
                    self.store.discard(staged)
            return
        if admission.changed:
            for row in rows:
                row.reason = "changed while ingesting: re-run to pick up the new content"
            return
        if admission.problem is not None:
            self._settle(rows, admission.problem.status, admission.problem.reason, run_id=run_id)
            return
        if admission.rendition_of is not None:
            self._settle(
                rows,
                "duplicate",
                f"JPG rendition of TIFF image {admission.rendition_of} "
                f"({admission.rendition_how}; mean |Δ| = {admission.rendition_difference:.2f} grey levels)",
                "jpg_rendition",
                admission.rendition_of,
                run_id,
            )
            return
        if admission.jpg_md5 in known_jpg:
            twin = known_jpg[admission.jpg_md5]
            for staged in (admission.staged_tif, admission.staged_jpg):
                if staged is not None:
                    self.store.discard(staged)
            self._settle(
                rows,
                "duplicate",
                f"same pixels as image {twin}: the TIFFs differ only in metadata and convert to the same JPG "
                "(JPG collision, kept the first as the thesis did)",
                "metadata_variant",
                twin,
                run_id,
            )
            return
        if admission.staged_tif is not None:
            self.store.commit(admission.staged_tif, admission.md5, "tif")
        self.store.commit(admission.staged_jpg, admission.md5, "jpg")
        session.execute(
            self._insert_new(session, ImageRow),
            [
                {
                    "md5": admission.md5,
                    "source_format": fmt,
                    "jpg_md5": admission.jpg_md5,
                    "jpg_only": fmt == JPG,
                    "width": admission.width,
                    "height": admission.height,
                    "mode": admission.mode,
                    "pages": admission.pages,
                    "phash": admission.phash,
                    "conversion_note": admission.note,
                    "created_at": utcnow(),
                }
            ],
        )  # before the file rows that point at it
        if admission.top_phash:
            # Hashed here from the picture the worker decoded; the near-duplicate phase decodes only older images.
            session.execute(
                self._insert_new(session, ImageSignature),
                [{"image_md5": admission.md5, "top_phash": admission.top_phash}],
            )
        known_images.add(admission.md5)
        known_jpg[admission.jpg_md5] = admission.md5
        self.images_new += 1
        first, *others = rows
        self._settle(
            [first],
            "image",
            "JPG only: no TIFF of this image was found" if fmt == JPG else None,
            image_md5=admission.md5,
            run_id=run_id,
        )
        self._settle(others, "duplicate", f"same bytes as {first.relpath}", "exact", admission.md5, run_id)

    # -- phase 4
    def _signatures(self, md5s: list[str]) -> dict[str, str]:
        """The top-square hash of every image in ``md5s``, computing (in the workers) and storing the missing ones.

        Admission hashes each new image from the picture its worker decoded; what is missing here are images
        admitted before it did so, whose store JPG is decoded for it (about 5 ms each, at 1/8 scale).
        """
        with self.sessions() as session:
            signed = dict(session.execute(select(ImageSignature.image_md5, ImageSignature.top_phash)).all())
        tasks = [(md5, self.store.path(md5, "jpg")) for md5 in md5s if md5 not in signed]
        advance = self.reporter("near-duplicate signatures", len(tasks)) if tasks else (lambda _n=1: None)
        for batch in batched(parallel_map(_signature_task, tasks, self.workers, scheduler=self.scheduler), BATCH_SIZE):
            found = [(md5, top) for md5, top in batch if top is not None]
            if found:
                with self._write() as session:
                    session.execute(
                        self._insert_new(session, ImageSignature),
                        [{"image_md5": md5, "top_phash": top} for md5, top in found],
                    )
            signed.update(found)
            advance(len(batch))
        return signed

    @staticmethod
    def _compared_until(session: Session) -> dt.datetime | None:
        """When the last finished ingest run ended, if it grouped near-duplicates by today's rule; else None.

        That run compared every candidate pair of the images there were, and
        the run before it (by the same induction) every pair of older images:
        each pair of two images admitted before it ended has been compared.
        None (compare everything) after a run of another rule, an older
        version's run (no rule recorded) or no finished run at all.
        """
        finished, summary = session.execute(
            select(IngestRun.finished_at, IngestRun.summary_json)
            .where(IngestRun.finished_at.is_not(None))
            .order_by(IngestRun.finished_at.desc())
            .limit(1)
        ).first() or (None, None)
        if finished is None or json.loads(summary or "{}").get("near_duplicate_rule") != GROUPING_RULE:
            return None
        return finished

    def group_near_duplicates(self) -> int:
        """Group copies of one acquisition: candidates from perceptual hashes, confirmed by their pixels.

        Candidate pairs have top-square hashes within
        :data:`~semcurate.ingest.near_duplicates.TOP_SQUARE_BITS` bits or
        whole-image hashes within
        :data:`~semcurate.ingest.near_duplicates.WHOLE_IMAGE_BITS`; a pair
        is confirmed when the views of its store JPGs correlate, as a whole
        and block by block (:func:`~semcurate.ingest.near_duplicates.confirmed`),
        in the workers, :data:`PAIRS_PER_TASK` pairs a task.  Groups only
        grow: an existing group keeps its id.

        A pair of two images admitted before the last finished ingest run that
        grouped by the same rule (:data:`~semcurate.ingest.near_duplicates.GROUPING_RULE`)
        was compared then (:meth:`_compared_until`), and is neither searched
        for nor compared again: a run that admits nothing compares nothing.
        Every other candidate pair is checked, even two images another pair already joined: the
        groups are the same, and the workers need not wait for each other's
        verdicts.  Similar textures collide in the hashes at a constant rate
        per pair (about 1e-4 on the demo corpus), so the candidates of a first
        run, and its time in this phase, grow with the square of the images.

        Returns
        -------
        int
            How many candidate pairs were checked (pairs already in one group,
            or compared by an earlier run, are not), for the run's summary.
        """
        with self.sessions() as session:
            images = session.execute(
                select(ImageRow.md5, ImageRow.phash, ImageRow.near_duplicate_group, ImageRow.created_at).order_by(
                    ImageRow.md5
                )
            ).all()
            compared_until = self._compared_until(session)
        md5s = [image.md5 for image in images]
        group_of = {image.md5: image.near_duplicate_group for image in images}
        compared = [compared_until is not None and image.created_at < compared_until for image in images]
        signed = self._signatures(md5s)
        # An image whose store JPG could not be read has no top-square hash: its whole-image hash stands in.
        tops = [signed.get(image.md5, image.phash) for image in images]
        wholes = [image.phash for image in images]
        # Only pairs with an image not compared yet are searched: O(new × all) for a run that adds a few.
        uncompared = None if compared_until is None else [index for index, done in enumerate(compared) if not done]
        pairs = [
            (md5s[a], md5s[b])
            for a, b in candidate_pairs([(wholes, WHOLE_IMAGE_BITS), (tops, TOP_SQUARE_BITS)], among=uncompared)
            if group_of[md5s[a]] is None or group_of[md5s[a]] != group_of[md5s[b]]
        ]
        parent = {md5: group_of[md5] or md5 for md5 in group_of}

        def root(md5: str) -> str:
            while parent[md5] != md5:
                parent[md5] = parent[parent[md5]]
                md5 = parent[md5]
            return md5

        existing_groups = {group for group in group_of.values() if group}
        for group in existing_groups:
            parent.setdefault(group, group)
        advance = self.reporter("near-duplicates", len(pairs))
        tasks = [
            (self.store.root, pairs[start : start + PAIRS_PER_TASK]) for start in range(0, len(pairs), PAIRS_PER_TASK)
        ]
        for (_root, task_pairs), verdicts in zip(
            tasks, parallel_map(_confirm_pairs_task, tasks, self.workers, scheduler=self.scheduler), strict=True
        ):
            for (md5_a, md5_b), copies in zip(task_pairs, verdicts, strict=True):
                if copies and root(md5_a) != root(md5_b):
                    root_a, root_b = root(md5_a), root(md5_b)
                    # Keep an existing group's id; otherwise the smaller md5 names the new group.
                    keep = min((r for r in (root_a, root_b) if r in existing_groups), default=min(root_a, root_b))
                    parent[root_a] = parent[root_b] = keep
            advance(len(task_pairs))
        members = defaultdict(list)
        for md5 in group_of:
            members[root(md5)].append(md5)
        updates = [
            {"md5": md5, "near_duplicate_group": group}
            for group, group_members in members.items()
            if len(group_members) > 1
            for md5 in group_members
            if group_of[md5] != group
        ]
        if updates:
            with self._write() as session:
                session.execute(update(ImageRow), updates)
        return len(pairs)

    # -- summary
    def summary(self, files_seen: int) -> dict:
        with self.sessions() as session:
            in_root = File.source_root == self.source_root

            def count_by(column) -> dict:
                return dict(session.execute(select(column, func.count()).where(in_root).group_by(column)).all())

            statuses, by_format = count_by(File.status), count_by(File.format)
            relations = dict(
                session.execute(
                    select(File.relation, func.count())
                    .where(in_root, File.status == "duplicate")
                    .group_by(File.relation)
                ).all()
            )
            return {
                "source": self.source_root,
                "store": name_to_text(str(self.store.root)),
                "files_seen": files_seen,
                "images_new": self.images_new,
                "images_total": session.scalar(select(func.count()).select_from(ImageRow)),
                "duplicates": statuses.get("duplicate", 0),
                "exact_duplicates": relations.get("exact", 0),
                "jpg_renditions": relations.get("jpg_rendition", 0),
                "jpg_collisions": relations.get("metadata_variant", 0),
                "corrupt": statuses.get("corrupt", 0),
                "unsupported": statuses.get("unsupported", 0),
                "unreadable": statuses.get("unreadable", 0),
                "rejected": statuses.get("rejected", 0),
                "skipped": statuses.get("skipped", 0),
                "pending": statuses.get("pending", 0),
                "jpg_only": session.scalar(select(func.count()).select_from(ImageRow).where(ImageRow.jpg_only)),
                "near_duplicate_groups": session.scalar(
                    select(func.count(func.distinct(ImageRow.near_duplicate_group)))
                ),
                "by_format": dict(sorted(by_format.items())),
            }

    def run(self) -> dict:
        """Run every phase and return the summary (also stored on the run's row).

        Raises
        ------
        IngestError
            One line naming the store or the database and the fix, when either
            cannot be written (full, read-only, locked).  Staged store files are
            removed first; committed work stays, and a re-run finishes the job.
        """
        try:
            self._check_store_in_use()  # before a refused store's folder is created
            self.store.prepare()
            with self._store_lock() as alone, self._database_lock():
                self._check_store_in_use()  # again, now that no other ingest can add a run
                try:
                    return self._run_phases()
                except (StoreError, OperationalError):
                    if alone:  # concurrent ingests' staged files stay; the next run alone removes ours
                        self.store.clear_incoming()
                    raise
        except StoreError as error:
            raise IngestError(str(error)) from None
        except OperationalError as error:
            raise IngestError(database_error_line(self.sessions, error)) from None

    @contextmanager
    def _store_lock(self) -> Iterator[bool]:
        """Hold the store's ingest lock; yield whether this run has the store to itself.

        For an SQLite database the lock is exclusive (one ingest at a time,
        :meth:`FlatStore.locked`).  For PostgreSQL it is shared, so ingests of
        several admins run at once, and only against an ingest into an SQLite
        database is it refused.  Whoever starts alone first removes the staged
        files crashed runs left behind.
        """
        if self._dialect() != "postgresql":
            with self.store.locked():
                self.store.clear_incoming()
                yield True
            return
        descriptor = open_lock_file(self.store.root / LOCK_NAME)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.store.clear_incoming()
                alone = True
            except BlockingIOError:
                alone = False
            if not shared_lock_within(descriptor, SHARED_LOCK_WAIT_S):  # from exclusive: lets other ingests in
                holder = lock_holder(descriptor)
                raise StoreError(
                    f"another ingest is running on store {self.store.root} (pid {holder}) into a database that "
                    "takes one ingest at a time: wait for it to end"
                ) from None
            yield alone
        finally:
            os.close(descriptor)

    def _dialect(self) -> str:
        bind = self.sessions.kw.get("bind")
        return bind.dialect.name if bind is not None else ""

    def _database_lock(self) -> AbstractContextManager:
        """The ingest lock of an SQLite database file (next to it), so that two ingests never write one database."""
        bind = self.sessions.kw.get("bind")
        database = bind.url.database if bind is not None and bind.url.get_backend_name() == "sqlite" else None
        if not database or database == ":memory:":
            return nullcontext()
        return hold_lock(Path(f"{database}.ingest.lock"), f"database {database}")

    def _check_store_in_use(self) -> None:
        """Refuse a store other than the one this database's images are in (unless it holds them all: moved)."""
        with self.sessions() as session:
            in_use = session.scalar(select(IngestRun.store).order_by(IngestRun.id.desc()).limit(1))
            if in_use is None or Path(text_to_name(in_use)) == self.store.root:
                return
            images = session.execute(select(ImageRow.md5, ImageRow.jpg_only)).all()
        missing = [
            md5
            for md5, jpg_only in images
            if not self.store.path(md5, "jpg").is_file() or not (jpg_only or self.store.path(md5, "tif").is_file())
        ]
        if missing:
            raise IngestError(
                f"this database's {len(images)} images are in store {in_use}: pass --store {in_use} "
                "(one store per database), or use another --db for a separate collection"
            )

    def _run_phases(self) -> dict:
        with self.sessions.begin() as session:
            ingest_run = IngestRun(source_root=self.source_root, store=name_to_text(str(self.store.root)))
            session.add(ingest_run)
            session.flush()
            run_id = ingest_run.id
        timings = {}
        started = time.perf_counter()
        files_seen = self.inventory(run_id)
        timings["inventory"] = time.perf_counter() - started
        for fmt, phase in ((TIFF, "tiff"), (JPG, "jpg")):
            started = time.perf_counter()
            self.admit(fmt, run_id)
            timings[phase] = time.perf_counter() - started
        started = time.perf_counter()
        candidates = self.group_near_duplicates()
        timings["near_duplicates"] = time.perf_counter() - started
        summary = self.summary(files_seen)
        summary["near_duplicate_candidates"] = candidates
        summary["near_duplicate_rule"] = GROUPING_RULE
        summary["seconds"] = {phase: round(seconds, 3) for phase, seconds in timings.items()}
        with self.sessions.begin() as session:
            session.execute(
                update(IngestRun)
                .where(IngestRun.id == run_id)
                .values(finished_at=utcnow(), summary_json=json.dumps(summary))
            )
        return summary


def database_error_line(sessions: sessionmaker, error: OperationalError) -> str:
    """One line for a database write that failed: which database, what happened, what to do."""
    bind = sessions.kw.get("bind")
    where = bind.url.render_as_string(hide_password=True) if bind is not None else "the database"
    return write_failure(where, str(getattr(error, "orig", error)).splitlines()[0])


def _hash_task(task: tuple[Path, str]) -> HashResult:
    return hash_file(*task)


def _reduced_jpg(path: Path) -> ComparedImage | None:
    """A store JPG decoded at a reduced scale (JPEG draft mode, at least twice the comparison view's width), with
    its true width, or None when it cannot be read."""
    try:
        with Image.open(path) as image:
            width = image.width
            image.draft("L", (2 * VIEW_WIDTH, max(1, 2 * VIEW_WIDTH * image.height // max(width, 1))))
            return ComparedImage(image.convert("L"), width)
    except (OSError, ValueError, SyntaxError):
        return None


def _confirm_pairs_task(task: tuple[Path, list[tuple[str, str]]]) -> list[bool]:
    """Worker: for each candidate pair of md5s, whether the two store JPGs are copies of one acquisition.

    Each JPG is decoded and band-passed once per task (:func:`_reduced_jpg`); the verdict is
    :func:`~semcurate.ingest.near_duplicates.is_copy` of the two's :func:`~semcurate.ingest.near_duplicates.match`.
    """
    store_root, pairs = task
    store = FlatStore(store_root)
    reduced: dict[str, ComparedImage | None] = {}
    verdicts = []
    for md5_a, md5_b in pairs:
        for md5 in (md5_a, md5_b):
            if md5 not in reduced:
                reduced[md5] = _reduced_jpg(store.path(md5, "jpg"))
        first, second = reduced[md5_a], reduced[md5_b]
        verdicts.append(first is not None and second is not None and is_copy(*match(first, second)))
    return verdicts


def _signature_task(task: tuple[str, Path]) -> tuple[str, str | None]:
    """Worker: ``(md5, top-square hash)`` of a store JPG, the hash None when the JPG cannot be read."""
    md5, path = task
    try:
        with Image.open(path) as image:
            # decoded at 1/2-1/8 scale (JPEG draft mode), at least 256 px wide: phash looks at 32 × 32 px of it
            image.draft("L", (min(image.width, 256), max(1, min(image.height, 256 * image.height // image.width))))
            return md5, top_square_hash(image)
    except (OSError, ValueError, SyntaxError):
        return md5, None


def ingest(source: Path, store: Path, sessions: sessionmaker, **options) -> dict:
    """Ingest ``source`` into ``store``; see :class:`Ingestion` for the options."""
    return Ingestion(source, store, sessions, **options).run()


def latest_store(sessions: sessionmaker) -> Path | None:
    """The flat store of the most recent ingest run, or None when nothing has been ingested yet.

    Later stages read the images from there when no store is named (``--store``).
    """
    with sessions() as session:
        store = session.scalar(select(IngestRun.store).order_by(IngestRun.id.desc()).limit(1))
    return None if store is None else Path(text_to_name(store))
