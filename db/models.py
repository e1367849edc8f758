"""SQLAlchemy ORM models for the curated repository.

Identity follows the design card: an image is identified by the MD5 of its
TIFF bytes, or of its JPG bytes for images that exist only as JPG.  Files are
many-to-one onto images, and every file ever seen keeps a row with its path,
size, format, status and a human-readable reason, so nothing is lost silently.

The schema itself is owned by the Alembic migrations in ``migrations/``; these
classes must stay in step with the newest revision (a test checks that
``alembic check`` finds no difference).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    """Timezone-naive UTC now, as stored in every ``*_at`` column."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of every semcurate table."""


class IngestRun(Base):
    """One invocation of ``semcurate ingest``: what was walked, where it went, what it found."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_root: Mapped[str] = mapped_column(Text)
    store: Mapped[str] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    summary_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class Image(Base):
    """A unique image in the flat store, ``<md5>.tif`` and/or ``<md5>.jpg``.

    ``md5`` is the MD5 of the TIFF bytes (or of the JPG bytes when
    ``jpg_only``); ``jpg_md5`` is the MD5 of the JPG in the store, unique so
    that TIFF and JPG stand in a one-to-one relation as in the thesis.
    ``width``/``height`` are in pixels; ``phash`` is a 64-bit perceptual hash
    (16 hex digits) used to find near-duplicates, which are recorded, never
    deleted: every member of a near-duplicate group has
    ``near_duplicate_group`` set to the md5 of one member, fixed when the
    group forms (so the id is stable across runs); other images have null.
    """

    __tablename__ = "images"

    md5: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_format: Mapped[str] = mapped_column(String(8))
    jpg_md5: Mapped[str] = mapped_column(String(32), unique=True)
    jpg_only: Mapped[bool] = mapped_column(Boolean, default=False)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    pages: Mapped[int] = mapped_column(Integer, default=1)
    phash: Mapped[str] = mapped_column(String(16), index=True)
    near_duplicate_group: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    conversion_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class File(Base):
    """Every file seen under a source root, whatever became of it.

    ``status`` is one of ``pending`` (hashed, not yet classified), ``image``
    (the file an image was admitted from), ``duplicate`` (another file of an
    admitted image; ``relation`` says how: ``exact``, ``jpg_rendition`` or
    ``metadata_variant``), ``corrupt``, ``unsupported``, ``unreadable``,
    ``rejected`` (over the pixel limit) or ``skipped`` (a folder symlink
    already walked, a device or pipe).  ``reason`` says why in words.
    ``size`` is in bytes and ``mtime_ns`` in nanoseconds since the epoch; both
    let a re-run skip files it has already hashed.
    """

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_root: Mapped[str] = mapped_column(Text)
    relpath: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    extension: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8), index=True)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    relation: Mapped[str | None] = mapped_column(String(24), nullable=True)
    image_md5: Mapped[str | None] = mapped_column(String(32), ForeignKey("images.md5"), nullable=True, index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("source_root", "relpath", name="uq_files_path"),)


class LabelDataset(Base):
    """A labelled-dataset folder imported by ``semcurate labels import`` (thesis Table 2.2)."""

    __tablename__ = "label_datasets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    directory: Mapped[str] = mapped_column(Text)
    n_files: Mapped[int] = mapped_column(Integer)
    n_unique: Mapped[int] = mapped_column(Integer)
    n_matched: Mapped[int] = mapped_column(Integer)
    n_matched_reencoded: Mapped[int] = mapped_column(Integer)
    n_unmatched: Mapped[int] = mapped_column(Integer)
    n_conflicting: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Label(Base):
    """One labelled file of a dataset, matched to an image where possible.

    ``category_path`` is the folder path below the dataset root, e.g.
    ``Nanowires/Forest/crust``; ``category`` is its first component.
    ``match`` says how the file was tied to an image: ``md5`` (same bytes as
    a JPG we hold or saw in a source tree), ``reencoded`` (a TIFF re-encoded
    with the file's own JPEG tables reproduced it byte for byte), ``pixels``
    (a TIFF's pixels agree within tolerance) or ``none`` (``image_md5`` null).
    """

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("label_datasets.name", ondelete="CASCADE"))
    relpath: Mapped[str] = mapped_column(Text)
    file_md5: Mapped[str] = mapped_column(String(32))
    category_path: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64), index=True)
    image_md5: Mapped[str | None] = mapped_column(String(32), ForeignKey("images.md5"), nullable=True, index=True)
    match: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("dataset", "relpath", name="uq_labels_dataset_relpath"),
        Index("ix_labels_dataset_image", "dataset", "image_md5"),
    )


class ScaleReading(Base):
    """The scale of one image, read from its data bar and/or its vendor TIFF metadata (thesis §2.3).

    ``status`` is ``ok`` or why there is no scale: ``no_stripe``,
    ``multiple_stripes``, ``no_segment``, ``multiple_segments``,
    ``unreadable`` (no plausible value could be read; the reader abstains
    rather than guess), ``conflict`` (the bar and the metadata or the other
    fields of the stripe disagree) or ``error`` (the image could not be
    decoded).  ``value``/``unit`` are the bar's label (``unit`` in
    ``nm``/``µm``/``mm``), ``bar_px`` the segment length in px (sub-pixel),
    ``nm_per_px`` the pixel size in nm.  ``source`` is ``metadata``,
    ``both`` (metadata and pixels agreeing within 1 %), ``ocr`` (the bar) or
    ``field`` (the field width printed on the stripe, ``field_nm``, over the
    image width: ``field_nm_per_px``).  Every source's pixel size is kept,
    with the relative ``disagreement`` of metadata and pixels; ``flagged``
    marks disagreements above 1 % (the metadata value is kept).  The stripe
    box (px, ends exclusive) lets later stages crop the data bar away before
    computing features.
    """

    __tablename__ = "scale_readings"

    image_md5: Mapped[str] = mapped_column(String(32), ForeignKey("images.md5"), primary_key=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(4), nullable=True)
    bar_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    nm_per_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ocr_nm_per_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    metadata_nm_per_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    metadata_vendor: Mapped[str | None] = mapped_column(String(8), nullable=True)
    field_nm: Mapped[float | None] = mapped_column(Float, nullable=True)
    field_nm_per_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    disagreement: Mapped[float | None] = mapped_column(Float, nullable=True)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    stripe_x0: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stripe_y0: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stripe_x1: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stripe_y1: Mapped[int | None] = mapped_column(Integer, nullable=True)
    label_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reader_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_scale_readings_value_unit", "value", "unit"),)


class Subset(Base):
    """A named set of images that later stages take as input, e.g. the thesis' ``1u-2u``.

    ``criteria`` is the JSON of how it was made (for provenance); members are
    fixed when the subset is created.
    """

    __tablename__ = "subsets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    criteria: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SubsetMember(Base):
    """Membership of an image in a subset."""

    __tablename__ = "subset_members"

    subset: Mapped[str] = mapped_column(ForeignKey("subsets.name", ondelete="CASCADE"), primary_key=True)
    image_md5: Mapped[str] = mapped_column(String(32), ForeignKey("images.md5"), primary_key=True)


class FeatureSet(Base):
    """Metadata of one feature set; its rows (one per image md5) live in an HDF5 feature store.

    ``name`` reads like ``inception_v3.imagenet.pool`` or ``classic``, with
    derived sets (autoencoder codes, PCA) named after their parent plus a
    suffix (``….ae13``).  ``weights_digest`` is the SHA-256 of the weights
    file used (or the name of the weights when there is no file), so numbers
    can be traced to exactly the model that made them.  ``dimension`` is the
    length of each row; ``n_rows`` how many images have one.
    """

    __tablename__ = "feature_sets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    extractor: Mapped[str] = mapped_column(String(64))
    weights: Mapped[str] = mapped_column(Text)
    weights_digest: Mapped[str] = mapped_column(String(64))
    layer: Mapped[str] = mapped_column(String(64))
    dimension: Mapped[int] = mapped_column(Integer)
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    store_path: Mapped[str] = mapped_column(Text)
    parent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    parameters: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Clustering(Base):
    """One clustering run of a feature set: a merge tree (linkage) or labels for each k.

    ``kind`` is ``hierarchy`` for the agglomerative methods and Density Peaks,
    whose SciPy-format linkage matrix over ``n_points`` images lets any k be cut
    instantly later, and ``partitions`` for the flat methods (k-means, Gaussian
    mixtures, HDBSCAN, spectral), stored as one label row per k. The arrays live
    in the HDF5 cluster store at ``store_path`` under group ``store_key``;
    ``parameters`` is the JSON of every parameter used; ``seconds`` the wall time
    of the clustering itself.
    """

    __tablename__ = "clusterings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(128), index=True)
    method: Mapped[str] = mapped_column(String(32))
    subset: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    n_points: Mapped[int] = mapped_column(Integer)
    k_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parameters: Mapped[str] = mapped_column(Text)
    store_path: Mapped[str] = mapped_column(Text)
    store_key: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TreeRow(Base):
    """A sub-category tree (thesis chapter 5): each top category clustered on its own, recursively.

    ``labels_dataset`` gave the top categories; images without a label were
    placed by a classifier trained on the labelled ones, whose cross-validated
    held-out accuracy is ``classifier_accuracy`` (None when nothing was placed or nothing could be held out).
    ``placement`` is the JSON report of that classifier
    (:func:`~semcurate.clustering.placement.placement_report`: the classifiers
    compared, the calibration, held-out accuracy per category, the confusion
    matrix, the reliability table, placed and doubtful counts).
    ``rule`` says how the number of children of a node was chosen (for HDBSCAN and Louvain, which choose their
    own, the method's name).
    """

    __tablename__ = "trees"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_set: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(32))
    subset: Mapped[str | None] = mapped_column(String(64), nullable=True)
    labels_dataset: Mapped[str] = mapped_column(String(128))
    depth: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(32))
    parameters: Mapped[str] = mapped_column(Text)
    n_images: Mapped[int] = mapped_column(Integer)
    n_labelled: Mapped[int] = mapped_column(Integer)
    classifier_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    placement: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TreeNodeRow(Base):
    """A node of a sub-category tree: a top category (depth 1) or one of its sub-clusters.

    ``path`` addresses the node in the tree (``Nanowires``, ``Nanowires.2``,
    ``Nanowires.2.1``); ``name`` is the human name an editor gives it
    (``semcurate tree rename``). ``representative_md5`` is the medoid image,
    ``mean_image`` a PNG of the members' mean grey image (HyperSpy's cluster
    signals). ``split_rule``/``split_scores`` record how the number of children
    was chosen (JSON of score per k; the gap rule scores k = 1 too, so a leaf
    it declined to split keeps them); ``stop`` says why a leaf was not split
    (:data:`semcurate.clustering.splitting.STOPS`: ``no-structure``,
    ``max-depth``, ``small-children``, ...), ``note`` gives the deciding
    numbers in one sentence.
    """

    __tablename__ = "tree_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tree_nodes.id", ondelete="CASCADE"), nullable=True)
    path: Mapped[str] = mapped_column(String(255))
    depth: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    representative_md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mean_image: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    split_rule: Mapped[str | None] = mapped_column(String(32), nullable=True)
    split_scores: Mapped[str | None] = mapped_column(Text, nullable=True)
    stop: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (UniqueConstraint("tree_id", "path"),)


class TreeMemberRow(Base):
    """An image in a tree node; ``assigned_by`` is ``label`` or ``classifier`` (how it got its top category).

    ``probability`` is the classifier's calibrated probability of the category
    it gave (None for a labelled image); ``doubtful`` marks a placement below
    the tree's threshold (``doubtful_below`` in ``TreeRow.placement``).
    """

    __tablename__ = "tree_members"

    node_id: Mapped[int] = mapped_column(ForeignKey("tree_nodes.id", ondelete="CASCADE"), primary_key=True)
    image_md5: Mapped[str] = mapped_column(String(32), ForeignKey("images.md5"), primary_key=True, index=True)
    assigned_by: Mapped[str] = mapped_column(String(16))
    probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    doubtful: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TreeEditRow(Base):
    """An editor's correction of a tree member, made in ``semcurate serve --allow-edits``.

    The image ``image_md5`` was in node ``from_node_id`` (a leaf or any node
    the editor looked at) and was moved to ``to_node_id``, or marked
    misplaced when ``to_node_id`` is null.  Rows are only ever added; the
    newest row of an image in a tree is the one that counts, and
    ``tree export`` honours it (the stored clustering stays as built).
    """

    __tablename__ = "tree_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"), index=True)
    image_md5: Mapped[str] = mapped_column(String(32), ForeignKey("images.md5"), index=True)
    from_node_id: Mapped[int] = mapped_column(ForeignKey("tree_nodes.id", ondelete="CASCADE"))
    to_node_id: Mapped[int | None] = mapped_column(ForeignKey("tree_nodes.id", ondelete="CASCADE"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class QualityRun(Base):
    """One ``semcurate quality`` run: the thresholds it set from the repository's score distributions.

    ``thresholds`` is the JSON of every flag's
    :class:`~semcurate.ingest.quality.Threshold` (score, direction, value and
    how it was set: robust z with the median and spread, the guard, or an
    override); ``config`` the JSON of the rules and overrides the run was given;
    ``flag_counts`` the JSON of images per flag.  The newest run's flags are the
    ones stored on :class:`QualityScore` rows.
    """

    __tablename__ = "quality_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scorer_version: Mapped[str] = mapped_column(String(16))
    n_images: Mapped[int] = mapped_column(Integer)
    thresholds: Mapped[str] = mapped_column(Text)
    config: Mapped[str] = mapped_column(Text)
    flag_counts: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class QualityScore(Base):
    """The raw quality scores of one image (:class:`semcurate.ingest.quality.QualityScores`), and its flags.

    Scores are measured on the picture without its data bar (``bar_included``
    when no bar was found); grey levels on the 0-255 scale, ``sharpness`` in
    log10 units, shares in 0..1.  ``charging_rows`` lists the image rows of
    the scan-line jumps found (space-separated), ``reason`` why a score is
    missing or how the pixels were read.  ``flags`` is the comma-separated
    list of flags the newest :class:`QualityRun` (``run_id``) raised (empty
    for a sound image).
    """

    __tablename__ = "quality_scores"

    image_md5: Mapped[str] = mapped_column(String(32), ForeignKey("images.md5"), primary_key=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    picture_height: Mapped[int] = mapped_column(Integer)
    bar_included: Mapped[bool] = mapped_column(Boolean)
    aspect: Mapped[float] = mapped_column(Float)
    sharpness: Mapped[float | None] = mapped_column(Float, nullable=True)
    spectral_sharpness: Mapped[float | None] = mapped_column(Float, nullable=True)
    brightness: Mapped[float | None] = mapped_column(Float, nullable=True)
    median_brightness: Mapped[float | None] = mapped_column(Float, nullable=True)
    clipped_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    clipped_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    dynamic_range: Mapped[float | None] = mapped_column(Float, nullable=True)
    entropy: Mapped[float | None] = mapped_column(Float, nullable=True)
    noise: Mapped[float | None] = mapped_column(Float, nullable=True)
    structure: Mapped[float | None] = mapped_column(Float, nullable=True)
    charging: Mapped[float | None] = mapped_column(Float, nullable=True)
    charging_rows: Mapped[str | None] = mapped_column(Text, nullable=True)
    colourfulness: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    flags: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("quality_runs.id"), nullable=True)
    scorer_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ImageSignature(Base):
    """What near-duplicate grouping needs of an image besides its whole-image ``phash``.

    ``top_phash`` is the 64-bit perceptual hash (16 hex digits) of the square
    at the top centre of the image, half its width on a side
    (:func:`semcurate.ingest.near_duplicates.top_square`): the same for a copy
    resized, re-compressed, slightly cropped, contrast-stretched or cut above
    its data bar, so such copies become candidate pairs.
    """

    __tablename__ = "image_signatures"

    image_md5: Mapped[str] = mapped_column(String(32), ForeignKey("images.md5"), primary_key=True)
    top_phash: Mapped[str] = mapped_column(String(16), index=True)


class OutlierScore(Base):
    """How far one image lies from the others in a feature set (``semcurate outliers``).

    ``knn_distance`` is the mean Euclidean distance to its ``k`` nearest
    neighbours (in the feature set's preprocessed space), ``lof`` its local
    outlier factor (Breunig et al. 2000; about 1 inside a cluster, larger
    outside); ``rank`` orders the images by LOF, 1 the most outlying.
    """

    __tablename__ = "outlier_scores"

    feature_set: Mapped[str] = mapped_column(String(128), primary_key=True)
    image_md5: Mapped[str] = mapped_column(String(32), ForeignKey("images.md5"), primary_key=True)
    k: Mapped[int] = mapped_column(Integer)
    knn_distance: Mapped[float] = mapped_column(Float)
    lof: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
