"""The catalogue of stored trees, read without loading SQLAlchemy (``semcurate tree list`` answers in ~0.4 s)."""

from __future__ import annotations

import json

from semcurate.db.quick_read import as_datetime, select_rows

#: Newest tree first; the columns ``semcurate tree list`` shows.
_TREES = """
SELECT id, feature_set, method, rule, depth, n_images, n_labelled, classifier_accuracy, parameters, created_at
FROM trees ORDER BY id DESC
"""


def list_trees(db: str | None) -> list[dict]:
    """Every stored tree of database ``db`` (URL or SQLite path), newest first, opened for reading only.

    Each dict holds ``id``, ``feature_set``, ``method``, ``rule``, ``depth``,
    ``images`` (members), ``labelled`` (members with a label),
    ``left_out_flagged`` (images left out for a quality flag; 0 for a tree
    built before they were), ``classifier_accuracy`` (held-out accuracy of the classifier that placed
    the unlabelled images, None when none was needed) and ``created``
    (``YYYY-MM-DD HH:MM``, UTC).
    """
    return [
        {
            "id": row["id"],
            "feature_set": row["feature_set"],
            "method": row["method"],
            "rule": row["rule"],
            "depth": row["depth"],
            "images": row["n_images"],
            "labelled": row["n_labelled"],
            "left_out_flagged": json.loads(row["parameters"] or "{}").get("left_out_flagged", 0),
            "classifier_accuracy": row["classifier_accuracy"],
            "created": f"{as_datetime(row['created_at']):%Y-%m-%d %H:%M}",
        }
        for row in select_rows(db, _TREES)
    ]
