from alembic import context

import db.all_models  # noqa: F401  (every model module registers its tables on Base.metadata)
from db.engine import make_engine
from db.models import Base, include_in_schema_comparison

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata, render_as_batch=True,
                          include_name=include_in_schema_comparison)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          include_name=include_in_schema_comparison)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
