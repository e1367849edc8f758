"""clusterings and trees

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 06:38:03.986375
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clusterings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feature_set', sa.String(length=128), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('subset', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('n_points', sa.Integer(), nullable=False),
    sa.Column('k_max', sa.Integer(), nullable=True),
    sa.Column('parameters', sa.Text(), nullable=False),
    sa.Column('store_path', sa.Text(), nullable=False),
    sa.Column('store_key', sa.String(length=64), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('clusterings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clusterings_feature_set'), ['feature_set'], unique=False)

    op.create_table('trees',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feature_set', sa.String(length=128), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('subset', sa.String(length=64), nullable=True),
    sa.Column('labels_dataset', sa.String(length=128), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('parameters', sa.Text(), nullable=False),
    sa.Column('n_images', sa.Integer(), nullable=False),
    sa.Column('n_labelled', sa.Integer(), nullable=False),
    sa.Column('classifier_accuracy', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('tree_nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tree_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=128), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('representative_md5', sa.String(length=32), nullable=True),
    sa.Column('mean_image', sa.LargeBinary(), nullable=True),
    sa.Column('split_rule', sa.String(length=32), nullable=True),
    sa.Column('split_scores', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['tree_nodes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tree_id'], ['trees.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tree_id', 'path')
    )
    with op.batch_alter_table('tree_nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tree_nodes_tree_id'), ['tree_id'], unique=False)

    op.create_table('tree_members',
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('image_md5', sa.String(length=32), nullable=False),
    sa.Column('assigned_by', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.ForeignKeyConstraint(['node_id'], ['tree_nodes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('node_id', 'image_md5')
    )
    with op.batch_alter_table('tree_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tree_members_image_md5'), ['image_md5'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tree_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tree_members_image_md5'))

    op.drop_table('tree_members')
    with op.batch_alter_table('tree_nodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tree_nodes_tree_id'))

    op.drop_table('tree_nodes')
    op.drop_table('trees')
    with op.batch_alter_table('clusterings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clusterings_feature_set'))

    op.drop_table('clusterings')
