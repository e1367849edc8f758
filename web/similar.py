"""Similar images: the k nearest rows of a feature matrix, by exact (brute-force) search.

The rows are standardised first (each column to mean 0, variance 1, as
``semcurate cluster`` does by default), so a few wide columns do not decide
every distance; the distance is Euclidean between standardised rows.

Exact search is one matrix-vector product over the whole matrix: at
52,682 × 2,048 float32 rows (431 MB) it answers k = 12 in about 23 ms on one
core (``bench/serve.py``), well inside the 50 ms target, so no approximate
index is kept (an ANN library such as hnswlib would bring a second copy of
the rows and a recall below 1 for no gain at this size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Neighbour:
    """One answer of a similar-image query: the image md5 and its distance (standardised feature units)."""

    md5: str
    distance: float


class SimilarIndex:
    """Exact k-nearest-neighbour search over the rows of one feature set.

    Parameters
    ----------
    md5s : list of str
        The image md5 of each row, in row order.
    values : ndarray of shape (n_rows, n_features)
        The feature rows (any float dtype; kept as float32).

    Notes
    -----
    Memory: one standardised float32 copy of the rows plus one float per row
    (the squared norms).  A query costs one pass over the matrix,
    O(n_rows × n_features); ``d² = |x|² − 2 x·q + |q|²`` is computed with the
    query's own norm left out (it ranks nothing) and clipped at 0.
    """

    def __init__(self, md5s: list[str], values: np.ndarray):
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != len(md5s):
            raise ValueError(f"{len(md5s)} md5s but rows of shape {values.shape}")
        self.md5s = list(md5s)
        self.row_of = {md5: row for row, md5 in enumerate(self.md5s)}
        self.mean_ = values.mean(axis=0, dtype=np.float64).astype(np.float32)
        scale = values.std(axis=0, dtype=np.float64).astype(np.float32)
        self.scale_ = np.where(scale > 0, scale, np.float32(1.0))
        self.rows_ = (values - self.mean_) / self.scale_
        self.squared_norms_ = np.einsum("ij,ij->i", self.rows_, self.rows_)

    def __len__(self) -> int:
        return len(self.md5s)

    def __contains__(self, md5: object) -> bool:
        return md5 in self.row_of

    def standardise(self, values: np.ndarray) -> np.ndarray:
        """Rows of the same feature set (not necessarily stored) scaled as the index's own rows."""
        return (np.asarray(values, dtype=np.float32) - self.mean_) / self.scale_

    def query_row(self, row: np.ndarray, k: int = 12, exclude: str | None = None) -> list[Neighbour]:
        """The ``k`` rows nearest a standardised ``row``, nearest first (ties by md5), leaving out md5 ``exclude``."""
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        row = np.asarray(row, dtype=np.float32)
        partial = self.squared_norms_ - 2.0 * (self.rows_ @ row)
        take = min(k + (exclude is not None), len(self.md5s))
        if take < len(self.md5s):
            candidates = np.argpartition(partial, take - 1)[:take]
        else:
            candidates = np.arange(len(self.md5s))
        squared = np.maximum(partial[candidates] + float(row @ row), 0.0)
        order = sorted(range(len(candidates)), key=lambda i: (squared[i], self.md5s[candidates[i]]))
        found = [
            Neighbour(self.md5s[candidates[i]], float(np.sqrt(squared[i])))
            for i in order
            if self.md5s[candidates[i]] != exclude
        ]
        return found[:k]

    def query(self, md5: str, k: int = 12) -> list[Neighbour]:
        """The ``k`` images most like stored image ``md5`` (itself left out), nearest first.

        Raises
        ------
        KeyError
            When ``md5`` has no row in this feature set.
        """
        return self.query_row(self.rows_[self.row_of[md5]], k, exclude=md5)

    def centre_order(self, md5s: list[str]) -> tuple[list[str], np.ndarray]:
        """``md5s`` (those with a row) sorted by distance to their own mean row, nearest first, with the distances.

        This is how a node's gallery puts its typical images first and its doubtful ones last.
        """
        present = [md5 for md5 in md5s if md5 in self.row_of]
        if not present:
            return [], np.zeros(0, dtype=np.float32)
        rows = self.rows_[[self.row_of[md5] for md5 in present]]
        distances = np.linalg.norm(rows - rows.mean(axis=0), axis=1)
        order = np.lexsort((np.array(present), distances))
        return [present[i] for i in order], distances[order]
