"""Ingestion (thesis chapter 2): inventory, de-duplication, the flat store, labels and the scale of each image.

Cores (pure, over bytes, numpy arrays and PIL images): :mod:`~semcurate.ingest.formats`
(``detect_format``), :mod:`~semcurate.ingest.images` (``decode_image``),
:mod:`~semcurate.ingest.databar_geometry` (stripe, segment and text boxes of a
data bar), :mod:`~semcurate.ingest.length_text` (lengths and magnifications in
OCR text), :mod:`~semcurate.ingest.vendor_metadata` (Zeiss and FEI TIFF tags),
:mod:`~semcurate.ingest.scale_bar` (one image's scale: ``read_scale``),
:mod:`~semcurate.ingest.quality` (quality scores and flags: ``score_image``),
:mod:`~semcurate.ingest.near_duplicates` (copies of one acquisition).
Shells: :mod:`~semcurate.ingest.ingestion` (``semcurate ingest``),
:mod:`~semcurate.ingest.labels` (``semcurate labels``),
:mod:`~semcurate.ingest.scale_database` (``semcurate scale``, subsets),
:mod:`~semcurate.ingest.quality_database` (``semcurate quality``).

Every public name is importable from here and loaded on first use, so
``import semcurate.ingest`` stays cheap.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "databar_geometry": ["Segment", "Stripe", "find_segment", "find_stripe", "text_boxes"],
        "formats": ["detect_format"],
        "images": ["DecodedImage", "ImageProblem", "decode_image", "perceptual_hash"],
        "ingestion": ["IngestError", "Ingestion", "ingest"],
        "labels": ["LabelImportError", "category_distribution", "dataset_table", "import_labels"],
        "length_text": ["Length", "find_lengths", "parse_length", "parse_magnification"],
        "near_duplicates": ["ComparedImage", "candidate_pairs", "comparison_view", "match"],
        "ocr": ["OcrUnavailable", "get_engine"],
        "quality": ["UNUSABLE_PICTURE_FLAGS", "QualityScores", "score_image", "set_thresholds"],
        "quality_database": ["QualityError", "exclude_flagged", "flagged_images", "raised_flags", "score_images"],
        "scale_bar": ["ScaleReading", "read_scale", "read_scale_bytes"],
        "scale_database": ["ScaleError", "create_subset", "list_subsets", "read_scales"],
        "store": ["FlatStore", "StoreError"],
        "vendor_metadata": ["MetadataScale", "read_metadata_scale"],
        "walk": ["walk_tree"],
    },
)
