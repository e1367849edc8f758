"""Shell for ``semcurate cluster``: load a feature set, cluster it, store the result with its parameters.

Hierarchical methods (the four linkages of thesis §4.1, average linkage, and
Density Peaks' divisive hierarchy of §4.2) store one merge tree, from which
any k is cut instantly later (Density Peaks' neighbour search uses every
core unless ``n_jobs`` is given; the result does not depend on it). Flat methods (k-means++, Gaussian mixtures,
spectral clustering) store one partition per k in ``2 .. k_max``; HDBSCAN
stores the one partition it finds (noise is label -1).

:func:`estimate_feature_set_clusters` (``semcurate n-clusters``) scores the
candidate numbers of clusters of a feature set and writes the curve and its
numbers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from semcurate.clustering.agglomerative import check_observations, linkage
from semcurate.clustering.flat import cluster_labels_per_k
from semcurate.clustering.methods import LINKAGE_METHODS, METHODS, OWN_COUNT_METHODS
from semcurate.clustering.store import ClusterStore, StoredClustering
from semcurate.db.models import Clustering
from semcurate.features.analysis import StudyError, feature_rows
from semcurate.features.preprocessing import preprocess
from semcurate.features.store import FeatureStore, FeatureStoreError


class ClusteringError(Exception):
    """A clustering that cannot run on what is stored or was asked (one clear line)."""


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ClusteringError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")


def cluster_points(
    values: np.ndarray,
    method: str,
    *,
    k_max: int,
    random_state: int = 0,
    progress: Callable[[int], None] | None = None,
    **parameters,
) -> StoredClustering:
    """Cluster the rows of ``values`` with ``method``; md5s are left empty for the caller to fill.

    Raises ``ValueError`` (from the core) for bad values and ``ClusteringError`` for a bad method or k.
    """
    check_method(method)
    values = check_observations(values)
    n_points = len(values)
    if method not in OWN_COUNT_METHODS and not 1 <= k_max <= n_points:
        raise ClusteringError(f"k_max = {k_max} but there are {n_points} points; k_max must be 1 .. {n_points}")
    if method in LINKAGE_METHODS:
        if parameters:
            raise ClusteringError(f"{method} linkage takes no parameters; got {', '.join(parameters)}")
        return StoredClustering([], linkage=linkage(values, method))
    if method == "density-peaks":
        from semcurate.clustering.density_peaks import DensityPeaks

        model = DensityPeaks(n_clusters=min(k_max, n_points), **{"n_jobs": -1, **parameters}).fit(values)
        extra = {
            "log_density": model.log_density_,
            "delta": model.delta_,
            "gamma": model.gamma_,
            "nearest_denser": model.nearest_denser_,
            "order": model.order_,
        }
        return StoredClustering([], linkage=model.linkage_, extra=extra)
    if method in OWN_COUNT_METHODS:
        found = cluster_labels_per_k(values, method, None, random_state=random_state, progress=progress, **parameters)
        return StoredClustering([], labels_by_k=found)
    ks = range(2, k_max + 1) if k_max >= 2 else [1]
    return StoredClustering(
        [],
        labels_by_k=cluster_labels_per_k(
            values, method, ks, random_state=random_state, progress=progress, **parameters
        ),
    )


def cluster_feature_set(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    cluster_store: ClusterStore,
    feature_set: str,
    method: str,
    *,
    subset: str | None = None,
    k_max: int = 30,
    random_state: int = 0,
    preprocessing: str = "standard",
    parameters: dict | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Cluster ``feature_set`` (restricted to ``subset``), store arrays and parameters; return a summary.

    The rows are preprocessed first (:func:`~semcurate.features.preprocessing.preprocess`;
    ``standard`` by default) and the choice is recorded with the parameters.
    Re-running with the same feature set, method, subset and parameters
    replaces the earlier result; other results are kept.
    """
    check_method(method)
    parameters = dict(parameters or {})
    try:
        md5s, values = feature_rows(sessions, feature_store, feature_set, subset)
        values = preprocess(values, preprocessing)
    except (StudyError, ValueError) as error:  # ValueError: an unknown preprocessing
        raise ClusteringError(str(error)) from None
    recorded = {"k_max": k_max, "random_state": random_state, "preprocessing": preprocessing, **parameters}
    started = time.perf_counter()
    try:
        result = cluster_points(values, method, k_max=k_max, random_state=random_state, progress=progress, **parameters)
    except (TypeError, ValueError) as error:  # an unknown keyword, a bad parameter value, rows with NaN
        raise ClusteringError(f"{method}: {error}") from None
    seconds = time.perf_counter() - started
    result.md5s = list(md5s)

    key = uuid.uuid4().hex[:16]
    cluster_store.write(key, result)
    with sessions.begin() as session:
        earlier = session.scalars(
            select(Clustering).where(
                Clustering.feature_set == feature_set,
                Clustering.method == method,
                Clustering.subset.is_(None) if subset is None else Clustering.subset == subset,
                Clustering.parameters == json.dumps(recorded, sort_keys=True),
            )
        ).all()
        replaced_keys = [row.store_key for row in earlier]
        for row in earlier:
            session.delete(row)
        row = Clustering(
            feature_set=feature_set,
            method=method,
            subset=subset,
            kind="hierarchy" if result.linkage is not None else "partitions",
            n_points=len(md5s),
            k_max=None if method in OWN_COUNT_METHODS else k_max,
            parameters=json.dumps(recorded, sort_keys=True),
            store_path=str(cluster_store.path.resolve()),
            store_key=key,
            seconds=seconds,
        )
        session.add(row)
        session.flush()
        clustering_id = row.id
    for old in replaced_keys:
        cluster_store.delete(old)
    return summarise(clustering_id, feature_set, method, subset, values.shape, seconds, result, k_max)


def summarise(
    clustering_id: int,
    feature_set: str,
    method: str,
    subset: str | None,
    shape: tuple,
    seconds: float,
    result: StoredClustering,
    k_max: int,
) -> dict:
    """What a user wants to see after a run: where it went, how long it took, cluster sizes at the largest k."""
    ks = result.available_ks()
    k_shown = max(k for k in ks if k <= max(k_max, min(ks)))
    sizes = np.bincount(result.labels_for(k_shown)[result.labels_for(k_shown) >= 0])
    return {
        "clustering_id": clustering_id,
        "feature_set": feature_set,
        "method": method,
        "subset": subset,
        "points": shape[0],
        "dimensions": shape[1],
        "seconds": round(seconds, 3),
        "kind": "hierarchy" if result.linkage is not None else "partitions",
        "k_stored": "1 .. n (cut on demand)" if result.linkage is not None else f"{min(ks)} .. {max(ks)}",
        "k_shown": k_shown,
        "largest_cluster_share": round(float(sizes.max() / sizes.sum()), 3),
        "singletons": int(np.count_nonzero(sizes == 1)),
    }


def load_clustering(
    sessions: sessionmaker, clustering_id: int | None = None, **where
) -> tuple[Clustering, StoredClustering]:
    """The newest stored clustering matching ``where`` (or the one with ``clustering_id``) and its arrays."""
    with sessions() as session:
        query = select(Clustering)
        if clustering_id is not None:
            query = query.where(Clustering.id == clustering_id)
        for column, value in where.items():
            query = query.where(getattr(Clustering, column) == value)
        row = session.scalars(query.order_by(Clustering.id.desc())).first()
        if row is None:
            wanted = (
                f"id {clustering_id}"
                if clustering_id is not None
                else ", ".join(f"{column}={value}" for column, value in where.items())
            )
            raise ClusteringError(f"no stored clustering with {wanted or 'any parameters'}; run `semcurate cluster`")
        session.expunge(row)
    return row, ClusterStore(row.store_path).read(row.store_key)


def list_clusterings(sessions: sessionmaker) -> list[dict]:
    """Every stored clustering, newest first, for ``semcurate cluster --list``."""
    with sessions() as session:
        rows = session.scalars(select(Clustering).order_by(Clustering.id.desc())).all()
        return [
            {
                "id": row.id,
                "feature_set": row.feature_set,
                "method": row.method,
                "subset": row.subset or "",
                "kind": row.kind,
                "points": row.n_points,
                "k_max": row.k_max,
                "seconds": round(row.seconds, 2),
                "parameters": row.parameters,
            }
            for row in rows
        ]


def estimate_feature_set_clusters(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    feature_set: str,
    criterion: str,
    method: str,
    out_dir: Path,
    *,
    k_min: int = 2,
    k_max: int = 12,
    subset: str | None = None,
    random_state: int = 0,
    sample_size: int = 5000,
    preprocessing: str = "standard",
) -> dict:
    """Estimate the number of clusters of ``feature_set`` and write the score curve and its numbers.

    Parameters
    ----------
    sessions : sessionmaker
        The database.
    feature_store : FeatureStore
        Where the rows of ``feature_set`` are.
    feature_set : str
        Feature set, e.g. ``classic.ae8``.
    criterion : {"elbow", "silhouette", "gap"}
        See :func:`~semcurate.clustering.n_clusters.estimate_n_clusters`.
    method : str
        A method told its k (``kmeans``, ``gmm``, ``spectral``) or a tree (a linkage, ``density-peaks``).
    out_dir : Path
        Folder for ``{feature_set}.{method}.{criterion}.png`` and ``.json`` (created if missing).
    k_min, k_max : int
        Candidate numbers of clusters ``k_min .. k_max``.
    subset : str, optional
        Only images of this subset.
    random_state : int
        Seed of the clusterer, the reference data (gap) and the silhouette sample.
    sample_size : int
        Rows the silhouette is computed on at most (it costs ``O(n²)`` distances otherwise).
    preprocessing : {"standard", "norm", "minmax", "none"}
        How the rows are scaled first (:func:`~semcurate.features.preprocessing.preprocess`).

    Returns
    -------
    dict
        ``estimate`` (the :class:`~semcurate.clustering.n_clusters.NClustersEstimate`), ``figure`` and ``numbers``
        (the paths written).

    Raises
    ------
    ClusteringError
        No such feature set or subset, or a k range or method the criterion cannot use (one clear line).
    LinkageMemoryError
        When a distance-matrix linkage would not fit in memory.
    """
    from semcurate.clustering.n_clusters import estimate_n_clusters

    try:
        _, values = feature_rows(sessions, feature_store, feature_set, subset)
        values = preprocess(values, preprocessing)
    except (StudyError, FeatureStoreError, ValueError) as error:
        raise ClusteringError(str(error)) from None
    try:
        estimate = estimate_n_clusters(
            values,
            criterion,
            range(k_min, k_max + 1),
            algorithm=method,
            random_state=random_state,
            sample_size=min(len(values), sample_size),
        )
    except ValueError as error:  # a k range beyond the rows, an unknown criterion or method, rows with NaN
        raise ClusteringError(f"{criterion} of {method} on {feature_set}: {error}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{feature_set}.{method}.{criterion}"
    figure, numbers = out_dir / f"{stem}.png", out_dir / f"{stem}.json"
    estimate.plot().savefig(figure, dpi=110)
    numbers.write_text(
        json.dumps({**estimate.as_dict(), "preprocessing": preprocessing}, indent=2) + "\n", encoding="utf-8"
    )
    return {"estimate": estimate, "figure": figure, "numbers": numbers}
