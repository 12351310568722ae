"""Stands in for the env.py that Flask-Alembic's repositories do not have.

flask_migrate_alt's Alembic extension points Alembic's script_location here
and lists the repository's own folders as version locations; Alembic loads
this file for every command that needs the database, inside the app context
the extension set up. It is not a template: nothing copies it.
"""

from alembic import context

from flask_migrate_alt import environment

environment.run_repository(context)
