"""Shell for ``semcurate tree build``: categories from labels (or a classifier), a tree per category, stored.

Steps: read a feature set's rows; give every image a top category — its
label in ``labels_dataset`` where it has one, otherwise the placement of
:func:`semcurate.clustering.placement.place_unlabelled` (a classifier chosen
by cross-validation on the labelled rows and calibrated; each placed image
keeps the probability of its category and a doubtful flag, the tree keeps the
placement report); split each category with
:func:`semcurate.clustering.splitting.split`; store nodes, members, medoid
representatives and mean images in the database.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from semcurate.clustering.methods import CATEGORY_BLOCK_WEIGHT, MONOTONE_LINKAGES, OWN_COUNT_METHODS
from semcurate.clustering.placement import DOUBTFUL_BELOW, place_unlabelled
from semcurate.clustering.runs import ClusteringError, check_method
from semcurate.clustering.splitting import (
    MIN_NULL_Z,
    MIN_SILHOUETTE,
    MIN_STABILITY,
    SAMPLE_ROWS,
    SPLIT_RULES,
    Branch,
    community_weighted,
    merge_agreeing_siblings,
    split,
    stop_where_labels_agree,
    with_category_block,
)
from semcurate.db.models import Image, ScaleReading, TreeMemberRow, TreeNodeRow, TreeRow
from semcurate.features.analysis import StudyError, feature_rows, labelled_images
from semcurate.features.preprocessing import preprocess
from semcurate.features.store import FeatureStore
from semcurate.ingest.quality_database import raised_flags

#: Size (width, height) in pixels of the stored mean images.
MEAN_IMAGE_SIZE = (160, 120)
#: Members averaged into a node's mean image: the ones with the smallest md5, a uniform random sample that
#: is shared between a node and its children, so each thumbnail is decoded once.
MEAN_IMAGE_SAMPLE = 32


def thumbnail(path: Path, specimen_rows: int | None) -> np.ndarray:
    """Grey ``MEAN_IMAGE_SIZE`` float thumbnail of an image's specimen (data bar cut away), decoded small."""
    with PILImage.open(path) as image:
        full_height = image.height
        image.draft("L", (MEAN_IMAGE_SIZE[0] * 2, MEAN_IMAGE_SIZE[1] * 2))
        grey = image.convert("L")
        if specimen_rows:
            grey = grey.crop((0, 0, grey.width, max(1, round(specimen_rows * grey.height / full_height))))
        return np.asarray(grey.resize(MEAN_IMAGE_SIZE, PILImage.Resampling.BILINEAR), dtype=np.float32)


class MeanImages:
    """Mean grey images of tree nodes, decoding each sampled member once."""

    def __init__(self, sessions: sessionmaker, image_store: Path):
        with sessions() as session:
            rows = session.execute(
                select(Image.md5, ScaleReading.stripe_y0).outerjoin(ScaleReading, ScaleReading.image_md5 == Image.md5)
            ).all()
        self._where = {md5: (image_store / f"{md5}.jpg", stripe_top) for md5, stripe_top in rows}
        self._cache: dict[str, np.ndarray | None] = {}

    def png(self, md5s: list[str]) -> bytes | None:
        """PNG of the mean thumbnail of (a sample of) ``md5s``; None when none of them can be read."""
        thumbnails = [self._thumbnail(md5) for md5 in sorted(md5s)[:MEAN_IMAGE_SAMPLE]]
        thumbnails = [item for item in thumbnails if item is not None]
        if not thumbnails:
            return None
        mean = np.clip(np.mean(thumbnails, axis=0), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        PILImage.fromarray(mean).save(buffer, format="PNG")
        return buffer.getvalue()

    def _thumbnail(self, md5: str) -> np.ndarray | None:
        if md5 not in self._cache:
            path, stripe_top = self._where.get(md5, (None, None))
            try:
                self._cache[md5] = thumbnail(path, stripe_top) if path is not None else None
            except OSError:  # a store file gone missing or unreadable: the mean is over the others
                self._cache[md5] = None
        return self._cache[md5]


def subcategory_labels(sessions: sessionmaker, dataset: str) -> dict[str, str]:
    """Sub-category path (``Category/sub``) of every matched image of ``dataset`` that has one; images the dataset
    labels twice differently are left out (:func:`~semcurate.features.analysis.labelled_images`).

    Raises ``StudyError`` in one line when the dataset has no matched label with a sub-category path.
    """
    paths = {md5: path for md5, path in labelled_images(sessions, dataset, None, paths=True).items() if "/" in path}
    if not paths:
        raise StudyError(
            f"dataset {dataset!r} has no matched label with a sub-category path (Category/sub-category): "
            "import one with `semcurate labels import` or build without --hierarchy"
        )
    return paths


def build_tree(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    image_store: Path,
    feature_set: str,
    method: str,
    labels_dataset: str,
    *,
    depth: int = 4,
    rule: str = "gap",
    subset: str | None = None,
    max_children: int = 8,
    min_size: int = 10,
    min_silhouette: float = MIN_SILHOUETTE,
    min_stability: float = MIN_STABILITY,
    min_null_z: float = MIN_NULL_Z,
    sample_size: int = SAMPLE_ROWS,
    random_state: int = 0,
    preprocessing: str = "standard",
    placement_feature_set: str | None = None,
    doubtful_below: float = DOUBTFUL_BELOW,
    leave_out_flagged: bool = True,
    hierarchy_dataset: str | None = None,
    category_block: str | None = None,
    category_block_weight: float = CATEGORY_BLOCK_WEIGHT,
    community_weights: bool = False,
    reporter: Callable[[str, int], Callable[[int], None]] | None = None,
) -> dict:
    """Build and store the sub-category tree of ``feature_set``; return a summary with the new tree's id.

    The rows are preprocessed once (:func:`~semcurate.features.preprocessing.preprocess`,
    ``standard`` by default) before the classifier places the unlabelled
    images and the categories are split; the choice is stored with the
    tree's parameters.  Placements whose calibrated probability is below
    ``doubtful_below`` are marked doubtful.  ``min_silhouette`` is the gap
    rule's floor on the mean silhouette of the children, all of them and any two,
    ``min_stability`` its floor on how well subsamples find each child
    again, and ``min_null_z`` its floor on how far the children's within-cluster
    share of variance lies under a Gaussian null's
    (:func:`~semcurate.clustering.splitting.split`); ``method="louvain"`` uses the
    first (on all the children) and the last; all three are stored, and so is
    ``sample_size``, the most rows of a node on which the rules decide.

    ``hierarchy_dataset`` names a labelled dataset with sub-category paths
    (the thesis' Hierarchical set): a node below a category whose labelled
    images agree on one sub-category is not split further
    (:func:`~semcurate.clustering.splitting.stop_where_labels_agree`), and
    sibling leaves whose labels agree on the same sub-category become one
    (:func:`~semcurate.clustering.splitting.merge_agreeing_siblings`).

    ``placement_feature_set`` gives the supervised classifiers the rows of
    another set (standardised) while label spreading's graph stays on
    ``feature_set``'s rows, which are split: on the demo's specimens the
    descriptor's classifier and a graph on the acquisition-invariant
    projection (``classic.invK``) place better together than either alone
    (bench/results/categorisation_invariant_placed.json).  Every image of
    the tree must have a row in it.

    ``category_block`` names a feature set whose columns are appended to each
    category's rows before that category is split, standardised within it
    and scaled to ``category_block_weight`` times its typical column's spread
    (:func:`~semcurate.clustering.splitting.with_category_block`): the facet
    block ``particle_facets`` beside a projection, which it would otherwise
    be one column of many in.  Every image of the tree must have a row in it.

    ``community_weights`` scales each column of a category's rows (the block's
    too) by how well that category's Louvain communities tell it apart
    (:func:`~semcurate.clustering.splitting.community_weighted`) before the
    category is split.

    Returns
    -------
    dict
        ``tree_id``, the parameters, counts of images, ``labelled``,
        ``category_block`` (the set appended to each category's rows, or None),
        ``community_weights``,
        ``stopped_by_labels`` (nodes the hierarchy's labels made leaves),
        ``merged_by_labels`` (sibling leaves its labels merged away),
        ``classified`` and ``doubtful`` ones, ``left_out_flagged`` (images
        left out for a quality flag), the chosen ``classifier`` and
        its ``calibration``, ``classifier_heldout_accuracy`` (cross-validated,
        rounded to 3 decimals), counts of categories, nodes and leaves, and
        ``placement``: the full report stored in ``TreeRow.placement``
        (:func:`~semcurate.clustering.placement.placement_report`).
    """
    check_method(method)
    if rule not in SPLIT_RULES:
        raise ClusteringError(f"unknown rule {rule!r}; choose one of {', '.join(SPLIT_RULES)}")
    if rule == "dendrogram-gap" and method not in MONOTONE_LINKAGES:
        raise ClusteringError(
            f"the dendrogram-gap rule needs monotone merge heights ({', '.join(MONOTONE_LINKAGES)}); "
            f"{method!r} has none: use --rule silhouette or gap"
        )
    # HDBSCAN and Louvain choose each node's children themselves, whatever the rule: the tree records theirs
    stored_rule = method if method in OWN_COUNT_METHODS else rule
    if depth < 1:
        raise ClusteringError(f"--depth must be at least 1 (levels of sub-categories below a category); got {depth}")
    if not 0 <= min_silhouette < 1:
        raise ClusteringError(f"--min-silhouette must be in [0, 1) (0: no floor); got {min_silhouette}")
    if not 0 <= min_stability <= 1:
        raise ClusteringError(f"--min-stability must be in [0, 1] (0: no stability test); got {min_stability}")
    if not 0 <= category_block_weight < np.inf:
        raise ClusteringError(
            f"--category-block-weight must be a number ≥ 0 (the block's spread in typical columns); got "
            f"{category_block_weight}"
        )
    if not 0 <= min_null_z < np.inf:
        raise ClusteringError(f"--min-null-z must be a number ≥ 0 (0: no Gaussian-null test); got {min_null_z}")
    least_sample = 2 * max(min_size, 2)
    if sample_size < least_sample:
        raise ClusteringError(
            f"--sample-size must be at least twice --min-size, {least_sample} (the most rows of a node the rules "
            f"decide on); got {sample_size}"
        )
    try:
        md5s, values = feature_rows(sessions, feature_store, feature_set, subset)
        quality_run, flagged = raised_flags(sessions) if leave_out_flagged else (None, {})
        usable = [index for index, md5 in enumerate(md5s) if md5 not in flagged]
        left_out = Counter(flag for md5 in md5s for flag in flagged.get(md5, ()))
        n_left_out = len(md5s) - len(usable)
        if md5s and not usable:
            raise ClusteringError(
                f"the quality stage flagged every one of the {len(md5s)} images of {feature_set} "
                f"({', '.join(f'{flag} {count}' for flag, count in sorted(left_out.items()))}): check its "
                "thresholds (`semcurate quality --threshold FLAG=VALUE`) or build with --keep-flagged"
            )
        md5s, values = [md5s[index] for index in usable], values[usable]
        values = preprocess(values, preprocessing)
        placing = values
        if placement_feature_set is not None:
            placing = aligned_rows(
                sessions,
                feature_store,
                placement_feature_set,
                feature_set,
                md5s,
                subset,
                f"or place with {feature_set}",
            )
        block = None
        if category_block is not None:
            block = aligned_rows(
                sessions, feature_store, category_block, feature_set, md5s, subset, "or build without --category-block"
            )
        labels = labelled_images(sessions, labels_dataset, None)
        subcategory = {} if hierarchy_dataset is None else subcategory_labels(sessions, hierarchy_dataset)
    except (StudyError, ValueError) as error:
        raise ClusteringError(str(error)) from None
    labelled = [index for index, md5 in enumerate(md5s) if md5 in labels]
    if not labelled:
        raised = f" ({n_left_out} left out for a quality flag)" if n_left_out else ""
        raise ClusteringError(
            f"none of the {len(md5s)} images of {feature_set}{raised} carries a {labels_dataset} label"
        )
    unlabelled = [index for index, md5 in enumerate(md5s) if md5 not in labels]
    try:
        placement = place_unlabelled(
            placing[labelled],
            [labels[md5s[index]] for index in labelled],
            placing[unlabelled],
            graph_labelled=None if placing is values else values[labelled],
            graph_unlabelled=None if placing is values else values[unlabelled],
            doubtful_below=doubtful_below,
            random_state=random_state,
        )
    except ValueError as error:
        raise ClusteringError(str(error)) from None
    category = {md5s[index]: labels[md5s[index]] for index in labelled}
    category.update({md5s[index]: name for index, name in zip(unlabelled, placement.categories, strict=True)})
    placed = {
        md5s[index]: (float(probability), bool(doubtful))
        for index, probability, doubtful in zip(unlabelled, placement.probabilities, placement.doubtful, strict=True)
    }
    accuracy = placement.report.get("heldout_accuracy")

    names = sorted(set(category.values()))
    advance = reporter("categories", len(names)) if reporter else None
    branches: dict[str, Branch] = {}
    known = np.array([subcategory.get(md5) for md5 in md5s], dtype=object)
    stopped_by_labels = merged_by_labels = 0
    appended = block if category_block_weight > 0 else None
    # each category's rows as they are split: with the block beside them and weighted, when asked
    split_values = np.empty((len(values), values.shape[1] + (0 if appended is None else appended.shape[1])))
    for name in names:
        rows = np.array([index for index, md5 in enumerate(md5s) if category[md5] == name])
        joined = (
            values[rows]
            if appended is None
            else with_category_block(values[rows], appended[rows], category_block_weight)
        )
        if community_weights:
            joined = community_weighted(joined, sample_size=sample_size, random_state=random_state)
        split_values[rows] = joined
        branches[name] = split(
            split_values[rows],
            method,
            depth,
            rule=rule,
            max_children=max_children,
            min_size=min_size,
            random_state=random_state,
            min_silhouette=min_silhouette,
            min_stability=min_stability,
            min_null_z=min_null_z,
            sample_size=sample_size,
            members=rows,
        )
        if subcategory:
            stopped_by_labels += stop_where_labels_agree(branches[name], known)
            merged_by_labels += merge_agreeing_siblings(
                branches[name], known, split_values, sample_size=sample_size, random_state=random_state
            )
        if advance:
            advance(1)

    parameters = {
        "max_children": max_children,
        "min_size": min_size,
        "min_silhouette": min_silhouette,
        "min_stability": min_stability,
        "min_null_z": min_null_z,
        "sample_size": sample_size,
        "random_state": random_state,
        "preprocessing": preprocessing,
        "placement_feature_set": placement_feature_set or feature_set,
        "leave_out_flagged": leave_out_flagged,
        "hierarchy_dataset": hierarchy_dataset,
        "category_block": category_block,
        "category_block_weight": None if category_block is None else category_block_weight,
        "community_weights": community_weights,
        "stopped_by_labels": stopped_by_labels,
        "merged_by_labels": merged_by_labels,
        "quality_run": quality_run,
        "left_out_flagged": n_left_out,
        "left_out_per_flag": dict(sorted(left_out.items())),
    }
    tree_id = store_tree(
        sessions,
        MeanImages(sessions, Path(image_store)),
        md5s,
        branches,
        placed,
        TreeRow(
            feature_set=feature_set,
            method=method,
            subset=subset,
            labels_dataset=labels_dataset,
            depth=depth,
            rule=stored_rule,
            parameters=json.dumps(parameters),
            n_images=len(md5s),
            n_labelled=len(labelled),
            classifier_accuracy=accuracy,
            placement=json.dumps(placement.report),
        ),
    )
    n_nodes = sum(1 for branch in branches.values() for _ in branch.walk())
    n_leaves = sum(1 for branch in branches.values() for _, node in branch.walk() if not node.children)
    return {
        "tree_id": tree_id,
        "feature_set": feature_set,
        "method": method,
        "rule": stored_rule,
        "depth": depth,
        "images": len(md5s),
        "left_out_flagged": n_left_out,
        "labelled": len(labelled),
        "classified": len(unlabelled),
        "doubtful": int(placement.doubtful.sum()),
        "classifier": placement.report["classifier"],
        "calibration": placement.report.get("calibration"),
        "classifier_heldout_accuracy": None if accuracy is None else round(accuracy, 3),
        "categories": len(names),
        "nodes": n_nodes,
        "leaves": n_leaves,
        "category_block": category_block,
        "community_weights": community_weights,
        "stopped_by_labels": stopped_by_labels,
        "merged_by_labels": merged_by_labels,
        "placement": placement.report,
    }


def aligned_rows(
    sessions: sessionmaker,
    feature_store: FeatureStore,
    name: str,
    tree_set: str,
    md5s: list[str],
    subset: str | None,
    remedy: str,
) -> np.ndarray:
    """The standardised rows of feature set ``name`` for the images ``md5s`` of ``tree_set``, in their order.

    Raises
    ------
    ValueError
        In one line ending in ``remedy`` (the other way out), when some of the images have no row in ``name``.
    """
    place_md5s, place_values = feature_rows(sessions, feature_store, name, subset)
    row_of = {md5: index for index, md5 in enumerate(place_md5s)}
    missing = sum(1 for md5 in md5s if md5 not in row_of)
    if missing:
        raise ValueError(
            f"{missing} of the {len(md5s)} images of {tree_set} have no row in {name}: "
            f"extract or reduce {name} for every image first, {remedy}"
        )
    return preprocess(place_values[[row_of[md5] for md5 in md5s]], "standard")


def store_tree(
    sessions: sessionmaker,
    mean_images: MeanImages,
    md5s: list[str],
    branches: dict[str, Branch],
    placed: dict[str, tuple[float, bool]],
    tree: TreeRow,
) -> int:
    """Write ``tree`` with one node per branch (paths like ``Nanowires.2.1``) and its members; return its id.

    ``placed`` gives the (probability, doubtful) of each image the classifier
    placed; the others got their category from a label.
    """
    with sessions.begin() as session:
        session.add(tree)
        session.flush()
        for position, (name, root) in enumerate(sorted(branches.items(), key=lambda item: -len(item[1].members))):
            node_ids: dict[tuple[int, ...], int] = {}
            for path, branch in root.walk():
                members = [md5s[index] for index in branch.members]
                node = TreeNodeRow(
                    tree_id=tree.id,
                    parent_id=node_ids.get(path[:-1]) if path else None,
                    path=".".join([name, *map(str, path)]),
                    depth=1 + len(path),
                    position=path[-1] if path else position + 1,
                    category=name,
                    size=len(members),
                    representative_md5=md5s[branch.representative],
                    mean_image=mean_images.png(members),
                    split_rule=branch.split_rule,
                    split_scores=json.dumps({str(k): score for k, score in branch.split_scores.items()})
                    if branch.split_scores
                    else None,
                    stop=branch.stop or None,
                    note=branch.note or None,
                )
                session.add(node)
                session.flush()
                node_ids[path] = node.id
                session.add_all(member_row(node.id, md5, placed.get(md5)) for md5 in members)
        return tree.id


def member_row(node_id: int, md5: str, placement: tuple[float, bool] | None) -> TreeMemberRow:
    """The member row of ``md5`` in a node: labelled (``placement`` None) or placed with (probability, doubtful)."""
    if placement is None:
        return TreeMemberRow(node_id=node_id, image_md5=md5, assigned_by="label", probability=None, doubtful=False)
    probability, doubtful = placement
    return TreeMemberRow(
        node_id=node_id, image_md5=md5, assigned_by="classifier", probability=probability, doubtful=doubtful
    )
