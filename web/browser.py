"""What the web pages show, as plain dictionaries: the shell between the database, the stores and the app.

Every page of :mod:`semcurate.web.app` is one method here, returning the
dictionary that ``/api/...`` serves as JSON and the template renders as HTML,
so the two can never disagree (the image-quality pages read the newest
``semcurate quality`` run through :mod:`semcurate.ingest.quality_database`).
Nothing here builds a file path from request text: images are looked up by an
md5 the database knows, and only then is ``STORE/<md5>.jpg`` opened (never
through a symbolic link); a quality flag is checked against the known flags.

Errors a visitor can cause (an unknown node or image, a page past the end, a
missing store file) are :class:`NotFound` or :class:`BadRequest` with one line
that the app shows as a 404 or 400 page.
"""

from __future__ import annotations

import errno
import json
import math
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import sessionmaker

from semcurate.clustering.browse import Tree, TreeError, lineage
from semcurate.clustering.placement_tables import placement_summary
from semcurate.db.models import (
    FeatureSet,
    File,
    Image,
    IngestRun,
    Label,
    LabelDataset,
    QualityScore,
    ScaleReading,
    Subset,
    SubsetMember,
    TreeEditRow,
    TreeMemberRow,
    TreeNodeRow,
    TreeRow,
)
from semcurate.web.thumbnails import MD5_PATTERN, ThumbnailCache, read_regular_file

if TYPE_CHECKING:
    import numpy as np  # loaded with the first feature set or quality page (fast start-up)

    from semcurate.web.similar import SimilarIndex

#: Members per gallery page unless asked otherwise, and the most a page may hold.
PER_PAGE, MAX_PER_PAGE = 100, 500
#: Thumbnails in a node's strip on the tree page and in a child's strip on the node page.
STRIP = 4
#: Most rows a search answers, and most files per status the admin page lists.
SEARCH_LIMIT, ADMIN_LIMIT = 200, 200
#: Bars in each score histogram of the quality page.
HISTOGRAM_BINS = 30
#: What the quality pages say before any ``semcurate quality`` run.
NO_QUALITY = "no quality scores yet: run `semcurate quality`"


class NotFound(LookupError):
    """Something asked for that does not exist (a 404 page with this one line)."""


class BadRequest(ValueError):
    """A request that cannot be answered as asked (a 400 page with this one line)."""


def check_paging(page: int, per_page: int) -> None:
    """:class:`BadRequest` unless ``page`` ≥ 1 and 1 ≤ ``per_page`` ≤ :data:`MAX_PER_PAGE`."""
    if per_page < 1 or per_page > MAX_PER_PAGE:
        raise BadRequest(f"per_page must be between 1 and {MAX_PER_PAGE}, not {per_page}")
    if page < 1:
        raise BadRequest(f"page must be 1 or more, not {page}")


def page_count(total: int, page: int, per_page: int, what: str) -> int:
    """How many pages of ``per_page`` a gallery of ``total`` images fills (at least one, maybe empty), or
    :class:`NotFound` when ``page`` is past the last one (``what`` names the gallery in that line)."""
    pages = max(1, -(-total // per_page))
    if page > pages:
        raise NotFound(f"{what} has {pages} page(s) of {per_page}; there is no page {page}")
    return pages


def check_md5(text: str) -> str:
    """``text`` when it is an md5 (32 lowercase hex digits), else :class:`NotFound`."""
    if not MD5_PATTERN.fullmatch(text):
        raise NotFound(f"{text!r} is not an image md5 (32 hex digits)")
    return text


@dataclass(frozen=True)
class GalleryOrder:
    """A node's members in gallery order, as of one state of its tree's edits.

    Attributes
    ----------
    version : tuple of int
        The tree's edits when computed (:meth:`Browser.edit_version`); a
        different version means the members may have changed.
    md5s : list of str
        The members, nearest their centre first.
    distances : dict
        md5 → distance to the centre (standardised feature units); empty when
        the feature set could not be read.
    sorted_by : str
        What the order is, for the page.
    """

    version: tuple[int, int]
    md5s: list[str]
    distances: dict[str, float]
    sorted_by: str


class Browser:
    """The read side of the web browser over one database, its flat store and its feature stores.

    Parameters
    ----------
    sessions : sessionmaker
        The database (opened read-only unless edits are allowed).
    image_store : Path or None
        The flat store; None when nothing was ingested (pages then show no pictures).

    Notes
    -----
    Feature sets are read once per process and kept (:class:`SimilarIndex`,
    one standardised float32 copy of the rows: 431 MB for 52,682 × 2,048);
    node galleries sorted by distance to their centre are kept per node until
    an edit (from here or from another process) changes the tree.  The md5s
    the database has shown to exist are remembered, so the thumbnails of a
    gallery page are served without a query each (images are never removed
    from the database while it is served).
    """

    def __init__(self, sessions: sessionmaker, image_store: Path | None):
        self.sessions = sessions
        self.image_store = Path(image_store) if image_store is not None else None
        self.thumbnails = ThumbnailCache(self.image_store) if self.image_store is not None else None
        self._indexes: dict[str, SimilarIndex | str] = {}
        self._orders: dict[int, GalleryOrder] = {}
        self._known: set[str] = set()
        self._quality_tables: dict[int, tuple[dict[str, int], dict[str, np.ndarray]]] = {}
        self._lock = threading.Lock()

    # --- images and thumbnails --------------------------------------------------------------------------------

    def known_image(self, md5: str) -> Image:
        """The database row of image ``md5``, or :class:`NotFound`."""
        return self._row_or_not_found(Image, check_md5(md5), f"no image with md5 {md5} in the database")

    def known_md5(self, md5: str) -> str:
        """``md5`` when the database knows it as an image (remembered once seen), else :class:`NotFound`."""
        if md5 not in self._known:
            check_md5(md5)
            with self.sessions() as session:
                if session.scalar(select(Image.md5).where(Image.md5 == md5)) is None:
                    raise NotFound(f"no image with md5 {md5} in the database")
            self._known.add(md5)
        return md5

    def image_bytes(self, md5: str) -> bytes:
        """The JPG of a known image from the flat store (``STORE/<md5>.jpg``, a regular file, never a link)."""
        self.known_md5(md5)
        if self.image_store is None:
            raise NotFound("no flat store is known: nothing has been ingested (or pass --store)")
        try:
            return read_regular_file(self.image_store / f"{md5}.jpg")
        except FileNotFoundError:
            raise NotFound(f"image {md5} is missing from the store {self.image_store}") from None
        except OSError:
            raise NotFound(f"image {md5} in the store is not a regular file; it is not served") from None

    def thumbnail(self, md5: str) -> bytes:
        """The WebP thumbnail of a known image, made once (from its TIFF or JPG) and cached in ``STORE/thumbs/``."""
        self.known_md5(md5)
        if self.thumbnails is None:
            raise NotFound("no flat store is known: nothing has been ingested (or pass --store)")
        try:
            return self.thumbnails.get(md5)
        except FileNotFoundError:
            raise NotFound(f"image {md5} is missing from the store {self.image_store}") from None
        except OSError as error:
            if isinstance(error, IsADirectoryError) or error.errno == errno.ELOOP:
                raise NotFound(f"image {md5} in the store is not a regular file; it is not served") from None
            raise NotFound(f"image {md5} in the store cannot be decoded") from None

    def cached_thumbnail(self, md5: str) -> bytes | None:
        """The cached thumbnail of an md5 already known to be an image, without touching the database; else None.

        This is the fast path of a gallery page's thumbnails (the app serves it
        without a worker thread); anything else goes through :meth:`thumbnail`.
        """
        if md5 not in self._known or self.thumbnails is None:
            return None
        try:
            return read_regular_file(self.thumbnails.path(md5))
        except OSError:
            return None

    # --- feature sets -----------------------------------------------------------------------------------------

    def feature_sets(self) -> list[str]:
        """Names of the finished feature sets (those with rows), sorted."""
        with self.sessions() as session:
            return list(session.scalars(select(FeatureSet.name).where(FeatureSet.n_rows > 0).order_by(FeatureSet.name)))

    def index(self, name: str) -> SimilarIndex:
        """The exact-search index of feature set ``name``, read once per process; :class:`NotFound` if unreadable."""
        with self._lock:
            if name not in self._indexes:
                from semcurate.features.analysis import StudyError, feature_rows
                from semcurate.features.store import FeatureStore
                from semcurate.web.similar import SimilarIndex

                try:
                    md5s, values = feature_rows(self.sessions, FeatureStore(None), name, None)
                    self._indexes[name] = SimilarIndex(md5s, values)
                except StudyError as error:
                    self._indexes[name] = str(error)
            found = self._indexes[name]
        if isinstance(found, str):
            raise NotFound(found)
        return found

    def similar(self, md5: str, feature_set: str | None = None, k: int = 12) -> dict:
        """The ``k`` images most like ``md5`` in ``feature_set`` (default: that of the newest tree, else the first)."""
        self.known_md5(md5)
        feature_set, index = self._similar_index(feature_set, k)
        if md5 not in index:
            raise NotFound(f"image {md5} has no row in feature set {feature_set}")
        return {
            "md5": md5,
            "feature_set": feature_set,
            "k": k,
            "neighbours": [{"md5": found.md5, "distance": round(found.distance, 4)} for found in index.query(md5, k)],
        }

    def similar_to_file(self, path: Path, feature_set: str | None = None, k: int = 12) -> dict:
        """The ``k`` stored images most like an image file that is not in the database: its row of ``feature_set``
        is computed from the file (:func:`~semcurate.features.extract.features_of_file`), then searched alike.

        Raises
        ------
        BadRequest
            When the row cannot be computed (a derived set, changed weights, a file that does not decode).
        """
        from semcurate.features.extract import ExtractionError, features_of_file

        feature_set, index = self._similar_index(feature_set, k)
        try:
            row = features_of_file(self.sessions, feature_set, Path(path))
        except ExtractionError as error:
            raise BadRequest(str(error)) from None
        return {
            "file": str(path),
            "feature_set": feature_set,
            "k": k,
            "neighbours": [
                {"md5": found.md5, "distance": round(found.distance, 4)}
                for found in index.query_row(index.standardise(row), k)
            ],
        }

    def _similar_index(self, feature_set: str | None, k: int) -> tuple[str, SimilarIndex]:
        """The feature set to search (checked, or the default) and its index; ``k`` checked."""
        if not 1 <= k <= 200:
            raise BadRequest(f"k must be between 1 and 200, not {k}")
        names = self.feature_sets()
        if feature_set is None:
            feature_set = self.default_feature_set(names)
        if feature_set is None:
            raise NotFound("no feature set is stored yet: run `semcurate features extract`")
        if feature_set not in names:
            raise NotFound(f"no finished feature set {feature_set!r}; see `semcurate features list`")
        return feature_set, self.index(feature_set)

    def default_feature_set(self, names: list[str]) -> str | None:
        """The feature set similar images are found in unless asked: the newest tree's, else the first stored."""
        with self.sessions() as session:
            newest = session.scalar(select(TreeRow.feature_set).order_by(TreeRow.id.desc()).limit(1))
        if newest in names:
            return newest
        return names[0] if names else None

    # --- trees ------------------------------------------------------------------------------------------------

    def trees(self) -> list[dict]:
        """Every stored tree, newest first."""
        with self.sessions() as session:
            rows = session.scalars(select(TreeRow).order_by(TreeRow.id.desc())).all()
            return [
                {
                    "id": row.id,
                    "feature_set": row.feature_set,
                    "method": row.method,
                    "rule": row.rule,
                    "depth": row.depth,
                    "labels_dataset": row.labels_dataset,
                    "images": row.n_images,
                    "labelled": row.n_labelled,
                    "classifier_accuracy": row.classifier_accuracy,
                    "created": f"{row.created_at:%Y-%m-%d %H:%M}",
                }
                for row in rows
            ]

    def tree_row(self, tree_id: int) -> TreeRow:
        """The stored tree ``tree_id`` or :class:`NotFound`."""
        return self._row_or_not_found(TreeRow, tree_id, f"no tree with id {tree_id}; the stored trees are listed at /")

    def _tree(self, tree_id: int) -> Tree:
        try:
            return Tree(self.sessions, tree_id, self.image_store)
        except TreeError as error:
            raise NotFound(str(error)) from None

    def edit_version(self, tree_id: int) -> tuple[int, int]:
        """How many edits tree ``tree_id`` has and the newest one's id: cached gallery orders of another version
        are stale (an edit made here, by another server or by the Python API)."""
        with self.sessions() as session:
            count, newest = session.execute(
                select(func.count(), func.max(TreeEditRow.id)).where(TreeEditRow.tree_id == tree_id)
            ).one()
        return int(count), int(newest or 0)

    def tree(self, tree_id: int) -> dict:
        """Tree ``tree_id`` with every node nested: name, size, labelled, placed and editor-moved counts (editors'
        corrections applied) and a strip of thumbnails."""
        row = self.tree_row(tree_id)
        version = self.edit_version(tree_id)
        edits = self._tree(tree_id).edits() if version[0] else {}
        with self.sessions() as session:
            nodes = session.scalars(
                select(TreeNodeRow).where(TreeNodeRow.tree_id == tree_id).order_by(TreeNodeRow.position)
            ).all()
            counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for node_id, assigned_by, doubtful, count in session.execute(
                select(TreeMemberRow.node_id, TreeMemberRow.assigned_by, TreeMemberRow.doubtful, func.count())
                .join(TreeNodeRow, TreeNodeRow.id == TreeMemberRow.node_id)
                .where(TreeNodeRow.tree_id == tree_id)
                .group_by(TreeMemberRow.node_id, TreeMemberRow.assigned_by, TreeMemberRow.doubtful)
            ):
                counts[node_id]["labelled" if assigned_by == "label" else "placed"] += count
                counts[node_id]["doubtful"] += count if doubtful else 0
            for node in nodes:
                counts[node.id]["size"] = node.size
            if edits:
                stored: dict[str, dict[int, tuple[str, bool]]] = defaultdict(dict)
                for node_id, md5, assigned_by, doubtful in session.execute(
                    select(
                        TreeMemberRow.node_id,
                        TreeMemberRow.image_md5,
                        TreeMemberRow.assigned_by,
                        TreeMemberRow.doubtful,
                    )
                    .join(TreeNodeRow, TreeNodeRow.id == TreeMemberRow.node_id)
                    .where(TreeNodeRow.tree_id == tree_id, TreeMemberRow.image_md5.in_(list(edits)))
                ):
                    stored[md5][node_id] = ("labelled" if assigned_by == "label" else "placed", bool(doubtful))
                apply_edits(counts, {node.id: node.parent_id for node in nodes}, edits, stored)
            entries = {
                node.id: {
                    **self._node_summary(node, version),
                    "size": counts[node.id]["size"],
                    "labelled": counts[node.id]["labelled"],
                    "placed": counts[node.id]["placed"],
                    "moved": counts[node.id]["moved"],
                    "doubtful": counts[node.id]["doubtful"],
                    "children": [],
                }
                for node in nodes
            }
        roots = []
        for node in nodes:
            (entries[node.parent_id]["children"] if node.parent_id in entries else roots).append(entries[node.id])
        tree = {
            "id": row.id,
            **self._tree_meta(row),
            "edits": version[0],
            "placement": placement_summary(row.placement),
        }
        return {"tree": tree, "nodes": roots}

    @staticmethod
    def _tree_meta(row: TreeRow) -> dict:
        return {
            "feature_set": row.feature_set,
            "method": row.method,
            "rule": row.rule,
            "labels_dataset": row.labels_dataset,
            "images": row.n_images,
            "labelled": row.n_labelled,
            "classifier_accuracy": row.classifier_accuracy,
            "left_out_flagged": json.loads(row.parameters or "{}").get("left_out_flagged", 0),
        }

    def _node_summary(self, node: TreeNodeRow, version: tuple[int, int]) -> dict:
        return {
            "id": node.id,
            "path": node.path,
            "name": node.name,
            "title": node.name or node.path,
            "category": node.category,
            "depth": node.depth,
            "size": node.size,
            "strip": self._strip(node, version),
        }

    def _strip(self, node: TreeNodeRow, version: tuple[int, int]) -> list[str]:
        """The node's representative, then its members nearest its centre when that order is known already."""
        strip = [node.representative_md5] if node.representative_md5 else []
        known = self._orders.get(node.id)
        if known is not None and known.version == version:
            strip += [md5 for md5 in known.md5s[:STRIP] if md5 not in strip]
        self._known.update(strip)
        return strip[:STRIP]

    def _gallery_order(self, tree: Tree, node: TreeNodeRow, version: tuple[int, int]) -> GalleryOrder:
        """The node's members sorted by distance to their centre in the tree's feature set (kept per node while
        the tree's edits stay at ``version``), or by md5 with why not."""
        cached = self._orders.get(node.id)
        if cached is not None and cached.version == version:
            return cached
        members = tree.member_md5s(node.id)
        try:
            index = self.index(tree.feature_set)
        except NotFound as error:
            first = [node.representative_md5] if node.representative_md5 in members else []
            ordered = first + [md5 for md5 in members if md5 not in first]
            order = GalleryOrder(version, ordered, {}, f"md5 (no distances: {error})")
        else:
            present, distances = index.centre_order(members)
            ordered = present + sorted(set(members) - set(present))  # members without a row (none, normally) last
            order = GalleryOrder(
                version,
                ordered,
                {md5: float(distance) for md5, distance in zip(present, distances, strict=True)},
                f"distance to the node's centre in {tree.feature_set}",
            )
        with self._lock:
            self._known.update(order.md5s)  # tree members are images the database holds
            self._orders[node.id] = order
        return order

    def node_row(self, node_id: int) -> TreeNodeRow:
        """Stored node ``node_id`` or :class:`NotFound`."""
        return self._row_or_not_found(TreeNodeRow, node_id, f"no tree node with id {node_id}")

    def _row_or_not_found(self, model, key, message: str):
        """The database row of ``model`` with primary key ``key``, or :class:`NotFound` saying ``message``."""
        with self.sessions() as session:
            row = session.get(model, key)
        if row is None:
            raise NotFound(message)
        return row

    def node(self, node_id: int, page: int = 1, per_page: int = PER_PAGE) -> dict:
        """Node ``node_id``: its scores, its children with their strips, and one page of its members, typical first.

        Only the page's members are read from the database (their placement and
        labels); the order of all of them is computed once per node and kept.
        """
        check_paging(page, per_page)
        node = self.node_row(node_id)
        tree = self._tree(node.tree_id)
        version = self.edit_version(tree.id)
        order = self._gallery_order(tree, node, version)
        pages = page_count(len(order.md5s), page, per_page, f"node {node.path}")
        shown = order.md5s[(page - 1) * per_page : page * per_page]
        with self.sessions() as session:
            stored = {
                md5: (assigned_by, probability, doubtful)
                for md5, assigned_by, probability, doubtful in session.execute(
                    select(
                        TreeMemberRow.image_md5,
                        TreeMemberRow.assigned_by,
                        TreeMemberRow.probability,
                        TreeMemberRow.doubtful,
                    ).where(TreeMemberRow.node_id == node.id, TreeMemberRow.image_md5.in_(shown))
                )
            }
            labels = dict(
                session.execute(
                    select(Label.image_md5, Label.category_path).where(
                        Label.dataset == tree.labels_dataset, Label.image_md5.in_(shown)
                    )
                ).all()
            )
            children = session.scalars(
                select(TreeNodeRow).where(TreeNodeRow.parent_id == node.id).order_by(TreeNodeRow.position)
            ).all()
            lineage = self._lineage(session, node)
            everything = session.execute(
                select(TreeNodeRow.id, TreeNodeRow.path, TreeNodeRow.name)
                .where(TreeNodeRow.tree_id == node.tree_id)
                .order_by(TreeNodeRow.path)
            ).all()
        edits = tree.edits() if version[0] else {}
        misplaced = sorted(md5 for md5, (source, target) in edits.items() if target is None and source == node.id)
        gallery = []
        for md5 in shown:
            assigned_by, probability, doubtful = stored.get(md5, ("editor", None, False))
            gallery.append(
                {
                    "md5": md5,
                    "distance": None if md5 not in order.distances else round(order.distances[md5], 4),
                    "assigned_by": assigned_by,
                    "probability": probability,
                    "doubtful": bool(doubtful),
                    "label": labels.get(md5),
                }
            )
        return {
            "tree": {"id": tree.id, **self._tree_meta(self.tree_row(tree.id)), "edits": version[0]},
            "node": {
                **self._node_summary(node, version),
                "size": len(order.md5s),
                "members": len(order.md5s),
                "split_rule": node.split_rule,
                "split_scores": json.loads(node.split_scores) if node.split_scores else None,
                "stop": node.stop,
                "note": node.note,
                "lineage": lineage,
                "misplaced": misplaced,
            },
            "sorted_by": order.sorted_by,
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "gallery": gallery,
            "children": [self._child_summary(tree, child, version) for child in children],
            "targets": [{"id": row.id, "path": row.path, "title": row.name or row.path} for row in everything],
        }

    def _child_summary(self, tree: Tree, child: TreeNodeRow, version: tuple[int, int]) -> dict:
        order = self._gallery_order(tree, child, version)
        return self._node_summary(child, version) | {"size": len(order.md5s)}

    @staticmethod
    def _lineage(session, node: TreeNodeRow) -> list[dict]:
        chain = []
        current: TreeNodeRow | None = node
        while current is not None:
            chain.append({"id": current.id, "path": current.path, "title": current.name or current.path})
            current = session.get(TreeNodeRow, current.parent_id) if current.parent_id is not None else None
        return chain[::-1]

    def warm(self, tree_id: int) -> None:
        """Compute the gallery order of every node of tree ``tree_id`` (the tree page's strips then show them)."""
        tree = self._tree(tree_id)
        version = self.edit_version(tree_id)
        with self.sessions() as session:
            nodes = session.scalars(select(TreeNodeRow).where(TreeNodeRow.tree_id == tree_id)).all()
        for node in nodes:
            self._gallery_order(tree, node, version)

    # --- edits ------------------------------------------------------------------------------------------------

    def rename(self, node_id: int, name: str) -> None:
        """Give node ``node_id`` a human name (empty clears it)."""
        node = self.node_row(node_id)
        if len(name) > 200:
            raise BadRequest("a node name may be at most 200 characters")
        self._tree(node.tree_id).rename(node.id, name)

    def move(self, node_id: int, md5: str, target: int | None) -> None:
        """Record that image ``md5`` of node ``node_id`` belongs in node ``target`` (None: misplaced)."""
        node = self.node_row(node_id)
        self.known_md5(md5)
        if target is not None and self.node_row(target).tree_id != node.tree_id:
            raise BadRequest(f"node {target} is in another tree than node {node_id}")
        try:
            self._tree(node.tree_id).move(md5, node.id, target)
        except TreeError as error:
            raise BadRequest(str(error)) from None

    # --- images -----------------------------------------------------------------------------------------------

    def image(self, md5: str, feature_set: str | None = None, k: int = 12) -> dict:
        """Everything known about image ``md5``: files, duplicates, near-duplicates, labels, subsets, scale,
        tree paths and similar images."""
        row = self.known_image(md5)
        with self.sessions() as session:
            files = session.scalars(select(File).where(File.image_md5 == md5).order_by(File.status, File.relpath)).all()
            group = []
            if row.near_duplicate_group:
                group = list(
                    session.scalars(
                        select(Image.md5)
                        .where(Image.near_duplicate_group == row.near_duplicate_group)
                        .order_by(Image.md5)
                    )
                )
            labels = session.execute(
                select(Label.dataset, Label.category_path, Label.match, Label.relpath)
                .where(Label.image_md5 == md5)
                .order_by(Label.dataset)
            ).all()
            subsets = list(
                session.scalars(
                    select(SubsetMember.subset).where(SubsetMember.image_md5 == md5).order_by(SubsetMember.subset)
                )
            )
            scale = session.get(ScaleReading, md5)
            quality = session.get(QualityScore, md5)
            trees = session.execute(select(TreeRow.id, TreeRow.parameters).order_by(TreeRow.id.desc())).all()
        from semcurate.ingest.quality import UNUSABLE_PICTURE_FLAGS

        unusable = [flag for flag in (quality.flags.split(",") if quality else ()) if flag in UNUSABLE_PICTURE_FLAGS]
        run_id = quality.run_id if quality else None
        paths = []
        for tree_id, parameters in trees:
            nodes = self._tree(tree_id).categories_of(md5)
            made = json.loads(parameters or "{}")
            # the image's flags are the newest quality run's: they say why only if the tree was built on that run
            left_out = not nodes and made.get("leave_out_flagged", False) and made.get("quality_run") == run_id
            paths.append(
                {
                    "tree": tree_id,
                    "nodes": [{"id": n.id, "path": n.path, "title": n.title} for n in nodes],
                    "left_out_for": unusable if left_out else [],
                }
            )
        try:
            similar = self.similar(md5, feature_set, k)
        except NotFound as error:
            similar = {"md5": md5, "feature_set": feature_set, "k": k, "neighbours": [], "unavailable": str(error)}
        return {
            "md5": md5,
            "jpg_md5": row.jpg_md5,
            "source_format": row.source_format,
            "jpg_only": row.jpg_only,
            "width": row.width,
            "height": row.height,
            "mode": row.mode,
            "pages": row.pages,
            "phash": row.phash,
            "conversion_note": row.conversion_note,
            "files": [
                {
                    "path": str(Path(item.source_root) / item.relpath),
                    "format": item.format,
                    "size": item.size,
                    "status": item.status,
                    "relation": item.relation,
                    "reason": item.reason,
                }
                for item in files
            ],
            "near_duplicate_group": row.near_duplicate_group,
            "near_duplicates": [other for other in group if other != md5],
            "labels": [
                {"dataset": dataset, "category_path": path, "match": match, "file": relpath}
                for dataset, path, match, relpath in labels
            ],
            "subsets": subsets,
            "scale": None if scale is None else scale_dict(scale),
            "quality": None if quality is None else self._image_quality(quality),
            "tree_paths": paths,
            "similar": similar,
            "feature_sets": self.feature_sets(),
        }

    def _image_quality(self, row: QualityScore) -> dict:
        """One image's stored quality scores and flags, with each flag of the newest run: the score it reads (as
        compared, derived ones included), its threshold and whether it is raised."""
        from semcurate.ingest.quality import SCORE_NAMES
        from semcurate.ingest.quality_database import latest_run

        run = latest_run(self.sessions)
        raised = [flag for flag in row.flags.split(",") if flag]
        index, derived = self._quality_table(run["run_id"]) if run is not None and row.width > 0 else ({}, {})
        position = index.get(row.image_md5)
        return {
            "scored": row.width > 0,
            "reason": row.reason,
            "bar_included": row.bar_included,
            "picture_height": row.picture_height,
            "scores": {name: finite_or_none(getattr(row, name)) for name in SCORE_NAMES},
            "charging_rows": row.charging_rows,
            "flags": raised,
            "run_id": row.run_id,
            "thresholds": [
                {
                    "flag": flag,
                    "score": threshold["score"],
                    "value": None
                    if position is None or threshold["score"] not in derived
                    else finite_or_none(derived[threshold["score"]][position]),
                    "direction": threshold["direction"],
                    "threshold": threshold["value"],
                    "raised": flag in raised,
                }
                for flag, threshold in (run["thresholds"].items() if run is not None else ())
            ],
        }

    # --- image quality ----------------------------------------------------------------------------------------

    def _quality_table(self, run_id: int) -> tuple[dict[str, int], dict[str, np.ndarray]]:
        """md5 → row, and every score the flags read (derived ones included) of the scored images, as of quality
        run ``run_id`` (kept per run: scores change only with a new run)."""
        with self._lock:
            if run_id not in self._quality_tables:
                from semcurate.ingest.quality import derived_scores
                from semcurate.ingest.quality_database import score_table

                md5s, table = score_table(self.sessions)
                derived = derived_scores(table) if md5s else {}
                self._quality_tables = {run_id: ({md5: row for row, md5 in enumerate(md5s)}, derived)}
            return self._quality_tables[run_id]

    def quality(self) -> dict:
        """The newest quality run: images per flag with each flag's threshold (score, direction, value, how), and
        a histogram of every score a flag reads with its threshold(s); ``run`` is None before any run."""
        from semcurate.ingest.quality_database import latest_run

        run = latest_run(self.sessions)
        if run is None:
            return {"run": None, "message": NO_QUALITY, "flags": [], "histograms": []}
        _, derived = self._quality_table(run["run_id"])
        flags = [
            {
                "flag": flag,
                "images": run["flag_counts"].get(flag, 0),
                "score": threshold["score"],
                "direction": threshold["direction"],
                "threshold": threshold["value"],
                "how": threshold["how"],
            }
            for flag, threshold in run["thresholds"].items()
        ]
        readers: dict[str, list[dict]] = defaultdict(list)
        for entry in flags:
            readers[entry["score"]].append(
                {"flag": entry["flag"], "direction": entry["direction"], "value": entry["threshold"]}
            )
        histograms = [
            {"score": score, **score_histogram(derived[score], [mark["value"] for mark in marks]), "thresholds": marks}
            for score, marks in readers.items()
            if score in derived
        ]
        return {
            "run": {"id": run["run_id"], "created": run["created"], "images": run["images"]},
            "message": None,
            "flags": flags,
            "histograms": histograms,
        }

    def quality_flag(self, flag: str, page: int = 1, per_page: int = PER_PAGE) -> dict:
        """One page of the images the newest quality run flagged ``flag``, worst first: md5, the score as compared
        with the threshold, the image's flags and a source path.

        Raises
        ------
        NotFound
            For a flag that is not one of :data:`~semcurate.ingest.quality.FLAGS`, before any quality run, or
            for a page past the end.
        """
        from semcurate.ingest.quality import FLAGS
        from semcurate.ingest.quality_database import QualityError, flagged_images, latest_run

        check_paging(page, per_page)
        if flag not in FLAGS:
            raise NotFound(f"no quality flag {flag[:40]!r}; the flags are {', '.join(FLAGS)}")
        run = latest_run(self.sessions)
        if run is None:
            raise NotFound(NO_QUALITY)
        threshold = run["thresholds"].get(flag)
        if threshold is None:
            raise NotFound(f"quality run {run['run_id']} set no threshold for {flag}: run `semcurate quality` again")
        try:
            records = flagged_images(self.sessions, flag)
        except QualityError as error:
            raise NotFound(str(error)) from None
        pages = page_count(len(records), page, per_page, f"flag {flag}")
        index, derived = self._quality_table(run["run_id"])
        values = derived.get(threshold["score"])
        shown = records[(page - 1) * per_page : page * per_page]
        with self._lock:
            self._known.update(record["md5"] for record in shown)  # scored images are images the database holds
        return {
            "flag": flag,
            "run": {"id": run["run_id"], "created": run["created"], "images": run["images"]},
            "score": threshold["score"],
            "direction": threshold["direction"],
            "threshold": threshold["value"],
            "how": threshold["how"],
            "images": len(records),
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "gallery": [
                {
                    "md5": record["md5"],
                    "value": finite_or_none(
                        values[index[record["md5"]]]
                        if values is not None and record["md5"] in index
                        else record.get(threshold["score"])
                    ),
                    "path": record["path"],
                    "flags": [name for name in record["flags"].split(",") if name],
                    **({"charging_rows": record["charging_rows"]} if "charging_rows" in record else {}),
                }
                for record in shown
            ],
        }

    # --- search -----------------------------------------------------------------------------------------------

    def search(self, query: str, by: str = "path") -> dict:
        """Images whose file path holds ``query`` (``by="path"``), whose md5 starts with it, whose label path holds
        it, whose scale reads it (``"2 µm"``, ``"500nm"``) or that are in subset ``query``; at most 200."""
        query = query.strip()
        if not query:
            return {"query": query, "by": by, "results": [], "more": False}
        with self.sessions() as session:
            if by == "path":
                pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                statement = (
                    select(File.image_md5, File.relpath)
                    .where(File.image_md5.is_not(None), File.relpath.like(pattern, escape="\\"))
                    .order_by(File.relpath)
                )
            elif by == "md5":
                if not re.fullmatch(r"[0-9a-fA-F]{1,32}", query):
                    raise BadRequest(f"{query!r} is not (the start of) an md5: hex digits only")
                statement = (
                    select(Image.md5, Image.jpg_md5)
                    .where(or_(Image.md5.startswith(query.lower()), Image.jpg_md5.startswith(query.lower())))
                    .order_by(Image.md5)
                )
            elif by == "label":
                statement = (
                    select(Label.image_md5, Label.category_path)
                    .where(Label.image_md5.is_not(None), Label.category_path.contains(query, autoescape=True))
                    .order_by(Label.category_path)
                )
            elif by == "scale":
                from semcurate.ingest.length_text import parse_length

                length = parse_length(query)
                if length is None:
                    raise BadRequest(f"{query!r} is not a length; write it like 2um, 2 µm or 500 nm")
                statement = (
                    select(ScaleReading.image_md5, ScaleReading.status)
                    .where(ScaleReading.value == length.value, ScaleReading.unit == length.unit)
                    .order_by(ScaleReading.image_md5)
                )
            elif by == "subset":
                statement = (
                    select(SubsetMember.image_md5, SubsetMember.subset)
                    .where(SubsetMember.subset == query)
                    .order_by(SubsetMember.image_md5)
                )
            else:
                raise BadRequest(f"unknown search field {by!r}; choose one of {', '.join(SEARCH_FIELDS)}")
            rows = session.execute(statement.limit(SEARCH_LIMIT + 1)).all()
        return {
            "query": query,
            "by": by,
            "results": [{"md5": md5, "match": str(match)} for md5, match in rows[:SEARCH_LIMIT]],
            "more": len(rows) > SEARCH_LIMIT,
        }

    # --- admin ------------------------------------------------------------------------------------------------

    def admin(self) -> dict:
        """What ingest did (Table 2.1), files by status with reasons, near-duplicate groups, scale statuses and the
        flagged disagreements, labels per dataset (Table 2.2)."""
        with self.sessions() as session:
            runs = [
                {
                    "id": run.id,
                    "source": run.source_root,
                    "store": run.store,
                    "started": f"{run.started_at:%Y-%m-%d %H:%M}",
                    "finished": None if run.finished_at is None else f"{run.finished_at:%Y-%m-%d %H:%M}",
                    "summary": json.loads(run.summary_json) if run.summary_json else {},
                }
                for run in session.scalars(select(IngestRun).order_by(IngestRun.id))
            ]
            statuses = [
                {"status": status, "relation": relation, "files": count}
                for status, relation, count in session.execute(
                    select(File.status, File.relation, func.count()).group_by(File.status, File.relation)
                ).all()
            ]
            problems = [
                {
                    "path": str(Path(item.source_root) / item.relpath),
                    "status": item.status,
                    "relation": item.relation,
                    "reason": item.reason,
                    "image": item.image_md5,
                }
                for item in session.scalars(
                    select(File)
                    .where(File.status != "image")
                    .order_by(File.status, File.relation, File.relpath)
                    .limit(ADMIN_LIMIT)
                )
            ]
            groups: dict[str, list[str]] = defaultdict(list)
            for md5, group in session.execute(
                select(Image.md5, Image.near_duplicate_group)
                .where(Image.near_duplicate_group.is_not(None))
                .order_by(Image.near_duplicate_group, Image.md5)
            ):
                groups[group].append(md5)
            scale_counts = dict(
                session.execute(select(ScaleReading.status, func.count()).group_by(ScaleReading.status)).all()
            )
            flagged = [
                scale_dict(reading)
                for reading in session.scalars(
                    select(ScaleReading).where(ScaleReading.flagged).order_by(ScaleReading.image_md5)
                )
            ]
            datasets = [
                {
                    "name": row.name,
                    "directory": row.directory,
                    "files": row.n_files,
                    "unique": row.n_unique,
                    "matched": row.n_matched,
                    "matched_reencoded": row.n_matched_reencoded,
                    "unmatched": row.n_unmatched,
                    "conflicting": row.n_conflicting,
                }
                for row in session.scalars(select(LabelDataset).order_by(LabelDataset.name))
            ]
            subsets = [
                {"name": row.name, "size": row.size, "criteria": row.criteria}
                for row in session.scalars(select(Subset).order_by(Subset.name))
            ]
        return {
            "ingest_runs": runs,
            "files_by_status": statuses,
            "files_not_admitted": problems,
            "files_not_admitted_limit": ADMIN_LIMIT,
            "near_duplicate_groups": [{"group": group, "images": md5s} for group, md5s in groups.items()],
            "scale_status": scale_counts,
            "scale_flagged": flagged,
            "label_datasets": datasets,
            "subsets": subsets,
        }


def apply_edits(
    counts: dict[int, dict[str, int]],
    parents: dict[int, int | None],
    edits: dict[str, tuple[int, int | None]],
    stored: dict[str, dict[int, tuple[str, bool]]],
) -> None:
    """Correct a tree's per-node counts (``size``, ``labelled``, ``placed``, ``doubtful``, ``moved``) in place for
    editors' corrections, by the rule :meth:`semcurate.Tree.member_md5s` applies.

    Parameters
    ----------
    counts : dict
        node id → counter of the stored tree (missing keys read as 0).
    parents : dict
        node id → parent node id (None at the top).
    edits : dict
        md5 → (node it was taken from, node it went to or None when marked misplaced), the newest edit each.
    stored : dict
        md5 → {node id: ("labelled" or "placed", doubtful)} for each edited image's stored memberships.

    Examples
    --------
    Node 1 holds 2 and 3; image a is moved from 2 to 3 (it stays in 1), image b is marked misplaced in 1 (it
    leaves 1 and its child 3):

    >>> from collections import Counter
    >>> counts = {1: Counter(size=4, placed=4), 2: Counter(size=2, placed=2), 3: Counter(size=2, placed=2)}
    >>> stored = {"a": {1: ("placed", False), 2: ("placed", False)}, "b": {1: ("placed", False), 3: ("placed", False)}}
    >>> apply_edits(counts, {1: None, 2: 1, 3: 1}, {"a": (2, 3), "b": (1, None)}, stored)
    >>> [(node, counts[node]["size"], counts[node]["placed"], counts[node]["moved"]) for node in (1, 2, 3)]
    [(1, 3, 3, 0), (2, 1, 1, 0), (3, 2, 1, 1)]
    """

    for md5, (source, target) in edits.items():
        before = stored.get(md5, {})
        after = (
            lineage(target, parents)
            if target is not None
            else {node for node in before if source not in lineage(node, parents)}
        )
        for node in before.keys() - after:
            kind, doubtful = before[node]
            counts[node]["size"] -= 1
            counts[node][kind] -= 1
            counts[node]["doubtful"] -= 1 if doubtful else 0
        for node in after - before.keys():
            counts[node]["size"] += 1
            counts[node]["moved"] += 1


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None when missing, NaN or infinite (JSON has no NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)


def score_histogram(values: np.ndarray, thresholds: list[float], bins: int = HISTOGRAM_BINS) -> dict:
    """A histogram of one quality score over the images, wide enough to show its thresholds too.

    Parameters
    ----------
    values : array
        The score of each image (NaN or infinite where missing: left out and counted).
    thresholds : list of float
        The thresholds set on this score; the bins span the finite values and these.
    bins : int
        Equal-width bins (:func:`numpy.histogram`).

    Returns
    -------
    dict
        ``edges`` (``bins`` + 1 floats, score units), ``counts`` (images per
        bin, summing to ``scored``), ``scored`` (finite values) and ``left_out``
        (missing ones); no edges nor counts when no value is finite.

    Examples
    --------
    >>> import numpy as np
    >>> histogram = score_histogram(np.array([1.0, 2.0, 2.5, np.nan]), [4.0], bins=3)
    >>> histogram["edges"], histogram["counts"], histogram["scored"], histogram["left_out"]
    ([1.0, 2.0, 3.0, 4.0], [1, 2, 0], 3, 1)
    """
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    marks = [value for value in thresholds if math.isfinite(value)]
    if not finite.size:
        return {"edges": [], "counts": [], "scored": 0, "left_out": int(values.size)}
    low, high = min(float(finite.min()), *marks), max(float(finite.max()), *marks)
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "scored": int(finite.size),
        "left_out": int(values.size - finite.size),
    }


#: The fields a search can look in.
SEARCH_FIELDS = ("path", "md5", "label", "scale", "subset")


def scale_dict(reading: ScaleReading) -> dict:
    """A stored scale reading with every candidate pixel size (bar, metadata, printed field width) and evidence."""
    return {
        "md5": reading.image_md5,
        "status": reading.status,
        "value": reading.value,
        "unit": reading.unit,
        "bar_px": reading.bar_px,
        "nm_per_px": reading.nm_per_px,
        "source": reading.source,
        "candidates": {
            "ocr": reading.ocr_nm_per_px,
            "metadata": reading.metadata_nm_per_px,
            "field": reading.field_nm_per_px,
        },
        "metadata_vendor": reading.metadata_vendor,
        "field_nm": reading.field_nm,
        "disagreement": reading.disagreement,
        "flagged": reading.flagged,
        "label_text": reading.label_text,
        "evidence": reading.evidence.split("; ") if reading.evidence else [],
        "reason": reading.reason,
        "stripe": None
        if reading.stripe_x0 is None
        else [reading.stripe_x0, reading.stripe_y0, reading.stripe_x1, reading.stripe_y1],
    }
