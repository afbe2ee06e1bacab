"""evloop.static: safety, conditional requests, ranges, index, types."""

import email.utils
import logging
import os
import re

import pytest

from evloop.app import App, FileBody, Request, Response
from evloop.static import StaticFiles, content_type_for, make_etag

CONTENT = bytes(range(256)) * 4  # 1024 bytes


def req(target, method="GET", headers=()):
    return Request(method=method, target=target, headers=list(headers))


def read_body(response: Response) -> bytes:
    body = response.body
    try:
        if isinstance(body, FileBody):
            body.file.seek(body.offset)
            return body.file.read(body.count)
        if isinstance(body, bytes):
            return body
        return b"".join(body)
    finally:
        response.close()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "data.bin").write_bytes(CONTENT)
    (root / "hello.txt").write_text("hello\n")
    (root / "index.html").write_text("<h1>top</h1>")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<h1>sub</h1>")
    (root / "noindex").mkdir()
    (root / "noindex" / "a.txt").write_text("a")
    (root / "caf\u00e9 x.txt").write_text("accent")
    (root / "empty.txt").write_bytes(b"")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "index.html").write_text("outside")
    return root


@pytest.fixture
def app(tree):
    app = App()
    app.add_route("/static/{path:path}", StaticFiles(tree), ["GET", "HEAD"])
    return app


def get(app, target, method="GET", headers=()):
    response = app(req(target, method, headers))
    assert isinstance(response, Response)
    return response


def hdr(response, name):
    values = [v for n, v in response.headers if n.lower() == name.lower()]
    assert len(values) <= 1
    return values[0] if values else None


# --------------------------------------------------------------------- basics


def test_serves_file_as_filebody(app, tree):
    r = get(app, "/static/data.bin")
    assert r.status == 200
    assert isinstance(r.body, FileBody)
    assert (r.body.offset, r.body.count, r.content_length) == (0, 1024, 1024)
    assert hdr(r, "Content-Type") == "application/octet-stream"
    assert hdr(r, "Accept-Ranges") == "bytes"
    st = os.stat(tree / "data.bin")
    assert hdr(r, "Last-Modified") == email.utils.formatdate(int(st.st_mtime), usegmt=True)
    assert read_body(r) == CONTENT
    assert r.body.file.closed


def test_etag_format(app, tree):
    r = get(app, "/static/data.bin")
    st = os.stat(tree / "data.bin")
    assert hdr(r, "ETag") == f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"', hdr(r, "ETag"))
    assert make_etag(st) == hdr(r, "ETag")
    r.close()


def test_etag_changes_with_content(app, tree):
    r1 = get(app, "/static/hello.txt")
    (tree / "hello.txt").write_text("hello, longer\n")
    r2 = get(app, "/static/hello.txt")
    assert hdr(r1, "ETag") != hdr(r2, "ETag")
    r1.close()
    r2.close()


def test_head_has_same_headers(app):
    g = get(app, "/static/hello.txt")
    h = get(app, "/static/hello.txt", "HEAD")
    assert h.status == 200 and h.headers == g.headers and h.content_length == g.content_length
    g.close()
    h.close()
    assert h.body.file.closed


def test_percent_decoded_name(app):
    r = get(app, "/static/caf%C3%A9%20x.txt")
    assert r.status == 200 and read_body(r) == b"accent"


def test_empty_file(app):
    r = get(app, "/static/empty.txt")
    assert r.status == 200 and r.content_length == 0 and read_body(r) == b""


def test_other_methods_405(app, tree):
    # Routed for every method so StaticFiles itself answers.
    app2 = App()
    app2.add_route("/s/{path:path}", StaticFiles(tree), ["GET", "HEAD", "POST", "DELETE"])
    for method in ("POST", "DELETE"):
        r = get(app2, "/s/hello.txt", method)
        assert r.status == 405 and hdr(r, "Allow") == "GET, HEAD"
    assert get(app, "/static/hello.txt", "PUT").status == 405


def test_root_must_be_a_directory(tmp_path):
    with pytest.raises(ValueError):
        StaticFiles(tmp_path / "missing")


def test_direct_serve_and_call_without_param(tree):
    s = StaticFiles(tree)
    assert read_body(s.serve(req("/x/hello.txt"), "hello.txt")) == b"hello\n"
    assert read_body(s(req("/hello.txt"))) == b"hello\n"


# ------------------------------------------------------------ directories


def test_directory_index(app):
    r = get(app, "/static/")
    assert r.status == 200 and read_body(r) == b"<h1>top</h1>"
    assert hdr(r, "Content-Type") == "text/html; charset=utf-8"
    r = get(app, "/static/sub/")
    assert read_body(r) == b"<h1>sub</h1>"


def test_directory_without_slash_redirects(app):
    r = get(app, "/static/sub?x=1")
    assert r.status == 301 and hdr(r, "Location") == "/static/sub/?x=1"
    r = get(app, "/static/sub")
    assert hdr(r, "Location") == "/static/sub/"


def test_directory_without_index_is_404_no_listing(app):
    r = get(app, "/static/noindex/")
    assert r.status == 404 and b"a.txt" not in read_body(r)


@pytest.mark.parametrize("target", ["/static/hello.txt/", "/static/hello.txt/.", "/static/sub/index.html/"])
def test_a_file_asked_for_as_a_directory_is_404(app, target, caplog):
    with caplog.at_level(logging.INFO, logger="evloop.static"):
        assert get(app, target).status == 404
    assert "a file asked for as a directory" in caplog.text


def test_index_disabled(tree):
    s = StaticFiles(tree, index=None)
    assert s.serve(req("/"), "").status == 404


def test_missing_file_404(app):
    assert get(app, "/static/nope.txt").status == 404
    assert get(app, "/static/hello.txt/more").status == 404


def test_non_regular_file_404(app, tree):
    os.mkfifo(tree / "fifo")
    assert get(app, "/static/fifo").status == 404  # and did not block


# ----------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret.txt",
        "/static/sub/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/sub/..",
        "/static/..",
        "/static/..%2Fsecret.txt",
        "/static/..%2fsecret.txt",
        "/static/sub%2F..%2F..%2Fsecret.txt",
        "/static/sub%2Findex.html",
        "/static/..%5Csecret.txt",
        "/static/sub\\..\\..\\secret.txt",
        "/static/hello.txt%00.png",
        "/static/hello.txt\x00",
        "/static/%00",
    ],
)
def test_traversal_attempts_are_404_and_logged(app, target, caplog):
    with caplog.at_level(logging.INFO, logger="evloop.static"):
        r = get(app, target)
    assert r.status == 404
    assert read_body(r) == b"Not Found\n"
    assert any(rec.name == "evloop.static" and rec.levelno == logging.INFO for rec in caplog.records)


def test_absolute_path_param_stays_in_root(tree):
    s = StaticFiles(tree)
    r = s.serve(req("/x"), "/etc/passwd")
    assert r.status == 404
    r = s.serve(req("/x"), "//hello.txt")
    assert read_body(r) == b"hello\n"


def test_symlink_outside_root_refused(app, tree, tmp_path, caplog):
    os.symlink(tmp_path / "secret.txt", tree / "link.txt")
    os.symlink(tmp_path / "outside", tree / "linkdir")
    with caplog.at_level(logging.INFO, logger="evloop.static"):
        assert get(app, "/static/link.txt").status == 404
        assert get(app, "/static/linkdir/").status == 404
        assert get(app, "/static/linkdir/index.html").status == 404
    assert "outside the root" in caplog.text


def test_index_symlink_outside_root_refused(app, tree, tmp_path):
    (tree / "d").mkdir()
    os.symlink(tmp_path / "secret.txt", tree / "d" / "index.html")
    assert get(app, "/static/d/").status == 404


def test_symlink_inside_root_followed(app, tree):
    os.symlink(tree / "hello.txt", tree / "alias.txt")
    assert read_body(get(app, "/static/alias.txt")) == b"hello\n"


def test_directory_symlink_inside_root_followed(app, tree):
    os.symlink(tree / "sub", tree / "aliasdir")
    assert read_body(get(app, "/static/aliasdir/index.html")) == b"<h1>sub</h1>"
    assert read_body(get(app, "/static/aliasdir/")) == b"<h1>sub</h1>"


def test_index_that_is_a_directory_is_404(app, tree):
    (tree / "d").mkdir()
    (tree / "d" / "index.html").mkdir()
    assert get(app, "/static/d/").status == 404


def _opened_inode(opened):
    if isinstance(opened, Response):
        return opened.status
    fd, st, _path = opened
    os.close(fd)
    return (st.st_dev, st.st_ino)


@pytest.mark.parametrize(
    "segments",
    [[], ["hello.txt"], ["sub"], ["sub", "index.html"], ["nope.txt"], ["hello.txt", "more"], ["sub", "nope"],
     ["alias.txt"], ["aliasdir", "index.html"], ["aliasdir"], ["link.txt"], ["linkdir", "index.html"],
     ["aliasdir", "alias2.txt"]],
)
def test_opening_beneath_the_root_agrees_with_realpath(tree, tmp_path, segments):
    """The lstat-and-O_NOFOLLOW walk (the fast path) opens what realpath's resolution opens, or refuses too."""
    os.symlink(tree / "hello.txt", tree / "alias.txt")
    os.symlink(tree / "sub", tree / "aliasdir")
    os.symlink(tree / "index.html", tree / "sub" / "alias2.txt")
    os.symlink(tmp_path / "secret.txt", tree / "link.txt")
    os.symlink(tmp_path / "outside", tree / "linkdir")
    static = StaticFiles(tree)
    fast = _opened_inode(static._open_beneath(req("/x"), segments))
    plain = _opened_inode(static._open_resolved(req("/x"), segments))
    assert fast == plain


def test_no_descriptor_leak_on_refusals(app, tree, tmp_path):
    os.mkfifo(tree / "fifo")
    os.symlink(tmp_path / "secret.txt", tree / "link.txt")
    (tree / "d").mkdir()
    (tree / "d" / "index.html").mkdir()
    targets = ["/static/fifo", "/static/link.txt", "/static/d/", "/static/sub", "/static/noindex/",
               "/static/hello.txt/", "/static/hello.txt/more", "/static/nope", "/static/sub/"]
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(10):
        for target in targets:
            get(app, target).close()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_root_itself_a_symlink(tmp_path, tree):
    os.symlink(tree, tmp_path / "rootlink")
    s = StaticFiles(tmp_path / "rootlink")
    assert read_body(s.serve(req("/hello.txt"), "hello.txt")) == b"hello\n"
    assert s.serve(req("/x"), "../secret.txt").status == 404


def test_dot_segments_and_empty_segments(app):
    assert read_body(get(app, "/static/./hello.txt")) == b"hello\n"
    assert read_body(get(app, "/static/sub//index.html")) == b"<h1>sub</h1>"


# ----------------------------------------------------------- content types


@pytest.mark.parametrize(
    "name, ctype",
    [
        ("a.html", "text/html; charset=utf-8"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "application/javascript; charset=utf-8"),
        ("a.json", "application/json; charset=utf-8"),
        ("a.png", "image/png"),
        ("a.svg", "image/svg+xml"),
        ("a.woff2", "font/woff2"),
        ("a.tar.gz", "application/gzip"),
        ("a.unknownext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_content_type_for(name, ctype):
    assert content_type_for(name) == ctype


def test_content_type_header_for_js(app, tree):
    (tree / "app.js").write_text("1")
    r = get(app, "/static/app.js")
    assert hdr(r, "Content-Type").endswith("; charset=utf-8")
    r.close()


# ------------------------------------------------------------ conditionals


def validators(app):
    r = get(app, "/static/data.bin")
    r.close()
    return hdr(r, "ETag"), hdr(r, "Last-Modified")


def test_if_none_match_304(app):
    etag, lm = validators(app)
    for value in (etag, f"W/{etag}", f'"zzz", {etag}', "*"):
        r = get(app, "/static/data.bin", headers=[("If-None-Match", value)])
        assert r.status == 304, value
        assert r.body == b"" and hdr(r, "ETag") == etag and hdr(r, "Last-Modified") == lm
        assert hdr(r, "Content-Type") is None


def test_if_none_match_split_over_fields(app):
    etag, _ = validators(app)
    r = get(app, "/static/data.bin", headers=[("If-None-Match", '"a"'), ("If-None-Match", etag)])
    assert r.status == 304


def test_if_none_match_mismatch_200(app):
    r = get(app, "/static/data.bin", headers=[("If-None-Match", '"other"')])
    assert r.status == 200
    r.close()


def test_if_modified_since(app):
    _, lm = validators(app)
    r = get(app, "/static/data.bin", headers=[("If-Modified-Since", lm)])
    assert r.status == 304
    old = email.utils.formatdate(0, usegmt=True)
    r = get(app, "/static/data.bin", headers=[("If-Modified-Since", old)])
    assert r.status == 200
    r.close()
    r = get(app, "/static/data.bin", headers=[("If-Modified-Since", "garbage")])
    assert r.status == 200
    r.close()


def test_if_modified_since_ignored_when_if_none_match_present(app):
    _, lm = validators(app)
    r = get(app, "/static/data.bin", headers=[("If-None-Match", '"other"'), ("If-Modified-Since", lm)])
    assert r.status == 200
    r.close()


def test_if_match_and_if_unmodified_since_412(app):
    etag, lm = validators(app)
    assert get(app, "/static/data.bin", headers=[("If-Match", '"other"')]).status == 412
    assert get(app, "/static/data.bin", headers=[("If-Match", f"W/{etag}")]).status == 412
    r = get(app, "/static/data.bin", headers=[("If-Match", etag)])
    assert r.status == 200
    r.close()
    old = email.utils.formatdate(0, usegmt=True)
    assert get(app, "/static/data.bin", headers=[("If-Unmodified-Since", old)]).status == 412
    r = get(app, "/static/data.bin", headers=[("If-Unmodified-Since", lm)])
    assert r.status == 200
    r.close()


# ------------------------------------------------------------------ ranges


@pytest.mark.parametrize(
    "spec, start, end",
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, 1023),
        ("bytes=-10", 1014, 1023),
        ("bytes=-5000", 0, 1023),
        ("bytes=1000-5000", 1000, 1023),
        ("bytes=1023-1023", 1023, 1023),
        ("BYTES=1-2", 1, 2),
        ("bytes= 1-2 ", 1, 2),
    ],
)
def test_single_range_206(app, spec, start, end):
    r = get(app, "/static/data.bin", headers=[("Range", spec)])
    assert r.status == 206
    assert hdr(r, "Content-Range") == f"bytes {start}-{end}/1024"
    assert r.content_length == end - start + 1
    assert read_body(r) == CONTENT[start : end + 1]


@pytest.mark.parametrize("spec", ["bytes=1024-", "bytes=2000-3000", "bytes=-0", "bytes=1024-1024"])
def test_unsatisfiable_range_416(app, spec):
    r = get(app, "/static/data.bin", headers=[("Range", spec)])
    assert r.status == 416
    assert hdr(r, "Content-Range") == "bytes */1024"
    assert isinstance(r.body, bytes)


def test_range_on_empty_file_416(app):
    r = get(app, "/static/empty.txt", headers=[("Range", "bytes=0-")])
    assert r.status == 416 and hdr(r, "Content-Range") == "bytes */0"


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=0-1,5-6",  # several ranges: whole file
        "bytes=5-1",  # invalid: ignored
        "items=0-1",
        "bytes=abc",
        "bytes=-",
        "bytes=+1-2",
        "bytes=0x1-2",
        "bytes=1-2-3",
        "bytes=" + "9" * 40 + "-",
        "bytes",
    ],
)
def test_ignored_ranges_give_full_200(app, spec):
    r = get(app, "/static/data.bin", headers=[("Range", spec)])
    assert r.status == 200 and hdr(r, "Content-Range") is None
    assert read_body(r) == CONTENT


def test_range_ignored_for_head(app):
    r = get(app, "/static/data.bin", "HEAD", headers=[("Range", "bytes=0-1")])
    assert r.status == 200 and r.content_length == 1024
    r.close()


def test_if_range_etag(app):
    etag, lm = validators(app)
    r = get(app, "/static/data.bin", headers=[("Range", "bytes=0-9"), ("If-Range", etag)])
    assert r.status == 206 and read_body(r) == CONTENT[:10]
    r = get(app, "/static/data.bin", headers=[("Range", "bytes=0-9"), ("If-Range", '"stale"')])
    assert r.status == 200 and read_body(r) == CONTENT
    # A weak tag never matches in If-Range (strong comparison).
    r = get(app, "/static/data.bin", headers=[("Range", "bytes=0-9"), ("If-Range", "W/" + etag)])
    assert r.status == 200
    r.close()


def test_if_range_date(app):
    _, lm = validators(app)
    r = get(app, "/static/data.bin", headers=[("Range", "bytes=0-9"), ("If-Range", lm)])
    assert r.status == 206
    r.close()
    old = email.utils.formatdate(0, usegmt=True)
    r = get(app, "/static/data.bin", headers=[("Range", "bytes=0-9"), ("If-Range", old)])
    assert r.status == 200
    r.close()


def test_conditional_304_wins_over_range(app):
    etag, _ = validators(app)
    r = get(app, "/static/data.bin", headers=[("Range", "bytes=0-9"), ("If-None-Match", etag)])
    assert r.status == 304


def test_no_file_descriptor_leak(app):
    before = len(os.listdir("/proc/self/fd"))
    for headers in ([], [("Range", "bytes=5000-")], [("If-None-Match", "*")], [("If-Match", '"x"')]):
        for _ in range(20):
            get(app, "/static/data.bin", headers=headers).close()
    assert len(os.listdir("/proc/self/fd")) <= before + 1


def test_non_utf8_file_name(app, tree):
    with open(os.path.join(os.fsencode(tree), b"\xff.txt"), "wb") as f:
        f.write(b"latin")
    r = get(app, "/static/%FF.txt")
    assert r.status == 200 and read_body(r) == b"latin"


# ------------------------------------------------- the remembered file facts


def _wire(response):
    return response.status, response.headers, read_body(response)


def test_a_changed_file_gets_new_validators(tree):
    static = StaticFiles(tree)
    first = static.serve(req("/hello.txt"), "hello.txt")
    first.close()
    path = tree / "hello.txt"
    path.write_text("HELLO\n")  # the same size
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 2_000_000_000))
    second = static.serve(req("/hello.txt"), "hello.txt")
    assert hdr(second, "ETag") != hdr(first, "ETag") and hdr(second, "Last-Modified") != hdr(first, "Last-Modified")
    assert read_body(second) == b"HELLO\n"
    (tree / "new.txt").write_text("other\n")
    os.replace(tree / "new.txt", path)  # a deploy's atomic rename: a new inode
    third = static.serve(req("/hello.txt"), "hello.txt")
    assert hdr(third, "ETag") != hdr(second, "ETag") and hdr(third, "ETag") == make_etag(os.stat(path))
    assert read_body(third) == b"other\n"


@pytest.mark.parametrize("headers", [[], [("If-None-Match", "*")], [("Range", "bytes=2-5")], [("If-Match", '"x"')]])
def test_remembered_facts_answer_as_facts_made_for_each_request(tree, headers):
    remembering = StaticFiles(tree, cache_control="max-age=60")
    fresh = StaticFiles(tree, cache_control="max-age=60", max_cached_files=0)
    for _ in range(3):
        assert _wire(remembering.serve(req("/data.bin", headers=headers), "data.bin")) == _wire(
            fresh.serve(req("/data.bin", headers=headers), "data.bin"))
    assert len(remembering._facts) == 1 and len(fresh._facts) == 0


def test_a_request_without_preconditions_answers_as_the_general_path(tree):
    """The whole-file answer taken without the precondition steps equals the one after them: If-Range without
    Range makes a request take every step and still get the whole file."""
    static = StaticFiles(tree, cache_control="no-cache")
    plain = static.serve(req("/data.bin", headers=[("Accept", "*/*")]), "data.bin")
    stepped = static.serve(req("/data.bin", headers=[("Accept", "*/*"), ("If-Range", '"x"')]), "data.bin")
    assert _wire(plain) == _wire(stepped) and plain.status == 200


def test_the_remembered_files_are_bounded(tree):
    static = StaticFiles(tree, max_cached_files=2)
    for name in ("hello.txt", "data.bin", "empty.txt", "index.html"):
        static.serve(req("/" + name), name).close()
    assert len(static._facts) <= 2


def test_a_bad_cache_control_fails_at_start_up(tree):
    with pytest.raises(ValueError):
        StaticFiles(tree, cache_control="a\r\nSet-Cookie: x=1")


@pytest.mark.parametrize("index", ["", ".", "..", "d/index.html", "../outside/index.html", "a\0b"])
def test_an_index_that_is_a_path_is_refused_at_start_up(tree, index):
    with pytest.raises(ValueError, match="index must be a file name"):
        StaticFiles(tree, index=index)


_SEARCH_ONLY_PROBE = """
import sys
from evloop.app import Request
from evloop.static import StaticFiles
static = StaticFiles(sys.argv[1])
for target in ("/pub", "/pub/", "/pub/a.txt"):
    response = static.serve(Request("GET", target, headers=[]), target)
    body = response.body
    print(target, response.status, body.file.read().decode() if hasattr(body, "file") else "-")
    response.close()
"""


def test_a_directory_that_may_be_searched_but_not_read_is_served_as_before(tmp_path):
    """A directory of mode 0711 cannot be opened for reading (by anyone but root): its redirect and its index
    are served, as when it was only stat()ed. Run as an unprivileged user when the tests run as root."""
    import shutil
    import subprocess
    import sys
    import tempfile

    base = tempfile.mkdtemp(prefix="evloop-static-")  # under /tmp, where another user can reach it
    try:
        os.chmod(base, 0o755)
        shutil.copytree(os.path.dirname(os.path.dirname(__import__("evloop").__file__)) + "/evloop",
                        os.path.join(base, "evloop"), ignore=shutil.ignore_patterns("__pycache__"))
        root = os.path.join(base, "root")
        os.makedirs(os.path.join(root, "pub"))
        for name, text in (("index.html", "the index"), ("a.txt", "a file")):
            with open(os.path.join(root, "pub", name), "w") as f:
                f.write(text)
        os.chmod(root, 0o755)
        os.chmod(os.path.join(root, "pub"), 0o711)
        command = [sys.executable, "-c", _SEARCH_ONLY_PROBE, root]
        if os.geteuid() == 0:
            python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
            setpriv = shutil.which("setpriv")
            if python is None or setpriv is None:
                pytest.skip("running as root without setpriv and a system python3 to drop privileges with")
            version = subprocess.run([python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                                     capture_output=True, text=True, timeout=30).stdout.strip()
            if version != "True":
                pytest.skip("the system python3 is older than 3.11")
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c",
                       _SEARCH_ONLY_PROBE, root]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=base,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": base})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["/pub 301 -", "/pub/ 200 the index", "/pub/a.txt 200 a file"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
