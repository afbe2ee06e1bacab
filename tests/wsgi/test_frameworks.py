"""Issue 18, item 5: Django, Flask, bottle and falcon under ``evloop-demo --wsgi``, checked against gunicorn.

Each app lives in its own folder under ``tests/wsgi/apps/``, copied to a
temporary one; evloop and gunicorn both run in that folder with the same
spec, and the same client steps (``requests``, one session per server) must
see the same statuses, reason phrases, redirects and bodies from both.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from support.wsgi_servers import app_env

APPS = Path(__file__).parent / "apps"

pytest.importorskip("gunicorn")


def app_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(APPS / name, folder)
    return folder


def seen(response: requests.Response, with_body: bool = True) -> tuple[object, ...]:
    """What a client sees of a response, less what differs between servers by design (Date, Server, framing)."""
    body = response.content if with_body else b""
    location = response.headers.get("Location")
    if location is not None:  # bottle makes it absolute: keep the path and the query
        parts = urlsplit(location)
        location = parts.path + (f"?{parts.query}" if parts.query else "")
    return (response.status_code, response.reason, response.headers.get("Content-Type"), location,
            response.headers.get("Content-Disposition"), body)


def side_by_side(serve_wsgi, gunicorn, folder: Path, spec: str, steps, *evloop_args: str):
    """Run ``steps(base_url)`` against evloop and gunicorn; both must see the same. Returns evloop's server."""
    evloop = serve_wsgi(folder, "--wsgi", spec, *evloop_args)
    reference = gunicorn(folder, spec)
    ours = steps(evloop.url.rstrip("/"))
    theirs = steps(reference.url.rstrip("/"))
    assert ours == theirs
    return evloop, reference


# ----------------------------------------------------------------- Django
def django_steps(base: str) -> list[object]:
    client = requests.Session()
    out: list[object] = []
    r = client.get(base + "/admin/", allow_redirects=False)
    out.append((r.status_code, r.headers["Location"]))
    login = base + "/admin/login/?next=/admin/"
    r = client.get(login)
    out.append((r.status_code, r.reason, 'href="/static/admin/css/base.css"' in r.text))
    for password in ("wrong", "s3cret-pass"):
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text).group(1)
        r = client.post(login, data={"csrfmiddlewaretoken": token, "username": "admin", "password": password,
                                     "next": "/admin/"}, allow_redirects=False)
        out.append((r.status_code, r.headers.get("Location"), "Please enter the correct username" in r.text))
    r = client.get(base + "/admin/")
    out.append((r.status_code, "Site administration" in r.text, "sessionid" in client.cookies))
    r = client.post(base + "/admin/logout/", data={"csrfmiddlewaretoken": client.cookies["csrftoken"]},
                    headers={"X-CSRFToken": client.cookies["csrftoken"]}, allow_redirects=False)
    out.append(r.status_code)
    return out


def test_django_admin_login_and_its_static_files(serve_wsgi, gunicorn, tmp_path):
    folder = app_folder(tmp_path, "django_site")
    subprocess.run([sys.executable, "setup_site.py"], cwd=folder, env={**app_env(), "PYTHONSAFEPATH": ""},
                   check=True, timeout=60)
    evloop, reference = side_by_side(serve_wsgi, gunicorn, folder, "mysite.wsgi", django_steps,
                                     "--root", "staticfiles", "--static-path", "/static", "--workers", "2")
    css = requests.get(evloop.url.rstrip("/") + "/static/admin/css/base.css", timeout=5)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert css.content == (folder / "staticfiles" / "admin" / "css" / "base.css").read_bytes()
    # gunicorn serves no static files (DEBUG is off): whitenoise or nginx would.
    assert requests.get(reference.url.rstrip("/") + "/static/admin/css/base.css", timeout=5).status_code == 404


# ------------------------------------------------------------------ Flask
def flask_steps(base: str, data: bytes) -> list[object]:
    client = requests.Session()
    upload = random.Random(18).randbytes(300_000)
    out = [seen(client.get(base + "/"))]
    r = client.post(base + "/login", data={"user": "ada"}, allow_redirects=False)
    out += [seen(r), seen(client.get(base + "/me"))]
    r = client.post(base + "/upload", files={"file": ("up.bin", upload)}, data={"note": "hi"})
    out.append(seen(r))
    assert r.json()["sha256"] == hashlib.sha256(upload).hexdigest()
    out.append(seen(client.get(base + "/stream?who=bob")))
    r = client.get(base + "/download")
    out.append(seen(r))
    assert r.content == data
    out.append(seen(client.get(base + "/download", headers={"Range": "bytes=100-199"})))
    out += [seen(client.get(base + "/teapot")), seen(client.get(base + "/nowhere"))]
    return out


def test_flask_sessions_upload_streaming_send_file(serve_wsgi, gunicorn, tmp_path):
    folder = app_folder(tmp_path, "flask_site")
    data = random.Random(1).randbytes(200_000)
    (folder / "data.bin").write_bytes(data)
    side_by_side(serve_wsgi, gunicorn, folder, "app:create_app('tests-only')", lambda base: flask_steps(base, data))


# ----------------------------------------------------------------- bottle
def bottle_steps(base: str) -> list[object]:
    client = requests.Session()
    return [
        seen(client.get(base + "/hello/world")),
        seen(client.post(base + "/form?x=1", data={"a": "b", "c": "d"})),
        seen(client.get(base + "/files/readme.txt")),
        seen(client.get(base + "/files/missing.txt"), with_body=False),  # the error page names the host
        seen(client.get(base + "/go", allow_redirects=False)),
        seen(client.get(base + "/custom")),
        seen(client.get(base + "/nowhere"), with_body=False),
    ]


def test_bottle(serve_wsgi, gunicorn, tmp_path):
    folder = app_folder(tmp_path, "bottle_site")
    (folder / "assets").mkdir()
    (folder / "assets" / "readme.txt").write_text("read me\n")
    side_by_side(serve_wsgi, gunicorn, folder, "web", bottle_steps)


# ----------------------------------------------------------------- falcon
def falcon_steps(base: str) -> list[object]:
    client = requests.Session()
    return [
        seen(client.put(base + "/items/a", json={"colour": "blue"})),
        seen(client.get(base + "/items/a")),
        seen(client.get(base + "/items/zzz")),
        seen(client.delete(base + "/items/a")),
    ]


def test_falcon(serve_wsgi, gunicorn, tmp_path):
    folder = app_folder(tmp_path, "falcon_site")
    evloop, _ = side_by_side(serve_wsgi, gunicorn, folder, "service:create()", falcon_steps)
    put = requests.put(evloop.url.rstrip("/") + "/items/b", json=[1, 2], timeout=5)
    assert (put.status_code, put.reason, put.headers["X-Item"]) == (201, "Created Just Now", "b")
