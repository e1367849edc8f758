"""tree edits: images moved to another node or marked misplaced in the web browser

``semcurate serve --allow-edits`` lets an editor move an image from one node
of a tree to another, or mark it as misplaced (``to_node_id`` null); each
edit is one row, the newest per (tree, image) wins, and ``tree export``
honours them.  The stored clustering itself is never rewritten (issue 14).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 09:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tree_edits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tree_id', sa.Integer(), nullable=False),
    sa.Column('image_md5', sa.String(length=32), nullable=False),
    sa.Column('from_node_id', sa.Integer(), nullable=False),
    sa.Column('to_node_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tree_id'], ['trees.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_md5'], ['images.md5'], ),
    sa.ForeignKeyConstraint(['from_node_id'], ['tree_nodes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_node_id'], ['tree_nodes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tree_edits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tree_edits_tree_id'), ['tree_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tree_edits_image_md5'), ['image_md5'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tree_edits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tree_edits_image_md5'))
        batch_op.drop_index(batch_op.f('ix_tree_edits_tree_id'))

    op.drop_table('tree_edits')
