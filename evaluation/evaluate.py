"""Shell for ``semcurate evaluate`` and ``compare-2d``: NMI curves of stored clusterings, tree scores, Fig. 4.1.

For every feature set × method it reads the stored clustering (it never
clusters: the clustering stage writes clusterings, and a missing one is an
error naming the ``semcurate cluster`` command that makes it), scores it
against the top categories of a labelled dataset at every k
(:func:`~semcurate.evaluation.scores.nmi_curve`, one pass over the merges for
trees) and draws the thesis' Fig. 4.5: one frame per feature set, one curve
per algorithm, the reference curves of Fig. 4.4 behind them. The stored
sub-category tree is scored against the Hierarchical labels
(:func:`tree_scores`). Numbers go to ``OUT/nmi_grid.json`` and
``OUT/tree_scores.json``, the figure to ``OUT/nmi_grid.png``.
:func:`compare_2d_study` draws Fig. 4.1 into ``OUT/compare2d.png`` and its
numbers into ``OUT/compare2d.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from semcurate.clustering.runs import ClusteringError, load_clustering
from semcurate.clustering.store import StoredClustering
from semcurate.db.models import Clustering, TreeMemberRow, TreeNodeRow, TreeRow
from semcurate.evaluation import scores
from semcurate.features.analysis import StudyError, labelled_images

#: Colours of the thesis' Fig. 4.5 where it names them (single brown, complete cyan, Ward red, Density Peaks pink,
#: centroid red in the text's first row; here a distinct purple), and neutral ones for the other methods.
METHOD_COLOURS = {
    "single": "tab:brown",
    "complete": "tab:cyan",
    "ward": "tab:red",
    "density-peaks": "tab:pink",
    "centroid": "tab:purple",
    "average": "tab:olive",
    "kmeans": "tab:gray",
    "gmm": "black",
    "spectral": "tab:blue",
    "hdbscan": "tab:green",
    "louvain": "tab:orange",
}


class EvaluationError(Exception):
    """An evaluation that cannot run on what is stored (one clear line)."""


def truth_for(md5s: list[str], categories: dict[str, str]) -> np.ndarray:
    """The category of each md5 as an object array, None where the image carries no label."""
    return np.array([categories.get(md5) for md5 in md5s], dtype=object)


def evaluate(
    sessions: sessionmaker,
    feature_sets: list[str],
    methods: list[str],
    dataset: str,
    out: Path,
    *,
    subset: str | None = None,
    k_max: int = 500,
    reporter: Callable[[str, int], Callable[[int], None]] | None = None,
) -> dict:
    """NMI curves for every feature set × method, reference curves per feature set, the Fig. 4.5 grid.

    Every feature set × method must have been clustered (``semcurate cluster``) on ``subset``; the newest
    stored clustering of each is scored (its database row names the HDF5 file holding its arrays). Trees
    are scored at k = 2 .. ``k_max`` (at most the number of points), flat methods at the stored ks up to
    ``k_max``.

    Raises
    ------
    EvaluationError
        No labels of ``dataset``, a clustering that is not stored (naming the command that makes it), or a
        feature set none of whose images carries a label.
    """
    try:
        categories = labelled_images(sessions, dataset, subset)
    except StudyError as error:
        raise EvaluationError(str(error)) from None
    # Every clustering is read before the first curve, so that a missing one is reported before any work.
    clusterings = {
        (feature_set, method): stored_clustering(sessions, feature_set, method, subset)
        for feature_set in feature_sets
        for method in methods
    }
    advance = reporter("NMI curves", len(feature_sets) * len(methods)) if reporter else None
    frames = []
    for feature_set in feature_sets:
        frame = {"feature_set": feature_set, "curves": {}, "dendrogram_purity": {}}
        for method in methods:
            row, stored = clusterings[feature_set, method]
            truth = truth_for(stored.md5s, categories)
            if not any(label is not None for label in truth):
                raise EvaluationError(
                    f"none of the {len(stored.md5s)} images of {feature_set} carries a {dataset} label"
                )
            if stored.linkage is not None:
                ks = list(range(2, min(k_max, len(stored.md5s)) + 1))
                curve = scores.nmi_curve(stored.linkage, truth, ks)
                frame["dendrogram_purity"][method] = scores.dendrogram_purity(stored.linkage, truth)
            else:
                ks = [k for k in stored.available_ks() if k <= k_max]
                curve = scores.nmi_curve({k: stored.labels_by_k[k] for k in ks}, truth, ks)
            frame["curves"][method] = {"clustering_id": row.id, "ks": ks, "nmi": [float(value) for value in curve]}
            frame.setdefault("n_points", len(stored.md5s))
            frame.setdefault("n_labelled", int(sum(label is not None for label in truth)))
            frame.setdefault("truth", truth)
            if advance:
                advance(1)
        truth = frame.pop("truth")
        frame["n_classes"] = len({label for label in truth if label is not None})
        ks = list(range(2, min(k_max, frame["n_labelled"]) + 1))
        references = scores.reference_curves(truth, ks)
        frame["references"] = {key: [float(value) for value in values] for key, values in references.items()}
        frames.append(frame)

    best = [best_record(frame, method, curve) for frame in frames for method, curve in frame["curves"].items()]
    result = {"dataset": dataset, "subset": subset, "k_max": k_max, "frames": frames, "best": best}
    out.mkdir(parents=True, exist_ok=True)
    nmi_grid_figure(frames, dataset).savefig(out / "nmi_grid.png", dpi=110)
    (out / "nmi_grid.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def best_record(frame: dict, method: str, curve: dict) -> dict:
    """One row of the "best k" table: where the curve most exceeds chance, and its value at the true k.

    ``k``/``nmi``/``excess_over_chance`` are the k where the NMI most exceeds
    the uniform-random reference of the same k
    (:func:`~semcurate.evaluation.scores.best_k_over_chance`), not the k of
    the largest NMI, which against a few classes is nearly always the largest
    k scored; ``nmi_at_classes`` is the curve at k = the number of labelled
    classes (None when that k was not scored).
    """
    references = frame["references"]
    k, value, excess = scores.best_k_over_chance(
        curve["ks"], curve["nmi"], references["ks"], references["uniform_mean"]
    )
    classes = frame["n_classes"]
    return {
        "feature_set": frame["feature_set"],
        "method": method,
        "k": k,
        "nmi": round(value, 4),
        "excess_over_chance": round(excess, 4),
        "classes": classes,
        "nmi_at_classes": round(curve["nmi"][curve["ks"].index(classes)], 4) if classes in curve["ks"] else None,
        "dendrogram_purity": frame["dendrogram_purity"].get(method),
    }


def stored_clustering(
    sessions: sessionmaker, feature_set: str, method: str, subset: str | None
) -> tuple[Clustering, StoredClustering]:
    """The newest stored clustering of ``feature_set`` by ``method`` on ``subset`` (None: all images).

    Raises
    ------
    EvaluationError
        When none is stored, naming the ``semcurate cluster`` command that makes it.
    """
    try:
        return load_clustering(sessions, feature_set=feature_set, method=method, subset=subset)
    except ClusteringError:
        command = f"semcurate cluster {feature_set} --method {method}" + (f" --subset {subset}" if subset else "")
        where = f" on subset {subset!r}" if subset else ""
        message = f"no {method} clustering of {feature_set}{where} is stored: run `{command}` first"
        raise EvaluationError(message) from None


def nmi_grid_figure(frames: list[dict], dataset: str) -> Figure:
    """Fig. 4.5: one frame per feature set, NMI against k per algorithm over the Fig. 4.4 reference curves."""
    columns = min(2, len(frames))
    rows = -(-len(frames) // columns)
    figure = Figure(figsize=(6.2 * columns, 4.2 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for ax, frame in zip(axes, frames, strict=False):  # more axes than frames in a half-filled last row
        references = frame["references"]
        ks = references["ks"]
        mean, spread = np.array(references["uniform_mean"]), np.array(references["uniform_std"])
        ax.plot(ks, references["ideal"], color="tab:orange", lw=1, label="ideal refinement")
        ax.plot(ks, mean, color="tab:green", lw=1, label="uniform random")
        ax.fill_between(ks, mean - spread, mean + spread, color="tab:green", alpha=0.2, lw=0)
        ax.plot(ks, references["orthogonal"], color="tab:blue", lw=1, ls="--", label="orthogonal")
        for method, curve in frame["curves"].items():
            marker = "o" if len(curve["ks"]) < 40 else None
            ax.plot(
                curve["ks"], curve["nmi"], color=METHOD_COLOURS.get(method), lw=1.6, marker=marker, ms=3, label=method
            )
        ax.set_xscale("log")
        ax.set_xlabel("k, number of clusters")
        ax.set_ylabel(f"NMI against {dataset}")
        ax.set_title(f"{frame['feature_set']} ({frame['n_points']} images, {frame['n_labelled']} labelled)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[len(frames) :]:
        ax.set_visible(False)
    return figure


def tree_scores(
    sessions: sessionmaker, hierarchy_dataset: str, tree_id: int | None = None, *, out_dir: Path | None = None
) -> dict:
    """Scores of a stored sub-category tree against hierarchical labels (paths like ``Nanowires/vertical``).

    Per category: NMI of its children against the sub-category (second path level) of the labelled images
    in it. Overall: NMI of the leaves against the full label path, and the tree's purity (Heller &
    Ghahramani's dendrogram purity generalised to any tree) against the full label path (None when no two
    labelled images share a path). ``tree_id`` None scores the newest tree. With ``out_dir`` the scores are
    also written to ``out_dir/tree_scores.json`` (the report reads them from ``results/evaluate/``).
    A tree built with ``tree build --hierarchy`` of the same dataset is refused: its labels stopped the splits.
    """
    with sessions() as session:
        if tree_id is not None and session.get(TreeRow, tree_id) is None:
            raise EvaluationError(f"no tree {tree_id} is stored: see `semcurate tree list`")
        tree_id = tree_id or session.scalar(select(TreeRow.id).order_by(TreeRow.id.desc()).limit(1))
        if tree_id is None:
            raise EvaluationError("no sub-category tree is stored; run `semcurate tree build FEATURE_SET`")
        if json.loads(session.get(TreeRow, tree_id).parameters or "{}").get("hierarchy_dataset") == hierarchy_dataset:
            raise EvaluationError(
                f"tree {tree_id} was built with --hierarchy {hierarchy_dataset}, whose labels decide where its "
                "splits stop: scored against them it would be flattered; score it against another labelled set"
            )
        try:
            truth = labelled_images(sessions, hierarchy_dataset, None, paths=True)
        except StudyError as error:
            raise EvaluationError(str(error)) from None
        if not truth:
            raise EvaluationError(f"no matched labels of dataset {hierarchy_dataset!r}")
        nodes = {row.id: row for row in session.scalars(select(TreeNodeRow).where(TreeNodeRow.tree_id == tree_id))}
        leaf_of: dict[str, str] = {}
        children_of: dict[int, list[int]] = {}
        for node in nodes.values():
            if node.parent_id is not None:
                children_of.setdefault(node.parent_id, []).append(node.id)
        leaves = [node_id for node_id in nodes if node_id not in children_of]
        members = session.execute(
            select(TreeMemberRow.node_id, TreeMemberRow.image_md5).where(TreeMemberRow.node_id.in_(leaves))
        ).all()
        for node_id, md5 in members:
            leaf_of[md5] = nodes[node_id].path
        # Each member of a category goes to its child (depth 2), or to the category itself when it was not split.
        child_of: dict[str, dict[str, str]] = {}
        for node_id, node in nodes.items():
            if not (node.depth == 2 or (node.depth == 1 and node_id not in children_of)):
                continue
            for (md5,) in session.execute(select(TreeMemberRow.image_md5).where(TreeMemberRow.node_id == node_id)):
                child_of.setdefault(node.category, {})[md5] = node.path
    labelled = [md5 for md5 in leaf_of if md5 in truth]
    if not labelled:
        raise EvaluationError(f"none of the tree's images carries a {hierarchy_dataset} label")
    split = {node.category for node in nodes.values() if node.depth == 2}
    per_category = {
        category: category_score(children, truth, category, category in split)
        for category, children in sorted(child_of.items())
    }
    leaf_labels = np.array([leaf_of[md5] for md5 in labelled], dtype=object)
    truth_labels = np.array([truth[md5] for md5 in labelled], dtype=object)
    paths = [tuple(leaf_of[md5].split(".")) for md5 in labelled]
    result = {
        "tree_id": tree_id,
        "dataset": hierarchy_dataset,
        "labelled_images": len(labelled),
        "leaf_nmi": scores.nmi(truth_labels, leaf_labels),
        # Purity counts pairs of one class; a tiny corpus may label no two images alike: then it is undefined.
        "purity": scores.hierarchy_purity(paths, truth_labels) if len(set(truth_labels)) < len(labelled) else None,
        "per_category": per_category,
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "tree_scores.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def category_score(children: dict[str, str], truth: dict[str, str], category: str, was_split: bool) -> dict:
    """NMI of one category's children against the sub-categories (second label level) of its labelled images.

    Every category gets a row: one that was not split has a single "child"
    (itself) and scores 0 against two or more sub-categories (``split`` False
    marks it); ``nmi`` is None when none of its images carries a label of
    this category.  Only images labelled with this category count, so a
    misplaced image does not score against another category's sub-categories.
    """
    inside = [md5 for md5 in children if md5 in truth and truth[md5].split("/")[0] == category]
    subcategories = np.array(["/".join(truth[md5].split("/")[:2]) for md5 in inside], dtype=object)
    return {
        "split": was_split,
        "labelled": len(inside),
        "children": len(set(children.values())),
        "subcategories": len(set(subcategories)),
        "nmi": scores.nmi(subcategories, np.array([children[md5] for md5 in inside], dtype=object)) if inside else None,
    }


def compare_2d_study(
    out_dir: Path, *, n_samples: int = 3000, random_state: int = 0, progress: Callable[[int], None] | None = None
) -> list[dict]:
    """Thesis Fig. 4.1: the five algorithms on scikit-learn's synthetic 2-D datasets, written to ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Folder for ``compare2d.png`` (the grid of panels) and ``compare2d.json`` (the records); created if missing.
    n_samples : int
        Points per dataset (the thesis: 3,000).
    random_state : int
        Seed of the datasets.
    progress : callable(int), optional
        Called with 1 after each of the 30 clusterings.

    Returns
    -------
    list of dict
        One record per dataset × algorithm: running time in seconds and the adjusted Rand index against the
        generating labels (None for the dataset without structure), see
        :func:`~semcurate.evaluation.compare2d.as_records`.
    """
    from semcurate.evaluation.compare2d import as_records, compare_2d, figure_2d

    result = compare_2d(n_samples=n_samples, random_state=random_state, progress=progress)
    records = as_records(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_2d(result).savefig(out_dir / "compare2d.png", dpi=90)
    (out_dir / "compare2d.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return records
