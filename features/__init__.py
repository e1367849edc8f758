"""Feature learning (thesis chapter 3): CNN activations, 2-NN intrinsic dimension, autoencoder codes.

Cores: :mod:`~semcurate.features.classic` (``ClassicDescriptor``, the
weight-free descriptor), :mod:`~semcurate.features.particles` (the shapes of
the particles in an image), :mod:`~semcurate.features.scattering`
(``ScatteringExtractor``, weight-free wavelet scattering),
:mod:`~semcurate.features.contrastive` (``ContrastiveExtractor``, a small CNN
trained on unlabelled images), :mod:`~semcurate.features.inception`
(``InceptionV3Extractor``), :mod:`~semcurate.features.intrinsic_dimension`
(``TwoNN``, the sample-size scan, the suggested code size),
:mod:`~semcurate.features.autoencoder` (``TiedAutoencoder``, the §3.2.4 grid
search), :mod:`~semcurate.features.invariance` (``NuisanceProjection``, the
directions acquisition moves least), :mod:`~semcurate.features.distances`
(heatmaps against the label distance).  Shells: :mod:`~semcurate.features.store` (HDF5 rows keyed by image
md5), :mod:`~semcurate.features.extract` (``semcurate features extract``),
:mod:`~semcurate.features.analysis` (``id``, ``reduce``, ``distances``),
:mod:`~semcurate.features.finetune` (``semcurate finetune``).

Every public name is importable from here and loaded on first use, so
``import semcurate.features`` loads neither TensorFlow nor scikit-learn.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "autoencoder": ["TiedAutoencoder", "grid_search"],
        "classic": ["ClassicDescriptor"],
        "contrastive": ["ContrastiveExtractor"],
        "distances": ["correlation_index", "discrete_distance", "heatmaps"],
        "extract": ["ExtractionError", "create_extractor", "features_of_file"],
        "inception": ["InceptionV3Extractor", "WeightsUnavailable"],
        "particles": ["facet_statistics", "particle_measures", "particle_statistics"],
        "intrinsic_dimension": ["TwoNN", "id_scan", "suggest_code_size"],
        "invariance": ["NuisanceProjection", "acquisition_variant", "shrunk_for_variant"],
        "preprocessing": ["preprocess"],
        "scattering": ["ScatteringExtractor"],
        "store": ["FeatureStore", "FeatureStoreBusy", "FeatureStoreError", "FeatureStoreFull"],
    },
)
