# Alembic settings for this Flask app's migration repository.
#
# The database URL is not set here: flask_migrate_alt takes the engines from
# the app (SQLALCHEMY_DATABASE_URI and SQLALCHEMY_BINDS).

[alembic]
# Name of new revision files; the default is %%(rev)s_%%(slug)s.
# file_template = %%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s

# Run env.py for 'flask db revision' without --autogenerate too.
# revision_environment = false


# Logging. The levels below are applied to loggers your app has not set up
# itself; when the app configures no logging at all, the records are written
# to stderr in the 'generic' format. The app's own logging setup is never
# replaced.
[loggers]
keys = root,sqlalchemy,alembic,alembic_plugins,flask_migrate_alt

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

# Alembic announces each autogenerate plugin at INFO; that is noise here.
[logger_alembic_plugins]
level = WARNING
handlers =
qualname = alembic.runtime.plugins

[logger_flask_migrate_alt]
level = INFO
handlers =
qualname = flask_migrate_alt

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
