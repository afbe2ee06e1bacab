"""Static files from a directory, sent with sendfile.

``StaticFiles(root)`` is a handler: route it with a ``{path:path}`` parameter,

    app.add_route("/static/{path:path}", StaticFiles("public"), ["GET", "HEAD"])

or call ``serve(request, rel_path)`` yourself. The response body is a
``FileBody`` (the open file, offset, count) so the server can use
``os.sendfile`` and memory stays flat whatever the file size.

Safety (every refusal is a 404 logged at INFO on ``evloop.static`` with the
reason): the relative path is the percent-decoded one; a ``..`` segment, a
backslash, a NUL, or an encoded slash (``%2F`` in the raw path) is refused
before the file system is touched; empty and ``.`` segments are dropped, so a
leading ``/`` never makes a path outside the root; the path is walked from the
root (resolved once, at start-up) without following a symlink, and a path with
a symlink on it is resolved with ``realpath`` and must stay under the resolved
root, so a symlink leading outside the root is refused while one inside is
followed. Only regular files are served (opened ``O_NONBLOCK``, checked with
``fstat`` after opening, so a FIFO swapped in cannot block the loop), and never for a path
ending in ``/`` (``a.txt/`` names a directory; nginx answers 404 too). A symlink swapped in
between the check and the open is not defended against: the root is assumed
not to be writable by attackers.

Conditional requests follow RFC 9110 section 13.2.2: If-Match, then
If-Unmodified-Since (412), then If-None-Match (weak comparison), else
If-Modified-Since (304); then Range with If-Range. One byte range gives 206;
several ranges are answered 200 with the whole file (section 14.2 allows
ignoring Range); an unsatisfiable range gives 416 with ``bytes */LEN``.
"""

from __future__ import annotations

import email.utils
import errno
import io
import logging
import mimetypes
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from evloop.app import FileBody, Request, Response
from evloop.app_fields import checked_app_fields
from evloop.http.caches import BoundedCache
from evloop.http.target import target_parts

__all__ = ["StaticFiles", "StaticMount", "content_type_for", "make_etag"]

logger = logging.getLogger("evloop.static")

# The stdlib defaults only, not /etc/mime.types: the same file gets the same
# type on every machine.
_MIME = mimetypes.MimeTypes()
for _type, _ext in (
    ("text/javascript", ".mjs"),
    ("font/woff", ".woff"),
    ("font/woff2", ".woff2"),
    ("image/webp", ".webp"),
    ("text/markdown", ".md"),
    ("application/manifest+json", ".webmanifest"),
):
    _MIME.add_type(_type, _ext)

# Files compressed as a whole are served as what they are, never with
# Content-Encoding (which would make clients decompress a download).
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}
_CHARSET_TYPES = {"application/javascript", "application/json", "application/manifest+json"}
_ALLOW = "GET, HEAD"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# An opened path: its descriptor, the descriptor's fstat, the path.
_Opened = tuple[int, os.stat_result, str]

# The request fields that make a static response other than the whole file (RFC 9110 13.1, 14.2).
_PRECONDITION_FIELDS = frozenset(
    {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "range", "if-range"})


@dataclass(frozen=True, slots=True)
class _FileFacts:
    """What one version of a file gives its responses: made once, not on every request.

    ``version`` is the file's identity and change marks from ``fstat``
    (device, inode, size, modification time in ns): the entry is used only
    while the opened file's own ``fstat`` gives the same, so a changed or
    replaced file is never answered with its old validators.
    """

    version: tuple[int, int, int, int]
    etag: str
    mtime: int  # whole seconds, as Last-Modified says it
    validators: tuple[tuple[str, str], ...]  # ETag, Last-Modified, Cache-Control: on 200, 206, 304, 412, 416
    fields: tuple[tuple[str, str], ...]  # Content-Type, Accept-Ranges and the validators: on 200 and 206


def _version(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


_NO_DESCRIPTOR = -1  # an opened path's descriptor when it is a directory that cannot be read (see _open)


def _close_descriptor(fd: int) -> None:
    if fd != _NO_DESCRIPTOR:
        os.close(fd)


def content_type_for(path: str) -> str:
    """Content-Type for a file name, with ``charset=utf-8`` for text types."""
    ctype, encoding = _MIME.guess_type(path, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    if ctype is None:
        return "application/octet-stream"
    if ctype.startswith("text/") or ctype in _CHARSET_TYPES or ctype.endswith("+json"):
        return ctype + "; charset=utf-8"
    return ctype


def make_etag(st: os.stat_result) -> str:
    """Strong ETag from inode, size and mtime in nanoseconds."""
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def _parse_date(value: str) -> int | None:
    """An HTTP-date as integer seconds since the epoch, None if invalid."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    try:
        return int(parsed.timestamp())
    except (OverflowError, ValueError, OSError):
        return None


def _etag_list(value: str) -> list[str]:
    """Entity tags of an If-Match / If-None-Match value (``*`` kept as is)."""
    tags = []
    for item in value.split(","):
        item = item.strip()
        if item:
            tags.append(item)
    return tags


def _weak_match(tags: list[str], etag: str) -> bool:
    # RFC 9110 section 8.8.3.2: weak comparison ignores the W/ prefix.
    opaque = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == opaque for tag in tags)


def _strong_match(tags: list[str], etag: str) -> bool:
    # Strong comparison: both tags strong and identical.
    return any(tag == "*" or (tag == etag and not tag.startswith("W/")) for tag in tags)


_MAX_RANGE_DIGITS = 19


def _parse_range(value: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """The single range of a Range value as ``(start, end_inclusive)``.

    Returns ``None`` to ignore the field (syntax we do not handle, other
    units, several ranges: the whole file is served), ``"unsatisfiable"`` for
    a well-formed range that selects nothing (RFC 9110 section 14.1.1).
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    if not dash:
        return None
    first = first.strip()
    last = last.strip()
    for part in (first, last):
        if part and (not part.isdigit() or not part.isascii() or len(part) > _MAX_RANGE_DIGITS):
            return None
    if first:
        start = int(first)
        if last:
            end = int(last)
            if end < start:
                return None
        else:
            end = size - 1
        if start >= size:
            return "unsatisfiable"
        return start, min(end, size - 1)
    if not last:
        return None
    suffix = int(last)
    if suffix == 0 or size == 0:
        return "unsatisfiable"
    return max(0, size - suffix), size - 1


class StaticFiles:
    """Serve the files under ``root``; see the module docstring.

    ``index`` is the file served for a directory (None: directories are 404),
    a name in that directory (a path is a ``ValueError``).
    ``cache_control``, when given, is sent on 200, 206 and 304 responses.
    ``max_cached_files``: how many files' response fields (ETag,
    Last-Modified, Content-Type) are kept, checked against each request's
    ``fstat``, as nginx's ``open_file_cache`` keeps them (0: made for every
    request).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, index: str | None = "index.html",
        cache_control: str | None = None, max_cached_files: int = 1024,
    ) -> None:
        self.root = os.path.realpath(os.fspath(root))
        if not os.path.isdir(self.root):
            raise ValueError(f"static root is not a directory: {root}")
        if index is not None and (index in ("", ".", "..") or "/" in index or os.sep in index or "\0" in index):
            # One name in the directory: a path would be opened beyond the walk's checks (a symlink or ".." in it).
            raise ValueError(f"index must be a file name, not a path: {index!r}")
        self.index = index
        if cache_control is not None:
            checked_app_fields([("Cache-Control", cache_control)])  # a ValueError now, not a 500 per request
        self.cache_control = cache_control
        self._facts: BoundedCache[str, _FileFacts] = BoundedCache("static file facts", max_cached_files)

    def __call__(self, request: Request, path: str | None = None, **_params: str) -> Response:
        """Handler form: ``path`` is the route's ``{path:path}`` parameter.

        Without it the whole request path is taken as relative to the root.
        """
        return self.serve(request, request.path if path is None else path)

    def _refuse(self, request: Request, reason: str) -> Response:
        logger.info("refused %s %r: %s", request.method, request.target, reason)
        return Response(404, None, b"Not Found\n", content_type="text/plain; charset=utf-8")

    def _segments(self, request: Request, rel_path: str) -> list[str] | Response:
        """The path's segments under the root (empty and ``.`` ones dropped), or a 404 before any system call."""
        if "\0" in rel_path:
            return self._refuse(request, "NUL byte in path")
        if "\\" in rel_path:
            return self._refuse(request, "backslash in path")
        if "%2f" in request.raw_path.lower():
            return self._refuse(request, "encoded slash in path")
        segments = []
        for segment in rel_path.split("/"):
            if segment == "..":
                return self._refuse(request, "'..' segment in path")
            if segment and segment != ".":
                segments.append(segment)
        return segments

    def _open_beneath(self, request: Request, segments: list[str]) -> _Opened | Response:
        """Open the path of ``segments`` under the root without following a symlink, or a 404.

        The root is resolved once, at start-up: each directory on the way is
        checked with ``lstat`` and the last segment opened with ``O_NOFOLLOW``,
        so a file in the root costs one ``openat`` and one ``fstat``, where
        ``realpath`` over the whole path, then ``stat``, cost one ``lstat``
        for every directory from ``/`` and two calls more (a 2 KiB file at
        ``/tmp/root/``: 11 -> 7 system calls a request, ``strace -c``; its
        whole request 320,297 -> 240,784 instructions, load/server_instructions.py
        static-small).  A symlink on the way goes by ``_open_resolved``.
        """
        path = self.root
        for segment in segments[:-1]:
            path = f"{path}{os.sep}{segment}"
            try:
                mode = os.lstat(path).st_mode
            except (OSError, ValueError) as exc:
                return self._refuse(request, f"cannot stat: {exc.__class__.__name__}")
            if stat.S_ISLNK(mode):
                return self._open_resolved(request, segments)
        if segments:
            path = f"{path}{os.sep}{segments[-1]}"
        try:
            return self._open(path, os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK):  # the last segment is a symlink (EMLINK: BSDs)
                return self._open_resolved(request, segments)
            return self._refuse(request, f"cannot open: {exc.__class__.__name__}")
        except ValueError as exc:
            return self._refuse(request, f"cannot open: {exc.__class__.__name__}")

    def _open_resolved(self, request: Request, segments: list[str]) -> _Opened | Response:
        """A path with a symlink on it: resolved with ``realpath``, followed if it stays under the root."""
        try:
            real = os.path.realpath(os.path.join(self.root, *segments))
        except (OSError, ValueError) as exc:
            return self._refuse(request, f"cannot resolve: {exc}")
        if real != self.root and not real.startswith(self.root + os.sep):
            return self._refuse(request, f"resolves outside the root to {real!r}")
        try:
            return self._open(real, 0)
        except (OSError, ValueError) as exc:
            return self._refuse(request, f"cannot open: {exc.__class__.__name__}")

    @staticmethod
    def _open(path: str, flags: int) -> _Opened:
        """The open file (or directory) at ``path``, its ``fstat`` and its path (``O_NONBLOCK``: a FIFO never
        blocks the loop; what it is, is checked on the descriptor, so it cannot change between check and use).

        A directory that may be searched but not read (mode 0711: its index is served, it is never listed)
        cannot be opened: it is given as ``_NO_DESCRIPTOR`` with its ``lstat``, as ``os.stat`` gave it before.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _O_CLOEXEC | flags)
        except PermissionError:
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                return _NO_DESCRIPTOR, st, path
            raise
        try:
            return fd, os.fstat(fd), path
        except BaseException:
            os.close(fd)
            raise

    def serve(self, request: Request, rel_path: str) -> Response:
        """Respond to a GET or HEAD for ``rel_path`` (decoded, relative to root)."""
        if request.method not in ("GET", "HEAD"):
            return Response(
                405, [("Allow", _ALLOW)], b"Method Not Allowed\n",
                content_type="text/plain; charset=utf-8",
            )
        segments = self._segments(request, rel_path)
        if isinstance(segments, Response):
            return segments
        opened = self._open_beneath(request, segments)
        if isinstance(opened, Response):
            return opened
        fd, st, real = opened
        if stat.S_ISDIR(st.st_mode):
            _close_descriptor(fd)
            return self._directory(request, segments)
        if rel_path.rpartition("/")[2] in ("", "."):
            # "a.txt/" names a directory; the file system agrees (ENOTDIR)
            # and so does nginx: 404, not the file.
            os.close(fd)
            return self._refuse(request, "a file asked for as a directory")
        return self._file(request, fd, st, real)

    def _directory(self, request: Request, segments: list[str]) -> Response:
        """A directory: a redirect to its path with a slash, else its index file, else a 404 (no listing)."""
        if not request.raw_path.endswith("/"):
            # Like nginx: relative links in the index must resolve
            # against the directory, so send the client to "dir/".
            location = request.raw_path + "/"
            if request.query_string:
                location += "?" + request.query_string
            return Response(
                301, [("Location", location)], b"Moved Permanently\n",
                content_type="text/plain; charset=utf-8",
            )
        if not self.index:
            return self._refuse(request, "directory without index")
        opened = self._open_beneath(request, [*segments, self.index])
        if isinstance(opened, Response):
            return opened
        fd, st, real = opened
        if stat.S_ISDIR(st.st_mode):
            _close_descriptor(fd)
            return self._refuse(request, "the index is a directory")
        return self._file(request, fd, st, real)

    def _file(self, request: Request, fd: int, st: os.stat_result, real: str) -> Response:
        """The response for an opened file: refused unless a regular file, else ``_respond_file``'s.

        The descriptor becomes a file object only for a response that sends
        it (``_file_body``); a 304, 412 or 416 closes it as it is.
        """
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return self._refuse(request, "not a regular file")
        try:
            response = self._respond_file(request, real, fd, st)
        except BaseException:
            os.close(fd)  # _file_body is the last step of a response: nothing raises once it owns the descriptor
            raise
        if not isinstance(response.body, FileBody):
            os.close(fd)
        return response

    @staticmethod
    def _file_body(fd: int, offset: int, count: int) -> FileBody:
        # Unbuffered: the body goes by sendfile or pread on the descriptor, never through the file object,
        # and a buffered reader cost two system calls more a request (an ioctl asking whether the file is a
        # terminal, an lseek for its position; strace -c of a 2 KiB file's requests).
        return FileBody(io.FileIO(fd, "rb"), offset, count)

    def _facts_of(self, real: str, st: os.stat_result) -> _FileFacts:
        """The fields of the file at ``real`` as its ``fstat`` ``st`` is: remembered while the file stays the same.

        A 2 KiB file's whole request in ``evloop-demo``, with the whole-file
        answer that skips the precondition steps: 240,784 -> 155,616
        instructions (load/server_instructions.py static-small: ``formatdate``,
        ``mimetypes``, the fields' checks and five field lookups a request).
        """
        version = _version(st)
        facts = self._facts.entries.get(real)
        if facts is not None and facts.version == version:
            return facts
        self._facts.misses += 1
        mtime = int(st.st_mtime)
        etag = make_etag(st)
        validators = [("ETag", etag), ("Last-Modified", email.utils.formatdate(mtime, usegmt=True))]
        if self.cache_control:
            validators.append(("Cache-Control", self.cache_control))
        fields, _, _ = checked_app_fields(
            [("Content-Type", content_type_for(real)), ("Accept-Ranges", "bytes"), *validators])
        facts = _FileFacts(version, etag, mtime, tuple(validators), tuple(fields))
        self._facts.put(real, facts)
        return facts

    def _respond_file(self, request: Request, real: str, fd: int, st: os.stat_result) -> Response:
        size = st.st_size
        facts = self._facts_of(real, st)
        # One pass over the request's fields for those that make this response other than the whole file
        # (none, the usual request, skips the steps below), and no file object for a response that sends no
        # file: a 304 for one If-None-Match 123,080 -> 107,511 instructions a request (server_instructions.py
        # static-304), against five lookups in the request's Headers and a file object made and closed.
        found: dict[str, list[str]] | None = None
        for name, value in request.headers.raw:
            lname = name.lower()
            if lname in _PRECONDITION_FIELDS:
                if found is None:
                    found = {lname: [value]}
                else:
                    found.setdefault(lname, []).append(value)
        if found is None:
            return Response.checked(200, list(facts.fields), self._file_body(fd, 0, size), size)
        etag = facts.etag
        mtime = facts.mtime
        validators = list(facts.validators)

        # RFC 9110 section 13.2.2, steps 1 to 4.
        if_match = found.get("if-match")
        if if_match is not None:
            if not _strong_match(_etag_list(if_match[0]), etag):
                return Response(412, validators, b"Precondition Failed\n",
                                content_type="text/plain; charset=utf-8")
        elif (ius := found.get("if-unmodified-since")) is not None:
            since = _parse_date(ius[0])
            if since is not None and mtime > since:
                return Response(412, validators, b"Precondition Failed\n",
                                content_type="text/plain; charset=utf-8")
        if_none_match = found.get("if-none-match")
        if if_none_match is not None:
            if _weak_match(_etag_list(", ".join(if_none_match)), etag):
                return Response.checked(304, validators, b"", 0)
        elif (ims := found.get("if-modified-since")) is not None:
            since = _parse_date(ims[0])
            if since is not None and mtime <= since:
                return Response.checked(304, validators, b"", 0)

        # Range applies to GET only (RFC 9110 section 14.2).
        ranges = found.get("range") if request.method == "GET" else None
        if ranges is not None and len(ranges) == 1:
            if_range = found.get("if-range")
            if if_range is None or self._if_range_holds(if_range[0], etag, mtime):
                byte_range = _parse_range(ranges[0], size)
                if byte_range == "unsatisfiable":
                    return Response(
                        416, [("Content-Range", f"bytes */{size}"), *validators],
                        b"Range Not Satisfiable\n", content_type="text/plain; charset=utf-8",
                    )
                if byte_range is not None:
                    start, end = byte_range
                    fields = [*facts.fields, ("Content-Range", f"bytes {start}-{end}/{size}")]
                    return Response.checked(206, fields, self._file_body(fd, start, end - start + 1), end - start + 1)
        return Response.checked(200, list(facts.fields), self._file_body(fd, 0, size), size)

    @staticmethod
    def _if_range_holds(value: str, etag: str, mtime: int) -> bool:
        # RFC 9110 section 13.1.5: an entity tag must match strongly; a date
        # must equal Last-Modified exactly.
        value = value.strip()
        if value.startswith('"') or value.startswith("W/"):
            return value == etag
        since = _parse_date(value)
        return since is not None and since == mtime


class StaticMount:
    """An app in front of another: paths under ``prefix`` are ``static``'s files, the rest goes to ``app``.

    How ``evloop-demo --wsgi app --root DIR --static-path /static`` serves a
    Django or Flask deployment's assets without nginx (whitenoise's job
    under gunicorn).  ``/static/a.css`` is ``DIR/a.css``, sent with
    sendfile and answered as ``StaticFiles`` answers (ETag, ranges,
    404 for a missing file: nginx's ``location /static/ { alias DIR/; }``);
    a method other than GET and HEAD there is 405.  ``/static`` itself and
    every other path are the app's.
    """

    def __init__(self, app: Callable[..., Any], prefix: str, static: StaticFiles) -> None:
        prefix = "/" + prefix.strip("/")
        if prefix == "/":
            raise ValueError("the static files' URL prefix cannot be / (the app would get no path)")
        self.app = app
        self.static = static
        self.prefix = prefix + "/"
        self._app_would_accept: Callable[[str, str], bool] | None = getattr(app, "would_accept", None)
        # The app's streamed-body routes (App.stream_request_body), asked for its own paths only.
        self._app_streams_body: Callable[[str, str], bool] | None = getattr(app, "streams_body", None)
        self.streams_body = None if self._app_streams_body is None else self._streams_body

    def __call__(self, request: Request, **_params: str) -> Any:
        path = request.path
        if not path.startswith(self.prefix):
            return self.app(request)
        return self.static.serve(request, path[len(self.prefix):])  # a 405 for other methods

    def would_accept(self, method: str, target: str) -> bool:
        """Expect: 100-continue: the files take no body; the app decides for its own paths."""
        if target_parts(target)[1].startswith(self.prefix):  # the decoded path, as __call__ routes
            return method in ("GET", "HEAD")
        return self._app_would_accept is None or self._app_would_accept(method, target)

    def _streams_body(self, method: str, target: str) -> bool:
        streams: Any = self._app_streams_body
        return not target_parts(target)[1].startswith(self.prefix) and streams(method, target)
