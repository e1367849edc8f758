"""feature sets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:52:33.926516
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feature_sets',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('extractor', sa.String(length=64), nullable=False),
    sa.Column('weights', sa.Text(), nullable=False),
    sa.Column('weights_digest', sa.String(length=64), nullable=False),
    sa.Column('layer', sa.String(length=64), nullable=False),
    sa.Column('dimension', sa.Integer(), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('store_path', sa.Text(), nullable=False),
    sa.Column('parent', sa.String(length=128), nullable=True),
    sa.Column('parameters', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('feature_sets')
