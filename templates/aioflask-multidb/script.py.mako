<%
    from flask_migrate_alt.environment import database_names
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# Identifiers Alembic reads to place this file in the revision history.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade(engine_name: str) -> None:
    """Run the upgrade of one database: "" is the default, else a bind key."""
    # A bind added after this file was written has nothing to do here.
    globals().get(f"upgrade_{engine_name}", _nothing)()


def downgrade(engine_name: str) -> None:
    """Run the downgrade of one database: "" is the default, else a bind key."""
    globals().get(f"downgrade_{engine_name}", _nothing)()


def _nothing() -> None:
    pass
% for name in database_names():


def upgrade_${name}() -> None:
    ${context.get("%s_upgrades" % name, "pass")}


def downgrade_${name}() -> None:
    ${context.get("%s_downgrades" % name, "pass")}
% endfor
