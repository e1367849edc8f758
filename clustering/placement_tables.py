"""Reading a tree's stored placement report into the rows its pages show.

``semcurate tree build`` stores, with each tree, the JSON report of how the
unlabelled images were placed in the labelled categories
(:func:`~semcurate.clustering.placement.placement_report`).  The HTML report,
the web browser's tree page and the CLI show the same tables from it; this
module turns the stored report into those rows.  It is pure and imports
nothing heavy, so that a page that shows a tree does not load scikit-learn.
"""

from __future__ import annotations

import json


def placement_summary(stored: str | dict | None) -> dict | None:
    """A stored placement report as the HTML report and the web browser show it; None where nothing was stored.

    Parameters
    ----------
    stored : str, dict or None
        ``TreeRow.placement``, the JSON text of
        :func:`~semcurate.clustering.placement.placement_report` as ``tree
        build`` stores it with the tree (or, where no classifier was fitted,
        the short form :func:`~semcurate.clustering.placement.place_unlabelled`
        gives, which says why in ``untested``), or that report as a dict.

    Returns
    -------
    dict or None
        ``classifier``, ``calibration``, ``selected_by``, ``untested``,
        ``heldout_accuracy`` and ``heldout_balanced_accuracy`` (shares of the
        labelled rows the cross-validation held out), ``placed``, ``doubtful``
        and ``doubtful_below`` (a probability); ``unreached``, the placed
        images that no label reached through label spreading's graph (0 in
        reports stored before they were counted), and ``unreached_placed_by``
        (what placed them); ``per_category`` (rows: name,
        labelled, held out, held-out accuracy, placed, doubtful) and
        ``confusion`` (rows: number and name of the labelled category, then
        the held-out count predicted in each category, numbered as the rows;
        None without held-out rows).  ``{"error": ...}`` when the stored text
        is not such a report, so that a page tells its reader instead of
        failing.

    Examples
    --------
    >>> stored = '{"classifier": null, "untested": "one labelled category (Tips)", "doubtful_below": 0.5, "placed": 3, '
    >>> summary = placement_summary(stored + '"doubtful": 0}')
    >>> summary["classifier"], summary["untested"], summary["placed"], summary["per_category"], summary["confusion"]
    (None, 'one labelled category (Tips)', 3, [], None)
    >>> placement_summary(stored)["error"].split(";")[0]
    'the placement report stored with this tree could not be read'
    """
    if not stored:
        return None
    try:
        report = json.loads(stored) if isinstance(stored, str) else stored
        per_category = [
            [name, cell["labelled"], cell["heldout"], cell["accuracy"], cell["placed"], cell["doubtful"]]
            for name, cell in report.get("per_category", {}).items()
        ]
        confusion = report.get("confusion")
        confusion_rows = (
            [
                [f"{number}. {name}", *counts]
                for number, (name, counts) in enumerate(
                    zip(confusion["categories"], confusion["matrix"], strict=True), start=1
                )
            ]
            if confusion
            else None
        )
        return {
            "classifier": report["classifier"],
            "calibration": report.get("calibration"),
            "selected_by": report.get("selected_by"),
            "untested": report.get("untested"),
            "heldout_accuracy": report.get("heldout_accuracy"),
            "heldout_balanced_accuracy": report.get("heldout_balanced_accuracy"),
            "placed": report["placed"],
            "doubtful": report["doubtful"],
            "doubtful_below": report["doubtful_below"],
            "unreached": report.get("unreached", 0),
            "unreached_placed_by": report.get("unreached_placed_by"),
            "per_category": per_category,
            "confusion": confusion_rows,
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {
            "error": "the placement report stored with this tree could not be read; run `semcurate tree build` again"
        }
