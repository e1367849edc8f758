"""Database: SQLAlchemy models, session handling and Alembic migrations.

The database is the interface between stages: every stage reads what the one
before it wrote and writes one new kind of thing.  Open it with
:func:`semcurate.db.open_database`, which brings the schema to the newest
Alembic revision before returning.
"""

from semcurate.db.models import (
    Base,
    Clustering,
    FeatureSet,
    File,
    Image,
    IngestRun,
    Label,
    LabelDataset,
    ScaleReading,
    Subset,
    SubsetMember,
    TreeMemberRow,
    TreeNodeRow,
    TreeRow,
)
from semcurate.db.session import DEFAULT_URL, database_url, open_database, upgrade

__all__ = [
    "Base",
    "Clustering",
    "DEFAULT_URL",
    "FeatureSet",
    "File",
    "Image",
    "IngestRun",
    "Label",
    "LabelDataset",
    "ScaleReading",
    "Subset",
    "SubsetMember",
    "TreeRow",
    "TreeMemberRow",
    "TreeNodeRow",
    "database_url",
    "open_database",
    "upgrade",
]
