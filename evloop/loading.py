"""Finding an application by name, as gunicorn and uvicorn do: ``module:attribute``.

The grammar of a spec (``AppSpec.parse``):

=================================  ==============================================
``module``                         ``module:application``, else ``module:app``
``module:name``                    an attribute; ``module:api.app`` for a nested one
``module:factory()``               the result of calling it
``module:factory('prod', debug=1)``  called with literal arguments only: each is read
                                   with ``ast.literal_eval``, never ``eval``
=================================  ==============================================

The current directory comes first on ``sys.path`` when the module is
imported (gunicorn, uvicorn and waitress-serve do the same), so ``cd myapp &&
evloop-demo --wsgi app:app`` finds ``myapp/app.py`` also when evloop was
started from a console script, whose own folder is ``sys.path[0]``.

Every failure is an ``AppLoadError`` whose text is one line for the operator:
the module, what went wrong and where (the path searched when the module is
not found; the file and line when importing it raised).  The original
exception is its ``__cause__``, for a traceback at debug level.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["AppLoadError", "AppLoader", "AppSpec", "load_object"]

_DEFAULT_NAMES = ("application", "app")


class AppLoadError(Exception):
    """The application could not be loaded; ``str(error)`` says why in one line."""


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """A parsed ``module:expression``: the attribute path, and the call's literal arguments if it is one."""

    text: str
    module: str
    names: tuple[str, ...]                  # empty: the default names
    call: bool = False
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str) -> AppSpec:
        """Parse ``text``; raises ``AppLoadError`` for a malformed spec (nothing is imported)."""
        module, _, expression = text.partition(":")
        if not module or not all(part.isidentifier() for part in module.split(".")):
            raise AppLoadError(f"{text!r} is not MODULE or MODULE:NAME (MODULE a dotted module name)")
        if not expression.strip():
            return cls(text, module, ())
        try:
            node = ast.parse(expression.strip(), mode="eval").body
        except SyntaxError:
            raise AppLoadError(f"{text!r}: {expression!r} is not a name or a call") from None
        if not isinstance(node, ast.Call):
            return cls(text, module, _dotted(node, text))
        if any(isinstance(arg, ast.Starred) for arg in node.args) or any(kw.arg is None for kw in node.keywords):
            raise AppLoadError(f"{text!r}: *args and **kwargs are not allowed in a factory call")
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            kwargs = tuple((str(kw.arg), ast.literal_eval(kw.value)) for kw in node.keywords)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            raise AppLoadError(f"{text!r}: a factory's arguments must be literals (strings, numbers, "
                               "tuples, lists, dicts, True, False, None)") from None
        return cls(text, module, _dotted(node.func, text), True, args, kwargs)


def _dotted(node: ast.expr, text: str) -> tuple[str, ...]:
    """``a.b.c`` as ``("a", "b", "c")``; ``AppLoadError`` for any other expression."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise AppLoadError(f"{text!r}: expected NAME, NAME.ATTR or a call of one with literal arguments")
    names.append(node.id)
    return tuple(reversed(names))


def put_cwd_first() -> str:
    """Put the current directory first on ``sys.path`` (unless it is there already); returns it."""
    cwd = os.getcwd()
    if not sys.path or sys.path[0] not in (cwd, ""):
        sys.path.insert(0, cwd)
    return cwd


def _import(spec: AppSpec) -> Any:
    put_cwd_first()
    try:
        return importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if spec.module == missing or spec.module.startswith(missing + "."):
            raise AppLoadError(
                f"cannot import {spec.module!r} for {spec.text!r}: no module named {missing!r} in the current "
                f"directory {os.getcwd()} or on sys.path ({os.pathsep.join(sys.path[1:])}); run from the "
                "application's folder or give --chdir DIR"
            ) from exc
        raise AppLoadError(f"importing {spec.module!r} failed{_where(exc)}: {exc} (a module it imports is "
                           "not installed)") from exc
    except (Exception, SystemExit) as exc:
        what = exc.msg if isinstance(exc, SyntaxError) else exc  # its str() repeats the place
        raise AppLoadError(f"importing {spec.module!r} failed{_where(exc)}: {type(exc).__name__}: {what}") from exc


def _where(exc: BaseException) -> str:
    """`` at FILE line N``: the innermost frame of the failure (or a SyntaxError's own place)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" at {exc.filename} line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename]
    return f" at {frames[-1].filename} line {frames[-1].lineno}" if frames else ""


def _resolve(spec: AppSpec, module: Any) -> Any:
    where = f"module {spec.module!r} ({getattr(module, '__file__', None) or 'no file'})"
    if not spec.names:
        for name in _DEFAULT_NAMES:
            if hasattr(module, name):
                return getattr(module, name)
        raise AppLoadError(f"{where} has neither 'application' nor 'app': name it as {spec.module}:NAME")
    obj = module
    for i, name in enumerate(spec.names):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise AppLoadError(f"{where} has no attribute {'.'.join(spec.names[:i + 1])!r}") from None
    return obj


def load_object(text: str | AppSpec) -> Any:
    """Import the object ``text`` names (see the module docstring); raises ``AppLoadError``."""
    spec = text if isinstance(text, AppSpec) else AppSpec.parse(text)
    obj = _resolve(spec, _import(spec))
    if spec.call:
        try:
            obj = obj(*spec.args, **dict(spec.kwargs))
        except Exception as exc:
            raise AppLoadError(f"{spec.text}: the factory raised{_where(exc)}: {type(exc).__name__}: {exc}") from exc
        if obj is None:
            raise AppLoadError(f"{spec.text}: the factory returned None, not an application")
    if not callable(obj):
        raise AppLoadError(f"{spec.text} is a {type(obj).__name__}, not a callable application")
    return obj


class AppLoader:
    """An application imported where it is to run: ``load()`` imports it and returns ``wrap(obj)``.

    Given to ``serve()`` or a ``Supervisor`` in place of the application,
    each worker imports it after the fork, so a new worker (SIGHUP,
    ``--reload``, ``--max-requests``) runs the code on disk now.  The spec is
    parsed here: a malformed one raises ``AppLoadError`` at once.
    """

    def __init__(self, spec: str, wrap: Callable[[Any], Callable[..., Any]] | None = None) -> None:
        self.spec = AppSpec.parse(spec)
        self.wrap = wrap

    def load(self) -> Callable[..., Any]:
        """Import and wrap the application; raises ``AppLoadError``."""
        obj = load_object(self.spec)
        return obj if self.wrap is None else self.wrap(obj)

    def __repr__(self) -> str:
        return f"AppLoader({self.spec.text!r})"
