"""``semcurate outliers`` shell: score a feature set's images for outlyingness, store and rank them.

Reads the finished feature set (:func:`semcurate.features.analysis.feature_rows`),
preprocesses its rows, scores them with :func:`semcurate.features.outliers.outlier_scores`
and replaces the set's rows of :class:`semcurate.db.models.OutlierScore`
(``rank`` 1 = the largest local outlier factor).
"""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import sessionmaker

from semcurate.db.models import File, OutlierScore
from semcurate.features.analysis import StudyError, feature_rows
from semcurate.features.outliers import outlier_scores
from semcurate.features.preprocessing import preprocess
from semcurate.features.store import FeatureStore
from semcurate.ingest.parallel import batched


class OutlierError(Exception):
    """Outliers that cannot be scored on what is stored (one clear line)."""


def score_outliers(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    feature_set: str,
    *,
    n_neighbors: int = 20,
    preprocessing: str = "standard",
    top: int = 20,
) -> dict:
    """Score, store and rank every image of ``feature_set``; return the summary with the ``top`` most outlying.

    Raises
    ------
    OutlierError
        For a feature set that is missing, partial or too small, or an unknown preprocessing.
    """
    try:
        md5s, values = feature_rows(sessions, feature_store, feature_set, None)
        values = preprocess(values, preprocessing)
    except (StudyError, ValueError) as error:
        raise OutlierError(str(error)) from None
    started = time.perf_counter()
    try:
        knn, lof = outlier_scores(values, n_neighbors)
    except ValueError as error:
        raise OutlierError(f"feature set {feature_set}: {error}") from None
    seconds = time.perf_counter() - started
    order = np.argsort(-lof, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(1, len(order) + 1)
    k = min(n_neighbors, len(md5s) - 1)
    with sessions.begin() as session:
        session.execute(delete(OutlierScore).where(OutlierScore.feature_set == feature_set))
        rows = [
            {
                "feature_set": feature_set,
                "image_md5": md5,
                "k": k,
                "knn_distance": float(knn[i]),
                "lof": float(lof[i]),
                "rank": int(rank[i]),
            }
            for i, md5 in enumerate(md5s)
        ]
        for batch in batched(rows, 2000):
            session.execute(insert(OutlierScore), batch)
    return {
        "feature_set": feature_set,
        "images": len(md5s),
        "k": k,
        "preprocessing": preprocessing,
        "seconds": round(seconds, 3),
        "top": ranked_outliers(sessions, feature_set, top),
    }


def ranked_outliers(sessions: sessionmaker, feature_set: str, limit: int = 20) -> list[dict]:
    """The ``limit`` most outlying images of ``feature_set`` as stored: rank, md5, lof, kNN distance, a source path."""
    with sessions() as session:
        rows = session.execute(
            select(OutlierScore.rank, OutlierScore.image_md5, OutlierScore.lof, OutlierScore.knn_distance)
            .where(OutlierScore.feature_set == feature_set)
            .order_by(OutlierScore.rank)
            .limit(limit)
        ).all()
        paths = dict(
            session.execute(
                select(File.image_md5, File.relpath).where(
                    File.status == "image", File.image_md5.in_([row[1] for row in rows])
                )
            ).all()
        )
    return [
        {"rank": rank, "md5": md5, "lof": round(lof, 4), "knn_distance": round(knn, 4), "path": paths.get(md5, "")}
        for rank, md5, lof, knn in rows
    ]
