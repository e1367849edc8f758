"""Names of the ingest stage's choices, in one place.

This module imports nothing, so the command line can offer these names as
choices (``--help`` lists them, a wrong one is refused while parsing) without
loading the readers.
"""

#: Where :func:`~semcurate.ingest.scale_bar.read_scale` takes an image's scale from: ``auto`` (the data bar and the
#: vendor metadata, compared), ``ocr`` (the data bar only) or ``metadata`` (the TIFF tags only).
SCALE_SOURCES = ("auto", "ocr", "metadata")
