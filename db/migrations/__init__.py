"""Alembic migration environment of the semcurate schema."""
