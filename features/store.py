"""The HDF5 feature store: one file, one group per feature set, rows keyed by image md5.

Layout of a feature set ``NAME`` inside the file::

    /NAME/md5      (n,)    fixed-length ASCII strings of 32 hex digits
    /NAME/values   (n, d)  float32, chunked, resizable
    /NAME.attrs["rows"]    rows written whole (flushed) so far

Rows are appended in batches and never rewritten, so an interrupted
extraction keeps every batch it finished and a re-run adds only the missing
md5s (:meth:`FeatureStore.md5s`).  A batch counts only once its md5s and
values are both written and flushed (the ``rows`` attribute is raised last),
so a write that fails half-way (a full disk) leaves no partial row that
readers would see; the next append writes over it.  An md5 already stored is
never appended again.  Reads return rows in the order asked for.

One writer at a time: :meth:`FeatureStore.writing` holds an exclusive,
non-blocking ``flock`` on ``FILE.lock`` next to the HDF5 file (the pid of the
holder written in it), and every write takes it, so two extractions into the
same file end with one clear line instead of duplicated rows.

Metadata (extractor, weights digest, dimension, parameters) lives in the
database, not here (:class:`semcurate.db.models.FeatureSet`); so does
completeness: a set's row there is written when its extraction finished and
records how many rows it had (see :func:`semcurate.features.analysis.feature_rows`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

#: Rows per HDF5 chunk: a chunk of 2048-d float32 rows is then 1 MiB.
CHUNK_ROWS = 128
#: Bytes kept free beyond a batch's own size before it is written (HDF5's metadata and chunk slack).
FREE_SPACE_MARGIN = 1 << 20


class FeatureStoreError(Exception):
    """A feature set that is missing, or rows that do not fit it (one clear line)."""


class FeatureStoreBusy(FeatureStoreError):
    """Another process holds the store's writer lock."""


class FeatureStoreFull(FeatureStoreError):
    """A write failed for lack of space (or another I/O error); the rows of earlier batches are kept."""


class FeatureStore:
    """Read and append feature rows in one HDF5 file (created on first write).

    Parameters
    ----------
    path : Path or None
        The HDF5 file.  ``None`` means "the file the database records for
        each feature set": the readers of :mod:`semcurate.features.analysis`
        then take the set's ``store_path`` (:func:`~semcurate.features.analysis.bound_store`).
    """

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self._lock_depth = 0
        self._lock_file: int | None = None

    def _file(self) -> Path:
        if self.path is None:
            raise FeatureStoreError("no feature store file given: pass --feature-store")
        return self.path

    @property
    def lock_path(self) -> Path:
        """The lock file next to the HDF5 file (``features.h5.lock``)."""
        return self._file().with_name(self._file().name + ".lock")

    @contextlib.contextmanager
    def writing(self) -> Iterator[FeatureStore]:
        """Hold the store's writer lock for the block (re-entrant within this object).

        Raises
        ------
        FeatureStoreBusy
            When another process holds it: the message names the file and that process's pid.
        """
        if self._lock_depth == 0:
            self._file().parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(handle, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(handle)
                raise FeatureStoreBusy(
                    f"another extraction is writing {self._file().absolute()} (pid {holder}): wait for it or stop it"
                ) from None
            os.ftruncate(handle, 0)
            os.write(handle, str(os.getpid()).encode("ascii"))
            self._lock_file = handle
        self._lock_depth += 1
        try:
            yield self
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_file is not None:
                os.ftruncate(self._lock_file, 0)
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                os.close(self._lock_file)
                self._lock_file = None

    def _open(self, mode: str) -> h5py.File:
        try:
            return h5py.File(self._file(), mode)
        except OSError as error:
            if "lock" in str(error).lower():
                raise FeatureStoreBusy(f"{self.path} is open for writing by another process: wait for it") from None
            raise FeatureStoreError(
                f"feature store {self.path} cannot be read ({error}): pass the right --feature-store or move it away"
            ) from None

    def names(self) -> list[str]:
        """Feature sets in the file."""
        if not self._file().exists():
            return []
        with self._open("r") as handle:
            return sorted(handle.keys())

    def md5s(self, name: str) -> list[str]:
        """The md5 of every whole row of ``name``, in storage order (empty if the set does not exist)."""
        if not self._file().exists():
            return []
        with self._open("r") as handle:
            if name not in handle:
                return []
            return [md5.decode("ascii") for md5 in handle[name]["md5"][: _whole_rows(handle[name])]]

    def dimension(self, name: str) -> int | None:
        """Length of a row of ``name`` (``None`` if the set does not exist)."""
        if not self._file().exists():
            return None
        with self._open("r") as handle:
            return int(handle[name]["values"].shape[1]) if name in handle else None

    def append(self, name: str, md5s: list[str], values: np.ndarray) -> int:
        """Append the rows of md5s not stored yet to ``name`` (created with the rows' dimension).

        Returns
        -------
        int
            The set's row count afterwards.

        Raises
        ------
        FeatureStoreFull
            The disk is full (checked before writing, and any write error caught): one line naming the file.
        """
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != len(md5s):
            raise FeatureStoreError(f"{name}: {len(md5s)} md5s but values of shape {values.shape}")
        if not np.isfinite(values).all():
            raise FeatureStoreError(f"{name}: refusing to store non-finite feature values")
        with self.writing():
            seen = set(self.md5s(name))
            keep = []
            for row, md5 in enumerate(md5s):
                if md5 not in seen:
                    seen.add(md5)
                    keep.append(row)
            md5s, values = [md5s[row] for row in keep], values[keep]
            # A new chunk of each dataset may be allocated whole, however few rows go into it.
            self._check_free_space(values.nbytes + 4 * CHUNK_ROWS * values.shape[1] + 32 * CHUNK_ROWS * 8)
            try:
                return self._write(name, md5s, values)
            except (OSError, RuntimeError, ValueError) as error:
                raise FeatureStoreFull(
                    f"cannot write to feature store {self._file().absolute()} ({error}): "
                    "free space or pass --feature-store elsewhere"
                ) from None

    def _check_free_space(self, needed: int) -> None:
        """Refuse a write that would not fit: HDF5 does not report a full disk reliably.

        Its chunk cache writes on eviction and close, where a failed write is
        only logged (and the file then keeps growing in size with nothing in
        it, or the process crashes), so the room for a batch is checked before
        any of it is written.
        """
        free = os.statvfs(self._file().parent)
        if free.f_bavail * free.f_frsize < needed + FREE_SPACE_MARGIN:
            raise FeatureStoreFull(
                f"no space left for feature store {self._file().absolute()} ({free.f_bavail * free.f_frsize} bytes "
                f"free, {needed + FREE_SPACE_MARGIN} needed): free space or pass --feature-store elsewhere"
            )

    def _write(self, name: str, md5s: list[str], values: np.ndarray) -> int:
        with self._open("a") as handle:
            if name not in handle:
                group = handle.create_group(name)
                group.create_dataset("md5", shape=(0,), maxshape=(None,), dtype="S32", chunks=(CHUNK_ROWS * 8,))
                group.create_dataset(
                    "values",
                    shape=(0, values.shape[1]),
                    maxshape=(None, values.shape[1]),
                    dtype="float32",
                    chunks=(CHUNK_ROWS, values.shape[1]),
                )
                group.attrs["rows"] = 0
            group = handle[name]
            if group["values"].shape[1] != values.shape[1]:
                raise FeatureStoreError(
                    f"{name} has dimension {group['values'].shape[1]}, these rows have {values.shape[1]}"
                )
            start = _whole_rows(group)
            if not md5s:
                return start
            for dataset in ("md5", "values"):
                group[dataset].resize(start + len(md5s), axis=0)
            group["md5"][start:] = np.array([md5.encode("ascii") for md5 in md5s], dtype="S32")
            group["values"][start:] = values
            handle.flush()
            group.attrs["rows"] = start + len(md5s)
            handle.flush()
            return start + len(md5s)

    def read(self, name: str, md5s: list[str] | None = None, rows: int | None = None) -> tuple[list[str], np.ndarray]:
        """Rows of ``name``: all of them (the first ``rows`` if given), or those of ``md5s`` in that order.

        Missing md5s are an error.
        """
        if name not in self.names():
            raise FeatureStoreError(f"no feature set {name!r} in {self.path}: run `semcurate features extract`")
        with self._open("r") as handle:
            whole = _whole_rows(handle[name]) if rows is None else min(rows, _whole_rows(handle[name]))
            stored = [md5.decode("ascii") for md5 in handle[name]["md5"][:whole]]
            values = handle[name]["values"][:whole]
        if md5s is None:
            return stored, values
        row_of = {md5: row for row, md5 in enumerate(stored)}
        missing = [md5 for md5 in md5s if md5 not in row_of]
        if missing:
            raise FeatureStoreError(f"{len(missing)} images have no row in {name!r} (e.g. {missing[0]})")
        return list(md5s), values[[row_of[md5] for md5 in md5s]]

    def replace(self, name: str, md5s: list[str], values: np.ndarray) -> int:
        """Write ``name`` anew with exactly these rows (derived sets are recomputed whole)."""
        with self.writing():
            self.delete(name)
            return self.append(name, md5s, values)

    def delete(self, name: str) -> None:
        """Remove feature set ``name`` from the file (nothing if it is not there)."""
        if self._file().exists():
            with self.writing(), self._open("a") as handle:
                if name in handle:
                    del handle[name]


def _whole_rows(group: h5py.Group) -> int:
    """Rows of a feature set written whole: the ``rows`` attribute (files from before it: every md5 row)."""
    return int(group.attrs.get("rows", group["md5"].shape[0]))
