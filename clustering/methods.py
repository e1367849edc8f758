"""Names of the clustering stage's methods, criteria, rules and export formats, in one place.

This module imports nothing, so the command line can offer these names as
choices (``--help`` lists them, a wrong one is refused while parsing) without
loading numpy or scikit-learn; the cores import their lists from here.
"""

#: The agglomerative linkages of thesis §4.1 and average linkage (:func:`~semcurate.clustering.agglomerative.linkage`).
LINKAGE_METHODS = ("single", "centroid", "ward", "complete", "average")
#: Methods whose result is one merge tree per data set, cut at any k later: the linkages and Density Peaks' divisive
#: hierarchy (§4.2).
TREE_ALGORITHMS = (*LINKAGE_METHODS, "density-peaks")
#: Flat methods (:mod:`~semcurate.clustering.flat`): fitted once per k, except HDBSCAN and Louvain, which choose
#: their own k.
FLAT_METHODS = ("kmeans", "gmm", "hdbscan", "spectral", "louvain")
#: The flat methods that choose their own number of clusters (HDBSCAN's density levels, Louvain's modularity).
OWN_COUNT_METHODS = ("hdbscan", "louvain")
#: The flat methods that are told their number of clusters.
K_METHODS = ("kmeans", "gmm", "spectral")
#: Every method of ``semcurate cluster``, ``tree build`` and ``evaluate``: the trees first, then the flat methods.
METHODS = TREE_ALGORITHMS + FLAT_METHODS
#: Methods that can be asked for a given number of clusters (``semcurate n-clusters --method``).
N_CLUSTERS_ALGORITHMS = K_METHODS + TREE_ALGORITHMS
#: Criteria of :func:`~semcurate.clustering.n_clusters.estimate_n_clusters` (HyperSpy's names).
N_CLUSTERS_METHODS = ("elbow", "silhouette", "gap")
#: How :func:`~semcurate.clustering.splitting.split` decides a node's children. ``gap`` (its default) is the only rule
#: that also decides whether to split at all, against a uniform null; the others split every node down to the depth.
SPLIT_RULES = ("silhouette", "gap", "dendrogram-gap")
#: Least mean silhouette the gap rule's children must reach, all of them for a node to split and any two for both
#: to stay apart: the rule's effect-size floor (:mod:`semcurate.clustering.splitting` says why 0.15).
MIN_SILHOUETTE = 0.15
#: Least mean Jaccard similarity (Hennig 2007) a gap-rule child must keep with its best match when a random 80 %
#: of its node is clustered again; a child under it joins its nearest sibling (:mod:`semcurate.clustering.splitting`
#: says why 0.7).
MIN_STABILITY = 0.7
#: ``tree build --hierarchy``: least number of a node's images with a sub-category label before the labels may stop
#: it, and the least share of them that must name one sub-category
#: (:func:`~semcurate.clustering.splitting.stop_where_labels_agree`; the same two decide which sibling leaves
#: :func:`~semcurate.clustering.splitting.merge_agreeing_siblings` joins). On the 20,000-image demo store
#: (``bench/results/tree_truth_20000_demo.json``'s tree, labels simulated on a random 6.5 % of the images, the
#: Hierarchical set's share) 5, 10 and 15 labels at 80 % took the tree from 77 leaves for 36 to 52, 57 and 60 at
#: leaf NMI 0.913, 0.913 and 0.911 against 0.893; at 90 % 53, 58 and 63 leaves at 0.911, 0.911 and 0.908. With the
#: real Hierarchical labels (5 at 80 %): 56 leaves, leaf NMI 0.913.
MIN_AGREEING_LABELS = 5
AGREEING_SHARE = 0.8
#: Least z-score by which the within-cluster share of variance of Ward's k clusters of a node (k the gap rule's) must
#: lie under what Ward's k clusters of Gaussian rows with the node's own covariance reach; under it the node is a leaf
#: (:func:`~semcurate.clustering.splitting.gaussian_null_z`; :mod:`semcurate.clustering.splitting` says why 2.5).
MIN_NULL_Z = 2.5
#: ``tree build --category-block``: the block's spread within a category, as a multiple of the median standard
#: deviation of the category's own columns (:func:`~semcurate.clustering.splitting.with_category_block`). Chosen on
#: ``bench/categorisation.py``'s demo corpus seeds 0-2 only (the facet block, ``particle_facets``, after the
#: shipped projection and Louvain split): at 3 and 4 the every-category target held on 8 and 9 of their 9
#: (corpus seed, labelled draw) pairs, against 6 without the block (scratch runs of the same columns). Judged on seeds
#: 3-5, kept back: 5 of 9 against 2 on the demo, 3 of 9 against 5 on the independent textures
#: (``bench/results/categorisation_facets.json``). At 2 the textures met it on 17 of 18 pairs but the demo on 6
#: (``categorisation_facets_w2.json``); on the trees ``semcurate demo`` stored at 1,300 images (corpus seeds 0-2) 4
#: lost Patterned_surface (0.544) and Tips (0.182, "gaussian-like") where 2 did not, and over those trees and their
#: stratified draws the two are level (``tree_truth_1300_weights.json``), so it stays 4. With ``--community-weights``
#: 3 did better on those trees (:func:`~semcurate.clustering.splitting.community_weighted` says where it did not).
CATEGORY_BLOCK_WEIGHT = 4.0
#: Rows of a node, at most, on which the tree's rules decide (a random sample of larger nodes; fixed seed): the
#: gap's clusterings, the silhouettes, the stability subsamples, the medoid. A test's power grows with the rows it
#: sees, so this is the size at which a tree resolves structure. Split over the true categories of the 52,682-image
#: demo store (45,670 images in the tree; ``bench/tree_resolution.py``, seeds 0-2), samples of 500, 1,000 and 2,000
#: rows gave 42-49, 47-54 and 52-62 leaves for 36 at a mean leaf NMI of 0.886, 0.889 and 0.887, in 120, 190 and
#: 418 s (beside other jobs); at 500 Tips (3 sub-categories) was one leaf on one seed of three.
SAMPLE_ROWS = 1000
#: Linkages whose merge heights are monotone, so that the dendrogram-gap rule is meaningful.
MONOTONE_LINKAGES = ("ward", "complete", "average", "single")
#: Formats of :meth:`semcurate.Tree.export <semcurate.clustering.browse.Tree.export>`: nested JSON nodes or Newick.
TREE_EXPORT_FORMATS = ("json", "newick")
#: The five algorithms the thesis compares (§4.1, §4.2): what ``semcurate evaluate`` and the demo score by default.
THESIS_METHODS = ("ward", "centroid", "complete", "single", "density-peaks")
