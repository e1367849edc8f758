"""Names of the feature stage's extractors, fine-tuning modes and reduction methods, in one place.

This module imports nothing, so the command line can offer these names as
choices (``--help`` lists them, a wrong one is refused while parsing) without
loading numpy, scikit-learn or TensorFlow.
"""

#: Extractors of :func:`~semcurate.features.extract.create_extractor`: the weight-free descriptor, the same with its
#: blob block (particle sizes and agglomeration), with its blob and particle-shape blocks, weight-free wavelet
#: scattering (over the squares that cover the image, or on its centre square) and Inception-V3.
EXTRACTORS = ("classic", "classic_blobs", "classic_particles", "scattering", "scattering_centre", "inception_v3")
#: Training modes of :func:`~semcurate.features.finetune.finetune` (thesis §3.1): a new head on a frozen base, or
#: every layer.
FINETUNE_MODES = ("transfer", "finetune")
#: Reductions of :func:`~semcurate.features.analysis.reduce_feature_set`: the tied autoencoder (§3.2), PCA, or the
#: projection onto the directions acquisition moves least (:mod:`~semcurate.features.invariance`).
REDUCE_METHODS = ("ae", "pca", "invariant")
#: Images the ``invariant`` reduction re-acquires once each by default. In a study recorded in issue 13's note, 600
#: split the demo's 1,296 specimens as well as all of them did, and 300 worse.
VARIANT_IMAGES = 600
#: Preprocessing of the rows before clustering, PCA or a similarity search (HyperSpy's ``cluster_analysis`` names):
#: ``standard`` (each column to zero mean and unit variance: the default, so that a few high-variance columns do
#: not decide every distance), ``norm`` (each row to unit length), ``minmax`` (each column to [0, 1]) or ``none``.
PREPROCESSING = ("standard", "norm", "minmax", "none")
