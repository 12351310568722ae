"""Alembic environment: several databases (SQLALCHEMY_BINDS).

Alembic runs this file inside the app context set up by 'flask db' or by the
flask_migrate_alt functions; the engines and models come from the app. The
work is done by flask_migrate_alt.environment, so upgrading the package
improves this file too. To customise, pass keyword arguments of Alembic's
context.configure() to the run_* calls below (for example include_object=...,
version_table=..., or target_metadata=...), or replace them with your own code.
"""

from alembic import context

from flask_migrate_alt import environment

environment.setup_logging(context.config)


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (--sql)."""
    environment.run_offline(context, multidb=True)


def run_migrations_online() -> None:
    """Run the migrations on the app's databases; commit only if all succeed."""
    environment.run_online(context, multidb=True)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
