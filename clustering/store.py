"""The HDF5 cluster store: the arrays of every stored clustering, one group each.

Layout of a clustering stored under ``KEY``::

    /KEY/md5       (n,)        image md5 of each clustered point, in clustering order
    /KEY/linkage   (n - 1, 4)  SciPy-format merge tree (hierarchical methods)
    /KEY/labels    (m, n)      int32 labels, one row per k in attribute ``ks`` (flat methods)
    /KEY/extra/*               method-specific arrays (Density Peaks: log density, delta, ...)

What was clustered, how, and with which parameters is in the database
(:class:`semcurate.db.models.Clustering`). The arrays are written before the
row, so an interrupted run leaves at most an unreferenced group, never a row
without its arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from semcurate.clustering.hierarchy import Cutter


class ClusterStoreError(Exception):
    """A stored clustering that is missing or cannot give what was asked (one clear line)."""


@dataclass
class StoredClustering:
    """The arrays of one clustering: a merge tree, or labels for a few k."""

    md5s: list[str]
    linkage: np.ndarray | None = None
    labels_by_k: dict[int, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def labels_for(self, k: int) -> np.ndarray:
        """Labels of every point with ``k`` clusters: a cut of the tree, or the stored partition."""
        if self.linkage is not None:
            return Cutter(self.linkage).labels(k)
        if k not in self.labels_by_k:
            raise ClusterStoreError(f"no partition with k = {k} stored; stored: {sorted(self.labels_by_k)}")
        return self.labels_by_k[k]

    def available_ks(self) -> list[int]:
        """Every k this clustering can give (1 .. n for a tree)."""
        return list(range(1, len(self.md5s) + 1)) if self.linkage is not None else sorted(self.labels_by_k)


class ClusterStore:
    """Write and read clusterings in one HDF5 file (created on first write)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def keys(self) -> list[str]:
        if not self.path.exists():
            return []
        with h5py.File(self.path, "r") as handle:
            return sorted(handle.keys())

    def write(self, key: str, result: StoredClustering) -> None:
        """Store ``result`` under ``key``, replacing what was there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(self.path, "a") as handle:
            if key in handle:
                del handle[key]
            group = handle.create_group(key)
            group.create_dataset("md5", data=np.array([md5.encode("ascii") for md5 in result.md5s], dtype="S32"))
            if result.linkage is not None:
                group.create_dataset("linkage", data=np.asarray(result.linkage, dtype=np.float64))
            if result.labels_by_k:
                ks = sorted(result.labels_by_k)
                labels = group.create_dataset(
                    "labels", data=np.stack([result.labels_by_k[k] for k in ks]).astype(np.int32), compression="gzip"
                )
                labels.attrs["ks"] = np.asarray(ks, dtype=np.int64)
            for name, values in result.extra.items():
                group.create_dataset(f"extra/{name}", data=np.asarray(values))

    def read(self, key: str) -> StoredClustering:
        if key not in self.keys():
            raise ClusterStoreError(f"clustering {key!r} is not in {self.path}; run `semcurate cluster` again")
        with h5py.File(self.path, "r") as handle:
            group = handle[key]
            result = StoredClustering([md5.decode("ascii") for md5 in group["md5"][:]])
            if "linkage" in group:
                result.linkage = group["linkage"][:]
            if "labels" in group:
                labels = group["labels"]
                result.labels_by_k = {int(k): labels[row] for row, k in enumerate(labels.attrs["ks"])}
            if "extra" in group:
                result.extra = {name: dataset[:] for name, dataset in group["extra"].items()}
        return result

    def delete(self, key: str) -> None:
        if key in self.keys():
            with h5py.File(self.path, "a") as handle:
                del handle[key]
