"""placement probabilities, placement report, why each tree node stopped

Unlabelled images are placed in a category by a classifier chosen by
cross-validation and calibrated (issue 13, point 2): each tree member keeps
the probability of its category and whether it is doubtful, and each tree
keeps the JSON report of the placement.  Each tree node keeps why it was not
split further (``stop``) and the numbers that decided it (``note``; issue 13,
point 3).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trees', schema=None) as batch_op:
        batch_op.add_column(sa.Column('placement', sa.Text(), nullable=True))
    with op.batch_alter_table('tree_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('probability', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('doubtful', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('tree_nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stop', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tree_nodes', schema=None) as batch_op:
        batch_op.drop_column('note')
        batch_op.drop_column('stop')
    with op.batch_alter_table('tree_members', schema=None) as batch_op:
        batch_op.drop_column('doubtful')
        batch_op.drop_column('probability')
    with op.batch_alter_table('trees', schema=None) as batch_op:
        batch_op.drop_column('placement')
