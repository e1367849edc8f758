"""The researchers' and admins' web browser (``semcurate serve``): the tree, node galleries, image pages, search,
admin, and similar-image search (``semcurate similar``).

Cores: :mod:`~semcurate.web.similar` (``SimilarIndex``, exact k-nearest
neighbours over standardised feature rows) and
:mod:`~semcurate.web.thumbnails` (``thumbnail_bytes`` and the atomic
``thumbs/<md5>.webp`` cache).  Shell: :mod:`~semcurate.web.browser` (the
pages as dictionaries, read from the database and the stores).  App:
:mod:`~semcurate.web.app` (``create_app``: FastAPI, Jinja2 templates, our own
static assets).

Every public name is importable from here and loaded on first use, so
``import semcurate.web`` loads neither FastAPI nor numpy.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "app": ["create_app"],
        "browser": ["Browser"],
        "similar": ["SimilarIndex"],
        "thumbnails": ["ThumbnailCache", "thumbnail_bytes"],
    },
)
