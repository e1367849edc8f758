"""The HDF5 feature store: one file, one group per feature set, rows keyed by image md5.

Layout of a feature set ``NAME`` inside the file::

    /NAME/md5      (n,)    fixed-length ASCII strings of 32 hex digits
    /NAME/values   (n, d)  float32, chunked, resizable

Rows are appended in batches and never rewritten, so an interrupted
extraction keeps every batch it finished and a re-run adds only the missing
md5s (:meth:`FeatureStore.md5s`).  Reads return rows in the order asked for.
Metadata (extractor, weights digest, dimension, parameters) lives in the
database, not here (:class:`semcurate.db.models.FeatureSet`).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: Rows per HDF5 chunk: a chunk of 2048-d float32 rows is then 1 MiB.
CHUNK_ROWS = 128


class FeatureStoreError(Exception):
    """A feature set that is missing, or rows that do not fit it (one clear line)."""


class FeatureStore:
    """Read and append feature rows in one HDF5 file (created on first write)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def names(self) -> list[str]:
        """Feature sets in the file."""
        if not self.path.exists():
            return []
        with h5py.File(self.path, "r") as handle:
            return sorted(handle.keys())

    def md5s(self, name: str) -> list[str]:
        """The md5 of every row of ``name``, in storage order (empty if the set does not exist)."""
        if not self.path.exists():
            return []
        with h5py.File(self.path, "r") as handle:
            if name not in handle:
                return []
            return [md5.decode("ascii") for md5 in handle[name]["md5"][:]]

    def dimension(self, name: str) -> int | None:
        if not self.path.exists():
            return None
        with h5py.File(self.path, "r") as handle:
            return int(handle[name]["values"].shape[1]) if name in handle else None

    def append(self, name: str, md5s: list[str], values: np.ndarray) -> int:
        """Append rows to ``name`` (created with the rows' dimension); returns the new row count."""
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != len(md5s):
            raise FeatureStoreError(f"{name}: {len(md5s)} md5s but values of shape {values.shape}")
        if not np.isfinite(values).all():
            raise FeatureStoreError(f"{name}: refusing to store non-finite feature values")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(self.path, "a") as handle:
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
            group = handle[name]
            if group["values"].shape[1] != values.shape[1]:
                raise FeatureStoreError(
                    f"{name} has dimension {group['values'].shape[1]}, these rows have {values.shape[1]}"
                )
            start = group["md5"].shape[0]
            for dataset in ("md5", "values"):
                group[dataset].resize(start + len(md5s), axis=0)
            group["md5"][start:] = np.array([md5.encode("ascii") for md5 in md5s], dtype="S32")
            group["values"][start:] = values
            return start + len(md5s)

    def read(self, name: str, md5s: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Rows of ``name``: all of them, or those of ``md5s`` in that order (missing md5s are an error)."""
        if name not in self.names():
            raise FeatureStoreError(f"no feature set {name!r} in {self.path}: run `semcurate features extract`")
        with h5py.File(self.path, "r") as handle:
            stored = [md5.decode("ascii") for md5 in handle[name]["md5"][:]]
            values = handle[name]["values"][:]
        if md5s is None:
            return stored, values
        row_of = {md5: row for row, md5 in enumerate(stored)}
        missing = [md5 for md5 in md5s if md5 not in row_of]
        if missing:
            raise FeatureStoreError(f"{len(missing)} images have no row in {name!r} (e.g. {missing[0]})")
        return list(md5s), values[[row_of[md5] for md5 in md5s]]

    def replace(self, name: str, md5s: list[str], values: np.ndarray) -> int:
        """Write ``name`` anew with exactly these rows (derived sets are recomputed whole)."""
        self.delete(name)
        return self.append(name, md5s, values)

    def delete(self, name: str) -> None:
        if self.path.exists():
            with h5py.File(self.path, "a") as handle:
                if name in handle:
                    del handle[name]
