"""Database: SQLAlchemy models, session handling and Alembic migrations.

The database is the interface between stages: every stage reads what the one
before it wrote and writes one new kind of thing.  Open it with
:func:`semcurate.db.open_database`, which brings the schema to the newest
Alembic revision before returning.  Every public name is importable from
here and loaded on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "models": [
            "Base",
            "Clustering",
            "FeatureSet",
            "File",
            "Image",
            "IngestRun",
            "Label",
            "LabelDataset",
            "ScaleReading",
            "Subset",
            "SubsetMember",
            "TreeMemberRow",
            "TreeNodeRow",
            "TreeRow",
        ],
        "location": ["DEFAULT_URL", "DatabaseOpenError", "database_url"],
        "quick_read": ["as_datetime", "select_rows"],
        "session": ["open_database", "upgrade"],
    },
)
