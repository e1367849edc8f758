"""Alembic environment: runs migrations online against the configured URL."""

from alembic import context
from sqlalchemy import Engine, event

from semcurate.db.models import Base
from semcurate.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def transactional_ddl(engine: Engine) -> None:
    """Run an SQLite migration in one real transaction, so that a failure (a full disk) leaves no half schema.

    Python's sqlite3 module commits on its own before every CREATE/ALTER;
    SQLAlchemy's documented remedy is to switch that off and emit BEGIN
    ourselves ("Serializable isolation / Savepoints / Transactional DDL" in
    its SQLite dialect notes).  Without it, a migration cut short leaves
    tables without their ``alembic_version`` row and every re-run fails with
    "table ... already exists".
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_commits(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN")


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    if engine.dialect.name == "sqlite":
        transactional_ddl(engine)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
