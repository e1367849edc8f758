"""Browse a stored sub-category tree: the queries behind ``semcurate tree show|images|export|rename``.

>>> from semcurate import Tree
>>> tree = Tree.open("sqlite:///semcurate.db")          # the newest tree
>>> print(tree.show("Nanowires", depth=1))
>>> tree.children("Nanowires")                         # [Node(path='Nanowires.1', ...), ...]
>>> tree.images("Nanowires.2", limit=5)                 # [Path('store/<md5>.jpg'), ...]
>>> tree.rename("Nanowires.2", "vertical arrays")
>>> tree.move(md5, "Nanowires.2", "Nanowires.1")      # an editor's correction, kept beside the stored tree
>>> tree.export("newick")

Nodes are addressed by path (``Nanowires``, ``Nanowires.2``, ``Nanowires.2.1``),
by their editable name, or by database id.

Editors' corrections (:class:`~semcurate.db.models.TreeEditRow`, made by
``semcurate serve --allow-edits`` or :meth:`Tree.move` / :meth:`Tree.mark_misplaced`)
are honoured by every membership answer here and so by ``tree export``: an
image moved to node T belongs to T and T's ancestors and to no other node; an
image marked misplaced in node F leaves F and F's descendants and stays in
F's ancestors.  The newest edit of an image wins.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from semcurate.db import open_database
from semcurate.db.models import Image, IngestRun, TreeEditRow, TreeMemberRow, TreeNodeRow, TreeRow


class TreeError(LookupError):
    """A tree or node that does not exist (one clear line)."""


class NoTreeYet(TreeError):
    """No tree is stored yet: nothing to browse until ``semcurate tree build`` has run."""


@dataclass(frozen=True)
class Node:
    """A node as researchers see it: where it is, what it is called, how big, what it looks like."""

    id: int
    path: str
    name: str | None
    depth: int
    category: str
    size: int
    representative: Path | None
    n_children: int

    @property
    def title(self) -> str:
        """The human name when one was given, else the path."""
        return self.name or self.path


class Tree:
    """One stored sub-category tree, read from the database (each query opens its own session)."""

    def __init__(self, sessions: sessionmaker, tree_id: int, image_store: Path | None):
        self._sessions, self.id, self.image_store = sessions, tree_id, image_store
        with sessions() as session:
            row = session.get(TreeRow, tree_id)
            if row is None:
                raise TreeError(f"no tree with id {tree_id}; see `semcurate tree list`")
            self.feature_set, self.method, self.rule, self.depth = row.feature_set, row.method, row.rule, row.depth
            self.labels_dataset, self.classifier_accuracy = row.labels_dataset, row.classifier_accuracy
            self.n_images, self.created_at = row.n_images, row.created_at

    @classmethod
    def open(
        cls, db: str | sessionmaker | None = None, tree_id: int | None = None, image_store: Path | None = None
    ) -> Tree:
        """Tree ``tree_id`` (default: the newest) of database ``db`` (URL, session factory, or the default URL).

        ``image_store`` (default: the store of the newest ingest run) turns
        representative md5s into file paths.
        """
        sessions = db if isinstance(db, sessionmaker) else open_database(db)
        with sessions() as session:
            if tree_id is None:
                tree_id = session.scalar(select(TreeRow.id).order_by(TreeRow.id.desc()).limit(1))
                if tree_id is None:
                    raise NoTreeYet("no sub-category tree is stored yet; run `semcurate tree build FEATURE_SET`")
            if image_store is None:
                latest = session.scalar(select(IngestRun.store).order_by(IngestRun.id.desc()).limit(1))
                image_store = Path(latest) if latest else None
        return cls(sessions, tree_id, image_store)

    def image_path(self, md5: str) -> Path | None:
        """Where the JPG rendition of image ``md5`` is in the flat store (None when no store is known)."""
        return self.image_store / f"{md5}.jpg" if self.image_store else None

    def _node(self, row: TreeNodeRow, n_children: int) -> Node:
        representative = self.image_path(row.representative_md5) if row.representative_md5 else None
        return Node(row.id, row.path, row.name, row.depth, row.category, row.size, representative, n_children)

    def _nodes(self, session, rows) -> list[Node]:
        ids = [row.id for row in rows]
        counts = dict(
            session.execute(
                select(TreeNodeRow.parent_id, func.count())
                .where(TreeNodeRow.parent_id.in_(ids))
                .group_by(TreeNodeRow.parent_id)
            ).all()
        )
        return [self._node(row, counts.get(row.id, 0)) for row in rows]

    def _row(self, session, address: str | int) -> TreeNodeRow:
        query = select(TreeNodeRow).where(TreeNodeRow.tree_id == self.id)
        text = str(address)
        matches = (
            session.scalars(query.where(TreeNodeRow.path == text)).all()
            or session.scalars(query.where(TreeNodeRow.name == text)).all()
        )
        if not matches and re.fullmatch(r"\d+", text):
            matches = session.scalars(query.where(TreeNodeRow.id == int(text))).all()
        if not matches:
            raise TreeError(f"no node {text!r} in tree {self.id}; give a path like Nanowires.2, a name, or an id")
        if len(matches) > 1:
            raise TreeError(
                f"{len(matches)} nodes are named {text!r}; use a path: " + ", ".join(row.path for row in matches)
            )
        return matches[0]

    def node(self, address: str | int) -> Node:
        """The node at ``address`` (path, name or id)."""
        with self._sessions() as session:
            return self._nodes(session, [self._row(session, address)])[0]

    def roots(self) -> list[Node]:
        """The top categories, largest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(TreeNodeRow)
                .where(TreeNodeRow.tree_id == self.id, TreeNodeRow.parent_id.is_(None))
                .order_by(TreeNodeRow.position)
            ).all()
            return self._nodes(session, rows)

    def children(self, address: str | int | None = None) -> list[Node]:
        """Children of the node at ``address``, largest first (the roots when None)."""
        if address is None:
            return self.roots()
        with self._sessions() as session:
            parent = self._row(session, address)
            rows = session.scalars(
                select(TreeNodeRow).where(TreeNodeRow.parent_id == parent.id).order_by(TreeNodeRow.position)
            ).all()
            return self._nodes(session, rows)

    def images(self, address: str | int, limit: int | None = None) -> list[Path | str]:
        """Image files of a node's members (md5s when no store is known), representative first, then by md5."""
        with self._sessions() as session:
            row = self._row(session, address)
            md5s = self._members(session, row)
            first = row.representative_md5
        md5s = ([first] if first in md5s else []) + [md5 for md5 in md5s if md5 != first]
        md5s = md5s[:limit] if limit is not None else md5s
        return [self.image_path(md5) or md5 for md5 in md5s]

    def categories_of(self, md5: str) -> list[Node]:
        """Every node that holds image ``md5``, from its top category down (where does my image sit?),
        editors' corrections applied as in every other membership answer."""
        with self._sessions() as session:
            rows = session.scalars(
                select(TreeNodeRow)
                .join(TreeMemberRow, TreeMemberRow.node_id == TreeNodeRow.id)
                .where(TreeNodeRow.tree_id == self.id, TreeMemberRow.image_md5 == md5)
            ).all()
            if not rows and session.get(Image, md5) is None:
                raise TreeError(f"no image with md5 {md5}")
            edit = self._edits(session).get(md5)
            if edit is not None:
                source, target = edit
                parents = self._parents(session)
                if target is not None:
                    holders = lineage(target, parents)
                    rows = session.scalars(select(TreeNodeRow).where(TreeNodeRow.id.in_(holders))).all()
                else:
                    rows = [row for row in rows if source not in lineage(row.id, parents)]
            return self._nodes(session, sorted(rows, key=lambda row: row.depth))

    def rename(self, address: str | int, name: str) -> Node:
        """Give the node at ``address`` a human name (an empty name clears it)."""
        with self._sessions.begin() as session:
            row = self._row(session, address)
            row.name = name.strip() or None
        return self.node(row.id)

    def walk(self, address: str | int | None = None, depth: int | None = None):
        """``Node`` of ``address`` (or every root) and its descendants to ``depth`` levels below, depth first."""
        starts = self.roots() if address is None else [self.node(address)]
        for start in starts:
            yield from self._walk(start, depth)

    def _walk(self, node: Node, depth: int | None):
        yield node
        if depth is None or depth > 0:
            for child in self.children(node.id):
                yield from self._walk(child, None if depth is None else depth - 1)

    def show(self, address: str | int | None = None, depth: int | None = None) -> str:
        """Indented text of the tree under ``address``: title, size, representative image path."""
        nodes = list(self.walk(address, depth))
        top = min((node.depth for node in nodes), default=1)
        lines = []
        for node in nodes:
            title = f"{node.path} “{node.name}”" if node.name else node.path
            lines.append(
                f"{'  ' * (node.depth - top)}{title}  ({node.size} images)  {node.representative or ''}".rstrip()
            )
        return "\n".join(lines)

    def member_md5s(self, address: str | int) -> list[str]:
        """The md5 of every image in the node at ``address``, sorted, editors' corrections applied."""
        with self._sessions() as session:
            return self._members(session, self._row(session, address))

    def edits(self) -> dict[str, tuple[int, int | None]]:
        """The newest correction of each edited image: md5 → (node it was taken from, node id it went to or None
        when it was marked misplaced)."""
        with self._sessions() as session:
            return self._edits(session)

    def _edits(self, session) -> dict[str, tuple[int, int | None]]:
        rows = session.execute(
            select(TreeEditRow.image_md5, TreeEditRow.from_node_id, TreeEditRow.to_node_id)
            .where(TreeEditRow.tree_id == self.id)
            .order_by(TreeEditRow.id)
        ).all()
        return {md5: (source, target) for md5, source, target in rows}

    def _parents(self, session) -> dict[int, int | None]:
        """Each node of this tree and its parent's id (None for a category), for :func:`lineage`."""
        return dict(
            session.execute(select(TreeNodeRow.id, TreeNodeRow.parent_id).where(TreeNodeRow.tree_id == self.id)).all()
        )

    def _members(self, session, row: TreeNodeRow) -> list[str]:
        members = set(session.scalars(select(TreeMemberRow.image_md5).where(TreeMemberRow.node_id == row.id)))
        edits = self._edits(session)
        if edits:
            parents = self._parents(session)
            for md5, (source, target) in edits.items():
                if target is not None:
                    (members.add if row.id in lineage(target, parents) else members.discard)(md5)
                elif source in lineage(row.id, parents):
                    members.discard(md5)
        return sorted(members)

    def move(self, md5: str, source: str | int, target: str | int | None) -> None:
        """Record that image ``md5``, seen in node ``source``, belongs in node ``target`` (None: misplaced, place
        unknown).  The stored tree is kept as built; every membership answer applies the newest edit.

        Raises
        ------
        TreeError
            An unknown node, an image that is not in ``source``, or a ``target`` that is ``source`` itself.
        """
        with self._sessions.begin() as session:
            origin = self._row(session, source)
            if md5 not in self._members(session, origin):
                raise TreeError(f"image {md5} is not in node {origin.path}")
            destination = None if target is None else self._row(session, target)
            if destination is not None and destination.id == origin.id:
                raise TreeError(f"image {md5} is already in node {origin.path}")
            session.add(
                TreeEditRow(
                    tree_id=self.id,
                    image_md5=md5,
                    from_node_id=origin.id,
                    to_node_id=None if destination is None else destination.id,
                )
            )

    def mark_misplaced(self, md5: str, address: str | int) -> None:
        """Record that image ``md5`` does not belong in the node at ``address`` (nor below it); see :meth:`move`."""
        self.move(md5, address, None)

    def as_dict(self, address: str | int | None = None, *, members: bool = False) -> dict:
        """The tree (or the subtree at ``address``) as nested dictionaries, for JSON; with ``members``, each node
        lists the md5 of its images under ``"members"`` and of those an editor marked misplaced there under
        ``"misplaced"``.  Once a tree has edits, sizes count the members after them."""
        edits = self.edits()

        def nested(node: Node) -> dict:
            entry = {
                "path": node.path,
                "name": node.name,
                "category": node.category,
                "size": node.size,
                "representative": str(node.representative) if node.representative else None,
            }
            if members or edits:
                listed = self.member_md5s(node.id)
                entry["size"] = len(listed)
                if members:
                    entry["members"] = listed
                    entry["misplaced"] = sorted(
                        md5 for md5, (source, target) in edits.items() if target is None and source == node.id
                    )
            return {**entry, "children": [nested(child) for child in self.children(node.id)]}

        roots = self.roots() if address is None else [self.node(address)]
        return {
            "tree_id": self.id,
            "feature_set": self.feature_set,
            "method": self.method,
            "rule": self.rule,
            "labels_dataset": self.labels_dataset,
            "classifier_accuracy": self.classifier_accuracy,
            "nodes": [nested(root) for root in roots],
        }

    def export(self, fmt: str = "json", address: str | int | None = None) -> str:
        """The tree as JSON text (every node with its members' md5s) or as a Newick string (labels are titles with
        sizes, quoted per the standard)."""
        if fmt == "json":
            return json.dumps(self.as_dict(address, members=True), indent=2, ensure_ascii=False)
        if fmt == "newick":

            def newick(node: dict) -> str:
                inner = ",".join(newick(child) for child in node["children"])
                label = newick_label(f"{node['name'] or node['path']} [{node['size']}]")
                return f"({inner}){label}" if inner else label

            tops = self.as_dict(address)["nodes"]
            return f"({','.join(newick(node) for node in tops)})tree_{self.id};"
        raise TreeError(f"unknown export format {fmt!r}; choose json or newick")


def lineage(node_id: int | None, parents: dict[int, int | None]) -> set[int]:
    """``node_id`` and every ancestor of it, given each node's parent (``None`` above a root).

    Examples
    --------
    >>> sorted(lineage(3, {1: None, 2: 1, 3: 2}))
    [1, 2, 3]
    """
    found = set()
    while node_id is not None:
        found.add(node_id)
        node_id = parents.get(node_id)
    return found


def newick_label(text: str) -> str:
    """``text`` as a Newick label: single-quoted (quotes doubled) when it holds characters Newick reserves."""
    if re.search(r"[\s(),:;\[\]']", text):
        return "'" + text.replace("'", "''") + "'"
    return text
