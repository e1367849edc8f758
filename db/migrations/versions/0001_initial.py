"""initial schema: files, images, ingest runs, labels

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 03:46:05.516744
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('images',
    sa.Column('md5', sa.String(length=32), nullable=False),
    sa.Column('source_format', sa.String(length=8), nullable=False),
    sa.Column('jpg_md5', sa.String(length=32), nullable=False),
    sa.Column('jpg_only', sa.Boolean(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('phash', sa.String(length=16), nullable=False),
    sa.Column('near_duplicate_group', sa.String(length=32), nullable=True),
    sa.Column('conversion_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('md5'),
    sa.UniqueConstraint('jpg_md5')
    )
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_images_near_duplicate_group'), ['near_duplicate_group'], unique=False)
        batch_op.create_index(batch_op.f('ix_images_phash'), ['phash'], unique=False)

    op.create_table('ingest_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_root', sa.Text(), nullable=False),
    sa.Column('store', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('summary_json', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('label_datasets',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('directory', sa.Text(), nullable=False),
    sa.Column('n_files', sa.Integer(), nullable=False),
    sa.Column('n_unique', sa.Integer(), nullable=False),
    sa.Column('n_matched', sa.Integer(), nullable=False),
    sa.Column('n_matched_reencoded', sa.Integer(), nullable=False),
    sa.Column('n_unmatched', sa.Integer(), nullable=False),
    sa.Column('n_conflicting', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_root', sa.Text(), nullable=False),
    sa.Column('relpath', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=True),
    sa.Column('extension', sa.String(length=16), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('relation', sa.String(length=24), nullable=True),
    sa.Column('image_md5', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_root', 'relpath', name='uq_files_path')
    )
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_files_format'), ['format'], unique=False)
        batch_op.create_index(batch_op.f('ix_files_image_md5'), ['image_md5'], unique=False)
        batch_op.create_index(batch_op.f('ix_files_md5'), ['md5'], unique=False)
        batch_op.create_index(batch_op.f('ix_files_status'), ['status'], unique=False)

    op.create_table('labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('relpath', sa.Text(), nullable=False),
    sa.Column('file_md5', sa.String(length=32), nullable=False),
    sa.Column('category_path', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('image_md5', sa.String(length=32), nullable=True),
    sa.Column('match', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['dataset'], ['label_datasets.name'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset', 'relpath', name='uq_labels_dataset_relpath')
    )
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labels_category'), ['category'], unique=False)
        batch_op.create_index('ix_labels_dataset_image', ['dataset', 'image_md5'], unique=False)
        batch_op.create_index(batch_op.f('ix_labels_image_md5'), ['image_md5'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_labels_image_md5'))
        batch_op.drop_index('ix_labels_dataset_image')
        batch_op.drop_index(batch_op.f('ix_labels_category'))

    op.drop_table('labels')
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_files_status'))
        batch_op.drop_index(batch_op.f('ix_files_md5'))
        batch_op.drop_index(batch_op.f('ix_files_image_md5'))
        batch_op.drop_index(batch_op.f('ix_files_format'))

    op.drop_table('files')
    op.drop_table('label_datasets')
    op.drop_table('ingest_runs')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_phash'))
        batch_op.drop_index(batch_op.f('ix_images_near_duplicate_group'))

    op.drop_table('images')
