"""scale readings and subsets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 04:22:38.025339
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subsets',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('criteria', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('scale_readings',
    sa.Column('image_md5', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('unit', sa.String(length=4), nullable=True),
    sa.Column('bar_px', sa.Float(), nullable=True),
    sa.Column('nm_per_px', sa.Float(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=True),
    sa.Column('ocr_nm_per_px', sa.Float(), nullable=True),
    sa.Column('metadata_nm_per_px', sa.Float(), nullable=True),
    sa.Column('metadata_vendor', sa.String(length=8), nullable=True),
    sa.Column('disagreement', sa.Float(), nullable=True),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('stripe_x0', sa.Integer(), nullable=True),
    sa.Column('stripe_y0', sa.Integer(), nullable=True),
    sa.Column('stripe_x1', sa.Integer(), nullable=True),
    sa.Column('stripe_y1', sa.Integer(), nullable=True),
    sa.Column('label_text', sa.Text(), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reader_version', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.PrimaryKeyConstraint('image_md5')
    )
    with op.batch_alter_table('scale_readings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scale_readings_status'), ['status'], unique=False)
        batch_op.create_index('ix_scale_readings_value_unit', ['value', 'unit'], unique=False)

    op.create_table('subset_members',
    sa.Column('subset', sa.String(length=64), nullable=False),
    sa.Column('image_md5', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.ForeignKeyConstraint(['subset'], ['subsets.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subset', 'image_md5')
    )


def downgrade() -> None:
    op.drop_table('subset_members')
    with op.batch_alter_table('scale_readings', schema=None) as batch_op:
        batch_op.drop_index('ix_scale_readings_value_unit')
        batch_op.drop_index(batch_op.f('ix_scale_readings_status'))

    op.drop_table('scale_readings')
    op.drop_table('subsets')
