"""The configuration model: one table of options, read from the command line, the environment and a file.

Each ``Option`` says once what an option is (its name, how a value is read
and checked, its default, its help and its group); from the table come the
``argparse`` parser (``--NAME``), the environment variables
(``EVLOOP_NAME``, dashes as underscores), the keys of a TOML file
(``--config FILE``, ``NAME = value``) and ``--print-config``.  A value comes
from the first of: the command line, the environment, the file, the default.
Every value goes through the same ``parse`` and ``check`` whatever its
source, so an error names where the value came from (``--port``,
``EVLOOP_PORT``, ``evloop.toml: port``) and says what would be accepted;
``load`` reports every error at once, and the caller exits with status 2
(``argparse``'s convention for usage errors).

Adding an option is one ``Option`` in ``evloop.options``; it reaches
``ServerConfig`` through ``field`` (``"header_timeout_s"``, or
``"limits.max_body_bytes"`` for a parser limit), or the caller reads it by
name from ``Settings``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "Option", "Settings", "UsageError", "load", "build_parser", "render_settings", "env_name",
    "integer", "seconds", "text", "boolean", "octal_mode", "choice",
    "port_number", "positive", "off_or_positive", "at_least_one",
]

ENV_PREFIX = "EVLOOP_"


class UsageError(ValueError):
    """Values that cannot be used; ``str()`` lists each problem on its own line."""


# ------------------------------------------------------------- reading values
# A parser takes a value as the command line or the environment gives it (a
# str) or as TOML does (int, float, bool, str) and returns it typed, or
# raises ValueError saying what it wanted.

def integer(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        text_ = raw.strip().replace("_", "")
        if text_.lstrip("+-").isdigit() and text_.isascii():
            return int(text_)
    raise ValueError(f"expected a whole number, got {raw!r}")


def seconds(raw: Any) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        try:
            value = float(raw)
        except OverflowError:  # an int too large for a float (TOML integers are unbounded)
            raise ValueError(f"expected a finite number of seconds, got {raw!r}") from None
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {raw!r}") from None
    else:
        raise ValueError(f"expected a number of seconds, got {raw!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number of seconds, got {raw!r}")
    return value


def text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    raise ValueError(f"expected a string, got {raw!r}")


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {raw!r}")


def octal_mode(raw: Any) -> int:
    """File permissions: ``"0660"``, ``"660"`` or ``"0o660"`` (a TOML integer is taken as it is: write ``0o660``)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip():
        digits = raw.strip().lower().removeprefix("0o")
        if not (set(digits) <= set("01234567")):
            raise ValueError(f"expected octal permissions such as 0660, got {raw!r}")
        value = int(digits, 8)
    else:
        raise ValueError(f"expected octal permissions such as 0660, got {raw!r}")
    if not 0 <= value <= 0o777:
        raise ValueError(f"expected permissions between 0000 and 0777, got {raw!r}")
    return value


def choice(*choices: str) -> Callable[[Any], str]:
    """A parser accepting one of ``choices``, in any case."""
    def parse(raw: Any) -> str:
        value = text(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value
    parse.__name__ = "choice"
    return parse


# ------------------------------------------------------------------ checks
# A check returns None for a good value, else what is wrong with it.

def port_number(value: int) -> str | None:
    return None if 0 <= value <= 65535 else f"must be a port number, 0-65535 (0: any free port), got {value}"


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be above 0, got {value}"


def off_or_positive(value: float) -> str | None:
    return None if value >= 0 else f"must be 0 (off) or above, got {value}"


def at_least_one(value: int) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value}"


# ---------------------------------------------------------------- the table
@dataclasses.dataclass(frozen=True)
class Option:
    """One option of the table (see the module docstring).

    ``name``: ``--NAME``, ``EVLOOP_NAME`` and the TOML key.  ``parse`` reads
    one value (``repeatable`` options: each of a list; the command line
    takes the option again, the environment separates values with spaces,
    TOML takes a list); ``check`` validates the parsed value.  ``flag``: a
    switch, ``--NAME``/``--no-NAME`` on the command line (``flag_value``: a
    switch that may also take a value, ``--NAME [VALUE]``).  ``off_flag``: a
    switch that sets the value to ``off_value`` (``--no-server-header``).
    ``show`` writes a value for ``--print-config`` (TOML; ``0o660`` for
    permissions).  ``default_text`` replaces the default in the help (for None, or a
    default computed elsewhere).  ``field``: the ``ServerConfig`` field the
    value sets (``"limits.NAME"``: a ``Limits`` field), None when the caller
    uses it itself.  ``cli_only``: not read from the environment or a file
    (``--print-config``).  ``secret``: hidden by ``--print-config``.
    """

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    group: str
    check: Callable[[Any], str | None] | None = None
    metavar: str | None = None
    repeatable: bool = False
    flag: bool = False
    flag_value: bool = False
    off_flag: str | None = None
    off_value: Any = None
    off_help: str | None = None
    show: Callable[[Any], str] | None = None  # the value in --print-config (TOML), when repr/JSON will not do
    default_text: str | None = None
    field: str | None = None
    cli_only: bool = False
    secret: bool = False
    env_aliases: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return env_name(self.name)

    def read(self, raw: Any) -> Any:
        """``raw`` parsed and checked; ValueError saying what is wrong."""
        if self.repeatable:
            if isinstance(raw, str):
                raw = raw.split()
            if not isinstance(raw, list):
                raise ValueError(f"expected a list, got {raw!r}")
            return [self._read_one(item) for item in raw]
        return self._read_one(raw)

    def _read_one(self, raw: Any) -> Any:
        value = self.parse(raw)
        if self.check is not None and value is not None:
            problem = self.check(value)
            if problem is not None:
                raise ValueError(problem)
        return value


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper().replace("-", "_")


# --------------------------------------------------------------- settings
class Settings(argparse.Namespace):
    """The effective values, as attributes named as ``Option.dest``; ``source_of[dest]`` says where each came from.

    A source is ``"command line"``, ``"environment EVLOOP_NAME"``, ``"file PATH"`` or ``"default"``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.source_of: dict[str, str] = {}

    def given(self, dest: str) -> bool:
        """Whether the value was set somewhere (not the default)."""
        return self.source_of.get(dest, "default") != "default"


def build_parser(options: Sequence[Option], prog: str, description: str, epilog: str = "",
                 version: str | None = None, group_help: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command line of ``options``, grouped by ``Option.group`` in the table's order.

    It parses only the command line: an option left out is absent from the
    namespace (every default is ``SUPPRESS``), so that ``load`` can tell it
    from one given with the default's value.
    """
    parser = argparse.ArgumentParser(
        prog=prog, usage="%(prog)s [OPTIONS]", description=description, epilog=epilog,
        argument_default=argparse.SUPPRESS,
        formatter_class=_HelpFormatter,
    )
    if version is not None:
        parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {version}",
                            help="print the version and exit")
    groups: dict[str, Any] = {}
    for option in options:
        group = groups.get(option.group)
        if group is None:
            about = (group_help or {}).get(option.group)
            group = groups[option.group] = parser.add_argument_group(
                option.group, textwrap.fill(about, 78) if about else None)
        help_ = f"{option.help} (default: {_default_text(option)})"
        flag = f"--{option.name}"
        if option.flag and option.cli_only:
            group.add_argument(flag, action="store_true", help=option.help)
        elif option.flag and option.flag_value:
            group.add_argument(flag, nargs="?", const=True, metavar=option.metavar, help=help_)
            group.add_argument(f"--no-{option.name}", dest=option.dest, action="store_false",
                               help=f"the opposite of {flag}")
        elif option.flag:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_, default=argparse.SUPPRESS)
        elif option.repeatable:
            group.add_argument(flag, action="append", metavar=option.metavar, help=help_ + "; repeatable")
        else:
            group.add_argument(flag, metavar=option.metavar or option.dest.upper(), help=help_)
        if option.off_flag is not None:
            group.add_argument(option.off_flag, dest=option.dest, action="store_const", const=_Off(),
                               help=option.off_help)
    return parser


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Option names in a narrower column than argparse's default 24, so the help stays readable at 80 columns."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class _Off:
    """What an ``off_flag`` stores: replaced by the option's ``off_value`` in ``load``."""


def _default_text(option: Option) -> str:
    if option.default_text is not None:
        return option.default_text
    if option.flag:
        return "on" if option.default else "off"
    if option.default is None or option.default == []:
        return "none"
    if isinstance(option.default, float) and option.default.is_integer():
        return f"{option.default:g}"
    return str(option.default).replace("%", "%%")


def load(
    options: Sequence[Option],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    environ: Mapping[str, str] | None = None,
    *,
    config_option: str = "config",
) -> tuple[Settings, list[str]]:
    """The settings from the command line ``argv``, ``environ`` and the file named by ``config_option``.

    Returns them and warnings (unknown ``EVLOOP_`` variables) for the caller
    to log once logging is set up.  Raises ``UsageError`` listing every
    value that cannot be used; ``argparse`` itself exits with status 2 for a
    malformed command line.
    """
    environ = os.environ if environ is None else environ
    given = vars(parser.parse_args(argv))
    by_dest = {option.dest: option for option in options}
    errors: list[str] = []
    warnings: list[str] = []

    path_option = by_dest.get(config_option.replace("-", "_"))
    file_values: dict[str, Any] = {}
    file_path: str | None = None
    if path_option is not None:
        file_path = given.get(path_option.dest) or environ.get(path_option.env) or None
        if file_path:
            file_values = _read_toml(file_path, options, errors)

    known_env = {option.env for option in options} | {alias for option in options for alias in option.env_aliases}
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known_env and not name.startswith(ENV_PREFIX + "LOAD_"):
            import difflib  # imported where needed (also tomllib): only a mistake or a file pays for them

            close = difflib.get_close_matches(name, sorted(known_env), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"ignoring the environment variable {name}: no such option{hint}")

    settings = Settings()
    for option in options:
        dest = option.dest
        raw: Any
        if dest in given:
            raw, source, label = given[dest], "command line", f"--{option.name}"
            if isinstance(raw, _Off):
                setattr(settings, dest, option.off_value)
                settings.source_of[dest] = source
                continue
        elif (env := _env_value(option, environ)) is not None:
            label = env[0]
            raw, source = env[1], f"environment {env[0]}"
        elif dest in file_values:
            raw, source, label = file_values[dest], f"file {file_path}", f"{file_path}: {option.name}"
        else:
            setattr(settings, dest, list(option.default) if option.repeatable else option.default)
            settings.source_of[dest] = "default"
            continue
        try:
            value = raw if option.flag and isinstance(raw, bool) else option.read(raw)
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
            continue
        setattr(settings, dest, value)
        settings.source_of[dest] = source
    if errors:
        raise UsageError("\n".join(errors))
    return settings, warnings


def _env_value(option: Option, environ: Mapping[str, str]) -> tuple[str, str] | None:
    if option.cli_only:
        return None
    for name in (option.env, *option.env_aliases):
        if name in environ:
            return name, environ[name]
    return None


def _read_toml(path: str, options: Iterable[Option], errors: list[str]) -> dict[str, Any]:
    """The file's values by ``Option.dest``; what cannot be read goes to ``errors``."""
    import difflib
    import tomllib

    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        errors.append(f"--config {path}: {exc.strerror or exc}")
        return {}
    except tomllib.TOMLDecodeError as exc:
        errors.append(f"{path}: not valid TOML: {exc}")
        return {}
    usable = {option.dest: option for option in options if not option.cli_only and option.name != "config"}
    values: dict[str, Any] = {}
    for key, value in document.items():
        dest = key.replace("-", "_")
        if dest not in usable:
            close = difflib.get_close_matches(key.replace("_", "-"), [o.name for o in usable.values()], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            errors.append(f"{path}: {key}: no such option{hint}")
            continue
        values[dest] = value
    return values


# -------------------------------------------------------------- --print-config
def render_settings(options: Sequence[Option], settings: Settings) -> str:
    """The effective values as a TOML document, each with its source as a comment.

    It loads back as a configuration file: values that are not set are
    commented out, and so are secrets (their values not shown).
    """
    lines: list[str] = []
    group = None
    for option in options:
        if option.cli_only or option.name == "config":
            continue
        if option.group != group:
            group = option.group
            lines.append(f"{chr(10) if lines else ''}# {group}")
        value = getattr(settings, option.dest)
        source = settings.source_of.get(option.dest, "default")
        if value is None:
            lines.append(f"# {option.name} is not set  ({source})")
        elif option.secret:
            # A comment, so that the document still loads back (without the secret).
            lines.append(f"# {option.name} is set, not shown  ({source})")
        else:
            shown = option.show(value) if option.show is not None else _toml_value(value)
            lines.append(f"{option.name} = {shown}  # {source}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))  # a JSON string is a TOML basic string
