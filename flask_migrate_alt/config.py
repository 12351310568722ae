"""The one place a ``Config`` and a ``ScriptDirectory`` are built.

Every command, helper and tool gets its Config from :func:`app_config`
(through ``Migrate.get_config``, so that subclasses overriding it and
``@migrate.configure`` callbacks are honoured) and its ScriptDirectory from
:func:`script_directory`.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from alembic.config import Config as AlembicConfig

from . import speedups
from .paths import (
    in_process_environment,
    resource_path,
    template_root,
    version_folders,
)
from .state import current_state, repository

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

__all__ = [
    "Config",
    "app_config",
    "apply_app_options",
    "build_config",
    "flask_alembic_config",
    "in_process_config",
    "revisions_between",
    "script_directory",
]


def _separator_option() -> str:
    """The ``alembic.ini`` option that says how ``version_locations`` is split.

    Alembic 1.16 renamed ``version_path_separator`` to ``path_separator`` and
    warns about the old name; before 1.16 only the old name is read, and a
    list joined with ``os.pathsep`` would be taken as one folder.
    """
    from alembic import __version__

    release = tuple(int(part) for part in __version__.split(".")[:2])
    return "path_separator" if release >= (1, 16) else "version_path_separator"


#: The option :func:`build_config` and ``app.config["ALEMBIC"]`` lists set.
SEPARATOR_OPTION = _separator_option()


_ALEMBIC_DEFAULT_STDOUT = (
    inspect.signature(AlembicConfig.__init__).parameters["stdout"].default
)


class Config(AlembicConfig):
    """An Alembic ``Config`` that finds the flask_migrate_alt templates.

    :param template_directory: where ``init`` looks for templates; by
        default the templates shipped with this package.
    """

    def __init__(
        self, *args: Any, template_directory: str | None = None, **kwargs: Any
    ) -> None:
        self.template_directory = template_directory
        self._stdout: TextIO | None = None
        super().__init__(*args, **kwargs)
        if self._stdout is _ALEMBIC_DEFAULT_STDOUT:
            # Forget the import-time default Alembic's __init__ assigned; the
            # property below then follows sys.stdout.
            self._stdout = None

    # Alembic's default for ``stdout`` is the sys.stdout of the moment Alembic
    # was imported, so output would miss a later redirection (CliRunner,
    # pytest's capsys, contextlib.redirect_stdout). Unless a stream was given,
    # print to whatever sys.stdout is when the command prints.
    @property
    def stdout(self) -> TextIO:
        return self._stdout if self._stdout is not None else sys.stdout

    @stdout.setter
    def stdout(self, value: TextIO | None) -> None:
        self._stdout = value

    def get_template_directory(self) -> str:
        if self.template_directory:
            return self.template_directory
        return str(template_root())


def build_config(
    directory: str,
    *,
    x_arg: str | Iterable[str] | None = None,
    opts: Iterable[str] | None = None,
) -> Config:
    """Return a ``Config`` for the migration repository in ``directory``.

    ``cmd_opts`` is always set, as the ``alembic`` command line would set
    it, because env.py files read ``config.cmd_opts.autogenerate`` and
    ``context.get_x_argument()`` reads ``config.cmd_opts.x``.
    """
    config = Config(os.path.join(directory, "alembic.ini"))
    # Config values are %-interpolated; a literal % in a path must be doubled.
    config.set_main_option("script_location", directory.replace("%", "%%"))
    _set_command_options(config, x_arg, opts)
    _find_branch_folders(config, directory)
    return config


def _set_command_options(
    config: Config, x_arg: str | Iterable[str] | None, opts: Iterable[str] | None
) -> None:
    """Set ``cmd_opts`` as the ``alembic`` command line would."""
    cmd_opts = argparse.Namespace()
    for name in opts or ():
        setattr(cmd_opts, name, True)
    if x_arg is None:
        cmd_opts.x = []
    elif isinstance(x_arg, str):
        cmd_opts.x = [x_arg]
    else:
        cmd_opts.x = list(x_arg)
    config.cmd_opts = cmd_opts


def flask_alembic_config(
    root_path: str, options: Mapping[str, Any], *, databases: Iterable[str] = ()
) -> Config:
    """The ``Config`` of a Flask-Alembic repository, from ``app.config["ALEMBIC"]``.

    As Flask-Alembic builds it, with no ``alembic.ini``: ``script_location``
    (default ``migrations``) and each ``version_locations`` entry (a path,
    or a ``(branch, path)`` pair) are taken from the app's ``root_path``
    unless absolute or a package resource; the repository folder itself is
    the first version location; the other keys are ``[alembic]`` options
    (dicts become sections). ``databases`` are the names of several
    databases, for the multiple-database ``script.py.mako``.
    """
    location = str(options.get("script_location", "migrations"))
    locations = [location if ":" in location else resource_path(location, root_path)]
    for item in options.get("version_locations") or ():
        path = os.fspath(item if isinstance(item, (str, os.PathLike)) else item[-1])
        locations.append(path if ":" in path else resource_path(path, root_path))
    config = Config()
    config.set_main_option("script_location", _ini(locations[0]))
    config.set_main_option(SEPARATOR_OPTION, "os")
    config.set_main_option(
        "version_locations",
        os.pathsep.join(_ini(item) for item in dict.fromkeys(locations)),
    )
    apply_app_options(
        config,
        {
            key: value
            for key, value in options.items()
            if key not in ("script_location", "version_locations")
        },
    )
    names = list(databases)
    if len(names) > 1:
        config.set_main_option("databases", ", ".join(names))
    return config


def in_process_config(
    config: AlembicConfig,
    repository: str,
    *,
    x_arg: str | Iterable[str] | None = None,
    opts: Iterable[str] | None = None,
) -> Config:
    """A copy of ``config`` that Alembic's commands can run without an ``env.py``.

    Alembic loads ``env.py`` and ``script.py.mako`` from ``script_location``.
    The copy points there to the package's stand-in environment (see
    :func:`~flask_migrate_alt.paths.in_process_environment`), whose env.py
    runs the repository through :mod:`.environment` and whose template
    renders the repository's own ``script.py.mako``. The revisions are still
    found in the version locations, which include ``repository``.
    """
    copy = Config()
    parser = config.file_config
    defaults = parser.defaults()
    for section in parser.sections():
        for key, value in parser.items(section, raw=True):
            if key not in defaults:
                copy.set_section_option(section, key, value)
    copy.attributes.update(config.attributes)
    copy.set_main_option("script_location", _ini(str(in_process_environment())))
    copy.set_section_option(
        "flask_migrate_alt",
        "script_template",
        _ini(os.path.join(repository, "script.py.mako")),
    )
    _set_command_options(copy, x_arg, opts)
    return copy


def _find_branch_folders(config: Config, directory: str) -> None:
    """Make the folders of named branches (``versions/<branch>/``) version locations.

    Alembic only finds revisions in its version locations, and puts a new
    revision in a folder only if that folder is one. Unless ``alembic.ini``
    lists its own ``version_locations`` or reads them recursively
    (``recursive_version_locations``), every folder below ``versions/`` is
    added to the default one, so that creating a branch needs no editing.
    """
    if config.get_main_option("version_locations") is not None:
        return
    recursive = config.get_main_option("recursive_version_locations", "false")
    if recursive.strip().lower() in ("true", "yes", "on", "1", "t", "y"):
        return  # Alembic reads the subfolders itself (twice, if added here)
    folders = version_folders(directory)
    if len(folders) > 1:
        config.set_main_option(SEPARATOR_OPTION, "os")
        config.set_main_option(
            "version_locations",
            os.pathsep.join(str(path).replace("%", "%%") for path in folders),
        )


def apply_app_options(config: Config, options: Mapping[str, Any]) -> None:
    """Apply ``app.config["ALEMBIC"]`` to ``config``.

    Values override ``alembic.ini``. A dict becomes an ini section (for
    example ``post_write_hooks``); a list or tuple (``version_locations``)
    is joined with the operating system's path separator; anything else is
    set as a main option.
    """
    for key, value in options.items():
        if key == "script_location":
            continue  # chooses the directory, see Migrate.init_app()
        if key == "version_locations":
            _add_version_locations(config, value)
        elif isinstance(value, Mapping):
            for option, item in value.items():
                config.set_section_option(key, option, _ini(item))
        elif isinstance(value, (list, tuple)):
            config.set_main_option(SEPARATOR_OPTION, "os")
            config.set_main_option(key, os.pathsep.join(_ini(item) for item in value))
        else:
            config.set_main_option(key, _ini(value))


_SEPARATORS = {"os": os.pathsep, "space": " ", "newline": "\n", ";": ";", ":": ":"}


def _add_version_locations(config: Config, value: Any) -> None:
    """Add folders to the version locations instead of replacing them.

    The repository's own ``versions/`` folder (and its branch folders) stay
    locations, as in Flask-Alembic; its ``(name, path)`` pairs are accepted
    and the name is ignored.
    """
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    extra = [
        os.fspath(item[-1] if isinstance(item, (list, tuple)) else item)
        for item in items
    ]
    current = config.get_main_option("version_locations")
    if current is None:
        script_location = config.get_main_option("script_location") or "."
        existing = [os.path.join(script_location, "versions")]
    else:
        separator = _SEPARATORS.get(config.get_main_option(SEPARATOR_OPTION) or "")
        if separator is None:  # Alembic's legacy splitting
            existing = current.replace(",", " ").split()
        else:
            existing = [part for part in current.split(separator) if part]
    unique: dict[str, str] = {}
    for item in [*existing, *extra]:
        unique.setdefault(os.path.abspath(item), item)
    config.set_main_option(SEPARATOR_OPTION, "os")
    config.set_main_option(
        "version_locations", os.pathsep.join(_ini(item) for item in unique.values())
    )


def _ini(value: Any) -> str:
    """Write ``value`` for Alembic's %-interpolated config.

    A value that already doubles its ``%`` (as alembic.ini and Flask-Alembic
    need, ``"%%(rev)s"``) is taken as written; otherwise every ``%`` is
    doubled so that ``"%(rev)s"`` works too.
    """
    text = str(os.fspath(value) if isinstance(value, os.PathLike) else value)
    return text if "%%" in text else text.replace("%", "%%")


def app_config(
    directory: str | os.PathLike[str] | None = None,
    *,
    x_arg: str | Iterable[str] | None = None,
    opts: Iterable[str] | None = None,
) -> Config:
    """The Config for ``directory`` (default: the app's) in the current app.

    :raises FileNotFoundError: the repository does not exist.
    """
    path = repository(directory)
    x = x_arg if x_arg is None or isinstance(x_arg, str) else list(x_arg)
    return current_state().migrate.get_config(
        path, x_arg=x, opts=None if opts is None else list(opts)
    )


def script_directory(config: AlembicConfig) -> ScriptDirectory:
    """The repository's revisions, as Alembic's ``ScriptDirectory`` reads them.

    Built by :mod:`.speedups` when they are on (the same answers, with
    revision files imported only when their code runs), else by Alembic.
    """
    found = speedups.script_directory(config)
    if found is not None:
        return found
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config)


def revisions_between(
    script: ScriptDirectory, was: Any, now: Any, *, up: bool
) -> list[str]:
    """The revisions Alembic runs to move a database from ``was`` to ``now``.

    In the order they run: those between the lower and the higher state, as
    Alembic's upgrade and downgrade walk them from the top (an upgrade runs
    them bottom up, a downgrade top down). ``was`` and ``now`` are what
    ``iterate_revisions`` accepts: a version table's heads, ``"heads"``, a
    revision.

    :raises alembic.script.revision.RevisionError: a state does not fit the
        history.
    """
    upper, lower = (now, was) if up else (was, now)
    walked = list(script.iterate_revisions(upper, lower, implicit_base=True))
    return [sc.revision for sc in (walked[::-1] if up else walked) if sc is not None]
