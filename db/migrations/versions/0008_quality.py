"""image quality scores and runs, near-duplicate signatures, outlier scores (issue 15)

``semcurate quality`` stores each image's raw quality scores and the flags of
the newest run, whose thresholds (set from the repository's score
distributions) are kept with it; ingest keeps a second perceptual hash per
image so that resized, re-compressed, cropped and bar-less copies are
grouped; ``semcurate outliers`` keeps kNN-distance and LOF scores per
feature set.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 16:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quality_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scorer_version', sa.String(length=16), nullable=False),
    sa.Column('n_images', sa.Integer(), nullable=False),
    sa.Column('thresholds', sa.Text(), nullable=False),
    sa.Column('config', sa.Text(), nullable=False),
    sa.Column('flag_counts', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('quality_scores',
    sa.Column('image_md5', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('picture_height', sa.Integer(), nullable=False),
    sa.Column('bar_included', sa.Boolean(), nullable=False),
    sa.Column('aspect', sa.Float(), nullable=False),
    sa.Column('sharpness', sa.Float(), nullable=True),
    sa.Column('spectral_sharpness', sa.Float(), nullable=True),
    sa.Column('brightness', sa.Float(), nullable=True),
    sa.Column('median_brightness', sa.Float(), nullable=True),
    sa.Column('clipped_low', sa.Float(), nullable=True),
    sa.Column('clipped_high', sa.Float(), nullable=True),
    sa.Column('dynamic_range', sa.Float(), nullable=True),
    sa.Column('entropy', sa.Float(), nullable=True),
    sa.Column('noise', sa.Float(), nullable=True),
    sa.Column('structure', sa.Float(), nullable=True),
    sa.Column('charging', sa.Float(), nullable=True),
    sa.Column('charging_rows', sa.Text(), nullable=True),
    sa.Column('colourfulness', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('flags', sa.Text(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('scorer_version', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.ForeignKeyConstraint(['run_id'], ['quality_runs.id'], ),
    sa.PrimaryKeyConstraint('image_md5')
    )
    op.create_table('image_signatures',
    sa.Column('image_md5', sa.String(length=32), nullable=False),
    sa.Column('top_phash', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.PrimaryKeyConstraint('image_md5')
    )
    with op.batch_alter_table('image_signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_signatures_top_phash'), ['top_phash'], unique=False)
    op.create_table('outlier_scores',
    sa.Column('feature_set', sa.String(length=128), nullable=False),
    sa.Column('image_md5', sa.String(length=32), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('knn_distance', sa.Float(), nullable=False),
    sa.Column('lof', sa.Float(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.PrimaryKeyConstraint('feature_set', 'image_md5')
    )
    with op.batch_alter_table('outlier_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outlier_scores_rank'), ['rank'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outlier_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outlier_scores_rank'))
    op.drop_table('outlier_scores')
    with op.batch_alter_table('image_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_image_signatures_top_phash'))
    op.drop_table('image_signatures')
    op.drop_table('quality_scores')
    op.drop_table('quality_runs')
