"""``semcurate cluster``, ``n-clusters`` and ``tree``: the clustering stage (thesis ch. 4 and 5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from semcurate.cli.common import (
    CLUSTER_STORE,
    FEATURE_STORE,
    AsJson,
    Choice,
    ClusterStorePath,
    Db,
    FeatureStorePath,
    Preprocessing,
    Subset,
    choice_option,
    echo_json,
    fail,
    image_store,
    open_sessions,
    show_records,
)
from semcurate.clustering.methods import (
    AGREEING_SHARE,
    CATEGORY_BLOCK_WEIGHT,
    K_METHODS,
    METHODS,
    MIN_AGREEING_LABELS,
    MIN_NULL_Z,
    MIN_SILHOUETTE,
    MIN_STABILITY,
    N_CLUSTERS_ALGORITHMS,
    N_CLUSTERS_METHODS,
    SAMPLE_ROWS,
    SPLIT_RULES,
    TREE_EXPORT_FORMATS,
)
from semcurate.progress import print_table, progress_reporter

tree_app = typer.Typer(help="The sub-category tree: build it, browse it, name its nodes.", no_args_is_help=True)

CLUSTERING_METHOD = Choice("method", METHODS)
N_CLUSTERS_CRITERION = Choice("criterion", N_CLUSTERS_METHODS)
N_CLUSTERS_ALGORITHM = Choice("method", N_CLUSTERS_ALGORITHMS)
SPLIT_RULE = Choice("rule", SPLIT_RULES)
EXPORT_FORMAT = Choice("format", TREE_EXPORT_FORMATS)

TreeId = Annotated[int | None, typer.Option("--tree", help="Tree id (see `semcurate tree list`); default the newest.")]
TreeImageStore = Annotated[
    Path | None, typer.Option("--store", help="Flat store for image paths (default: last ingest's).")
]


def parse_parameters(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as a dict; values read as JSON (numbers, true/false) where they parse, else strings."""
    parameters = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            fail(f"--param takes KEY=VALUE, e.g. n_neighbors=30; got {pair!r}")
        try:
            parameters[key] = json.loads(text)
        except json.JSONDecodeError:
            parameters[key] = text
    return parameters


def bar_on_first_step(
    reporter: Callable[[str, int], Callable[[int], None]], phase: str, total: int
) -> Callable[[int], None]:
    """An ``advance(n)`` whose progress bar opens at the first step, so that a request the first fit refuses (a bad
    parameter value) prints its one error line and no empty bar."""
    advance: Callable[[int], None] | None = None

    def step(n: int = 1) -> None:
        nonlocal advance
        if advance is None:
            advance = reporter(phase, total)
        advance(n)

    return step


def cluster(
    feature_set: Annotated[str | None, typer.Argument(help="Feature set to cluster, e.g. classic.ae8.")] = None,
    method: Annotated[
        str,
        choice_option(
            "--method",
            CLUSTERING_METHOD,
            "ward, centroid, complete, single, average (dendrograms, §4.1), density-peaks (§4.2), kmeans, gmm, "
            "hdbscan, spectral or louvain (Louvain communities of the 10-nearest-neighbour graph).",
        ),
    ] = "ward",
    subset: Subset = None,
    k_max: Annotated[
        int,
        typer.Option(
            "--k-max",
            min=1,
            help="Largest k summarised; flat methods are fitted for every k in 2..K (trees give any k later).",
        ),
    ] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Random state of the randomised methods.")] = 0,
    preprocessing: Preprocessing = "standard",
    param: Annotated[
        list[str],
        typer.Option("--param", help="Method parameter KEY=VALUE (repeatable), e.g. n_neighbors=30 for density-peaks."),
    ] = (),
    list_stored: Annotated[bool, typer.Option("--list", help="List the stored clusterings and exit.")] = False,
    as_json: AsJson = False,
    feature_store: FeatureStorePath = FEATURE_STORE,
    cluster_store: ClusterStorePath = CLUSTER_STORE,
    db: Db = None,
) -> None:
    """Cluster a feature set and store the tree (any k is cut later) or the partitions, with every parameter."""
    if list_stored:
        from semcurate.clustering.runs import list_clusterings

        show_records(
            "stored clusterings",
            list_clusterings(open_sessions(db, read_only=True)),
            as_json=as_json,
            nothing_yet="no clusterings stored yet: run `semcurate cluster FEATURE_SET --method METHOD`",
        )
        return
    from semcurate.clustering.agglomerative import LinkageMemoryError
    from semcurate.clustering.runs import ClusteringError, cluster_feature_set
    from semcurate.clustering.store import ClusterStore
    from semcurate.features.store import FeatureStore

    sessions = open_sessions(db)
    if feature_set is None:
        fail("name the feature set to cluster (see `semcurate features list`), or pass --list")
    parameters = parse_parameters(list(param))
    try:
        with progress_reporter(enabled=not as_json) as reporter:
            # Flat methods report one step per k; a linkage or Density Peaks is one call with nothing to count.
            advance = bar_on_first_step(reporter, f"{method} fits", max(k_max - 1, 1) if method in K_METHODS else 0)
            summary = cluster_feature_set(
                sessions,
                FeatureStore(feature_store),
                ClusterStore(cluster_store),
                feature_set,
                method,
                subset=subset,
                k_max=k_max,
                random_state=seed,
                preprocessing=preprocessing,
                parameters=parameters,
                progress=advance,
            )
    except (ClusteringError, LinkageMemoryError) as error:
        fail(str(error))
    if as_json:
        echo_json(summary)
    else:
        print_table(f"clustering {summary['clustering_id']} stored in {cluster_store}", summary)


def n_clusters(
    feature_set: Annotated[str, typer.Argument(help="Feature set, e.g. classic.ae8.")],
    criterion: Annotated[
        str,
        choice_option(
            "--criterion", N_CLUSTERS_CRITERION, "elbow, silhouette or gap (as HyperSpy's estimate_number_of_clusters)."
        ),
    ] = "silhouette",
    method: Annotated[
        str,
        choice_option(
            "--method", N_CLUSTERS_ALGORITHM, "kmeans, gmm, spectral, a linkage (ward, ...) or density-peaks."
        ),
    ] = "kmeans",
    k_min: Annotated[int, typer.Option("--k-min", min=1, help="Smallest k tried (gap may start at 1).")] = 2,
    k_max: Annotated[int, typer.Option("--k-max", min=2, help="Largest k tried.")] = 12,
    subset: Annotated[str | None, typer.Option("--subset", help="Only images of this subset.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random state.")] = 0,
    preprocessing: Preprocessing = "standard",
    out: Annotated[Path, typer.Option("--out", help="Folder for the plot and the numbers.")] = Path(
        "results/n_clusters"
    ),
    feature_store: FeatureStorePath = FEATURE_STORE,
    db: Db = None,
) -> None:
    """Estimate the number of clusters of a feature set; writes the score curve (PNG) and its numbers (JSON)."""
    from semcurate.clustering.agglomerative import LinkageMemoryError
    from semcurate.clustering.runs import ClusteringError, estimate_feature_set_clusters
    from semcurate.features.store import FeatureStore

    try:
        result = estimate_feature_set_clusters(
            open_sessions(db),
            FeatureStore(feature_store),
            feature_set,
            criterion,
            method,
            out,
            k_min=k_min,
            k_max=k_max,
            subset=subset,
            random_state=seed,
            preprocessing=preprocessing,
        )
    except (ClusteringError, LinkageMemoryError) as error:
        fail(str(error))
    estimate = result["estimate"]
    print_table(
        f"{criterion} of {method} on {feature_set}: best k = {estimate.best_k}",
        [(k, f"{score:.4g}") for k, score in zip(estimate.ks, estimate.scores, strict=True)],
        ("k", criterion),
    )
    typer.echo(f"plot and numbers in {out}")


def open_tree(db: str | None, tree_id: int | None, store: Path | None = None, *, read_only: bool = True):
    """The stored tree ``tree_id`` (None: the newest), or one error line; opened ``read_only`` unless it is renamed."""
    from semcurate.clustering.browse import NoTreeYet, Tree, TreeError

    try:
        return Tree.open(open_sessions(db, read_only=read_only), tree_id, store)
    except NoTreeYet as error:
        fail(str(error), 1)
    except TreeError as error:
        fail(str(error))


@tree_app.command("build")
def tree_build(
    feature_set: Annotated[str, typer.Argument(help="Feature set whose rows are clustered, e.g. classic.ae8.")],
    method: Annotated[
        str,
        choice_option(
            "--method",
            CLUSTERING_METHOD,
            "Clustering method of `semcurate cluster`. louvain: each node's children are the Louvain "
            "communities of its 10-nearest-neighbour graph, kept where Ward's as many clusters beat the Gaussian null "
            "(--min-null-z) and separate (--min-silhouette).",
        ),
    ] = "ward",
    dataset: Annotated[
        str, typer.Option("--dataset", help="Labelled dataset giving the top categories.")
    ] = "SEM_Dataset",
    depth: Annotated[
        int,
        typer.Option(
            "--depth", min=1, help="Most levels below each category; the gap rule stops where it finds no structure."
        ),
    ] = 4,
    rule: Annotated[
        str,
        choice_option(
            "--rule",
            SPLIT_RULE,
            "Whether and into how many children a node splits: gap (default: splits only where the gap statistic "
            "beats its uniform reference, Tibshirani 2001), silhouette or dendrogram-gap (monotone linkages only; "
            "both always split down to --depth). --method hdbscan and louvain choose their own children, whatever "
            "the rule.",
        ),
    ] = "gap",
    subset: Annotated[str | None, typer.Option("--subset", help="Only images of this subset.")] = None,
    max_children: Annotated[
        int,
        typer.Option(
            "--max-children",
            min=2,
            help="Most children a node may get (hdbscan and louvain choose their own number, which this does not "
            "bound).",
        ),
    ] = 8,
    min_size: Annotated[int, typer.Option("--min-size", min=1, help="Fewest images a sub-category may hold.")] = 10,
    min_silhouette: Annotated[
        float,
        typer.Option(
            "--min-silhouette",
            help="Gap rule and louvain: least mean silhouette of a node's children for it to split, in [0, 1); a "
            "node whose children stay under it is a leaf ('weak structure'), so that a large category is not split "
            "on slight structure a test sees only because it sees many images. The gap rule also merges any two "
            "children under it. 0 turns the floor off, and with it the gap rule's reading past a 2-partition that "
            "fails (equidistant groups), which the floor guards.",
        ),
    ] = MIN_SILHOUETTE,
    min_stability: Annotated[
        float,
        typer.Option(
            "--min-stability",
            help="Gap rule: least mean Jaccard similarity, in [0, 1], with which 20 random subsamples of 80 % of a "
            "node, clustered again, find each of its children (Hennig 2007); a child under it joins its nearest "
            "sibling, down to two, so that pieces of one sub-category that one draw of images happens to show are "
            "not kept as sub-categories. 0 turns the test off.",
        ),
    ] = MIN_STABILITY,
    min_null_z: Annotated[
        float,
        typer.Option(
            "--min-null-z",
            help="Gap rule and louvain: least z-score by which Ward's k clusters of a node (k the gap's, or the "
            "number of Louvain's communities) must leave less of its "
            "variance within them than Ward's k clusters of Gaussian rows with the node's covariance (Ledoit-Wolf; "
            "30 draws, at most 300 rows); under it the node is a leaf ('gaussian-like'), so that one sub-category "
            "whose images spread unevenly is not split in two. 0 turns the test off.",
        ),
    ] = MIN_NULL_Z,
    sample_size: Annotated[
        int,
        typer.Option(
            "--sample-size",
            help="Most rows of a node on which the rules decide (a random sample of larger nodes): the gap's "
            "clusterings, the silhouettes, the stability subsamples. A test sees more structure in more rows, so "
            "this is the size at which the tree resolves sub-categories, the same for a category of 2,000 images "
            "as for one of 20,000.",
        ),
    ] = SAMPLE_ROWS,
    seed: Annotated[int, typer.Option("--seed", help="Random state (classifier folds, sampling, flat methods).")] = 0,
    preprocessing: Preprocessing = "standard",
    place_with: Annotated[
        str | None,
        typer.Option(
            "--place-with",
            help="The supervised classifiers place the unlabelled images by this feature set's rows "
            "(standardised) instead of FEATURE_SET's; label spreading's graph stays on FEATURE_SET's. "
            "E.g. split classic.invK but place with classic.",
        ),
    ] = None,
    keep_flagged: Annotated[
        bool,
        typer.Option(
            "--keep-flagged",
            help="Keep the images the newest `semcurate quality` run flagged blurred, dark, light, "
            "saturated, low_information, noisy, charging or colour; by default they are left out of the tree "
            "(and counted).",
        ),
    ] = False,
    hierarchy: Annotated[
        str | None,
        typer.Option(
            "--hierarchy",
            help="Labelled dataset with sub-category paths (e.g. Hierarchical): a node below a category is not "
            f"split further where at least {MIN_AGREEING_LABELS} of its images carry one of its labels and "
            f"{AGREEING_SHARE:.0%} of those name one sub-category, and sibling leaves whose labels agree on the "
            "same sub-category become one leaf. It only undoes splits: with more images than the labels' "
            "curators looked at, the rules resolve finer structure than theirs.",
        ),
    ] = None,
    category_block: Annotated[
        str | None,
        typer.Option(
            "--category-block",
            help="Feature set whose columns are appended to each category's rows before it is split, standardised "
            "within the category and scaled by --category-block-weight, e.g. particle_facets (how straight and "
            "symmetric the particles' edges are, which `features extract --extractor classic_particles` fills): "
            "a few columns that tell one category's sub-categories apart, and that a projection with many others "
            "would drown.",
        ),
    ] = None,
    category_block_weight: Annotated[
        float,
        typer.Option(
            "--category-block-weight",
            min=0.0,
            help="The block's spread within a category, in units of the median spread of FEATURE_SET's columns there.",
        ),
    ] = CATEGORY_BLOCK_WEIGHT,
    community_weights: Annotated[
        bool,
        typer.Option(
            "--community-weights/--no-community-weights",
            help="Before a category is split, scale each of its columns (the block's too) by how well the "
            "category's Louvain communities tell that column apart (within-community share of its variance), so "
            "that the columns that carry its sub-categories count for more than those that are noise there. "
            "It rescued the categories the facet block alone lost in the demo's 1,300-image trees (with "
            "--category-block-weight 3) and cost the 52,682-image tree leaf NMI 0.012 and extra leaves.",
        ),
    ] = False,
    store: Annotated[
        Path | None, typer.Option("--store", help="Flat store for mean images (default: last ingest's).")
    ] = None,
    feature_store: FeatureStorePath = FEATURE_STORE,
    db: Db = None,
) -> None:
    """Split every top category into sub-categories, recursively, and store the tree (thesis chapter 5)."""
    from semcurate.clustering.agglomerative import LinkageMemoryError
    from semcurate.clustering.runs import ClusteringError
    from semcurate.clustering.tree_building import build_tree
    from semcurate.features.store import FeatureStore

    sessions = open_sessions(db)
    store = image_store(sessions, store)
    try:
        with progress_reporter() as reporter:
            summary = build_tree(
                sessions,
                FeatureStore(feature_store),
                store,
                feature_set,
                method,
                dataset,
                depth=depth,
                rule=rule,
                subset=subset,
                max_children=max_children,
                min_size=min_size,
                min_silhouette=min_silhouette,
                min_stability=min_stability,
                min_null_z=min_null_z,
                sample_size=sample_size,
                random_state=seed,
                preprocessing=preprocessing,
                placement_feature_set=place_with,
                leave_out_flagged=not keep_flagged,
                hierarchy_dataset=hierarchy,
                category_block=category_block,
                category_block_weight=category_block_weight,
                community_weights=community_weights,
                reporter=reporter,
            )
    except (ClusteringError, LinkageMemoryError) as error:
        fail(str(error))
    placement = summary.pop("placement")
    print_table(f"tree {summary['tree_id']} stored", summary)
    print_placement(placement)


def print_placement(report: dict) -> None:
    """The tables of a tree's placement report: classifiers compared, per-category accuracy, confusion matrix."""
    from semcurate.clustering.placement_tables import placement_summary

    if report.get("untested"):
        typer.echo(f"placement: {report['untested']}")
    if report.get("unreached"):
        typer.echo(
            f"placement: {report['unreached']} images no label reached through the graph of similar images: "
            f"{report['unreached_placed_by']} placed them"
        )
    if not report.get("cv"):
        return
    print_table(
        f"classifiers compared: {report['folds']}-fold cross-validation on {report['cv_rows']} labelled images "
        f"(chosen: {report['classifier']}, by balanced accuracy)",
        [
            tuple(row[key] for key in ("classifier", "accuracy", "balanced_accuracy", "log_loss", "brier", "seconds"))
            for row in report["cv"]
        ],
        ("classifier", "accuracy", "balanced accuracy", "log-loss", "Brier", "seconds"),
    )
    calibration = report["calibration_scores"]
    print_table(
        f"calibration of {report['classifier']} on the held-out folds (kept: {report['calibration']})",
        [(form, scores["log_loss"], scores["brier"]) for form, scores in calibration.items()],
        ("probabilities", "log-loss", "Brier"),
    )
    tables = placement_summary(report)
    confident, doubtful = report["heldout_accuracy_confident"], report["heldout_accuracy_doubtful"]
    print_table(
        f"placement per category (held-out accuracy {report['heldout_accuracy']}: {confident} where the probability "
        f"is at least {report['doubtful_below']}, {doubtful} below, where placements are marked doubtful)",
        tables["per_category"],
        ("category", "labelled", "held out", "held-out accuracy", "placed", "doubtful"),
    )
    print_table(
        "held-out confusion matrix (rows: labelled category, columns: predicted, numbered as the rows)",
        tables["confusion"],
        ("", *(str(number) for number in range(1, len(tables["confusion"]) + 1))),
    )


@tree_app.command("list")
def tree_list(as_json: AsJson = False, db: Db = None) -> None:
    """Every stored tree, newest first."""
    from semcurate.clustering.tree_catalogue import list_trees
    from semcurate.db.location import DatabaseOpenError

    try:
        trees = list_trees(db)
    except DatabaseOpenError as error:
        fail(str(error))
    show_records(
        "sub-category trees",
        trees,
        as_json=as_json,
        nothing_yet="no tree stored yet: run `semcurate tree build FEATURE_SET`",
    )


@tree_app.command("show")
def tree_show(
    node: Annotated[
        str | None, typer.Argument(help="Node path (Nanowires.2), name or id; default every category.")
    ] = None,
    depth: Annotated[
        int | None, typer.Option("--depth", min=0, help="Levels shown below the node; default all.")
    ] = None,
    tree_id: TreeId = None,
    store: TreeImageStore = None,
    as_json: AsJson = False,
    db: Db = None,
) -> None:
    """Print the tree indented, with sizes and the representative (medoid) image of every node."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id, store)
    try:
        if as_json:
            echo_json(tree.as_dict(node))
        else:
            typer.echo(tree.show(node, depth))
    except TreeError as error:
        fail(str(error))


@tree_app.command("images")
def tree_images(
    node: Annotated[str, typer.Argument(help="Node path (Nanowires.2), name or id.")],
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Print at most this many.")] = None,
    tree_id: TreeId = None,
    store: TreeImageStore = None,
    as_json: AsJson = False,
    db: Db = None,
) -> None:
    """Print the image files of a node, its representative first."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id, store)
    try:
        paths = [str(path) for path in tree.images(node, limit)]
    except TreeError as error:
        fail(str(error))
    if as_json:
        echo_json(paths)
        return
    for path in paths:
        typer.echo(path)


@tree_app.command("export")
def tree_export(
    fmt: Annotated[str, choice_option("--format", EXPORT_FORMAT, "json (nested nodes) or newick.")] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    tree_id: TreeId = None,
    db: Db = None,
) -> None:
    """Export the tree as JSON or Newick."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id)
    try:
        text = tree.export(fmt)
    except TreeError as error:
        fail(str(error))
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"tree {tree.id} written to {out} ({fmt})")


@tree_app.command("rename")
def tree_rename(
    node: Annotated[str, typer.Argument(help="Node path (Nanowires.2), current name or id.")],
    name: Annotated[str, typer.Argument(help="The new human name (empty to clear it).")],
    tree_id: TreeId = None,
    db: Db = None,
) -> None:
    """Give a node a human name; `tree show` and exports use it from then on."""
    from semcurate.clustering.browse import TreeError

    tree = open_tree(db, tree_id, read_only=False)
    try:
        renamed = tree.rename(node, name)
    except TreeError as error:
        fail(str(error))
    typer.echo(f"{renamed.path} is now {renamed.title!r}")
