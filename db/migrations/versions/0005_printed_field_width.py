"""printed field width on scale readings

The field width printed on the data bar (Zeiss "Width =", Thermo/FEI "HFW",
Tescan "View field") is a third, independent reading of an image's scale
(issue 12): stored next to the bar's and the metadata's pixel sizes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scale_readings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('field_nm', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('field_nm_per_px', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scale_readings', schema=None) as batch_op:
        batch_op.drop_column('field_nm_per_px')
        batch_op.drop_column('field_nm')
