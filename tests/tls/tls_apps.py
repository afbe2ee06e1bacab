"""Applications for the HTTPS tests: what the TLS session told them, as JSON."""

from __future__ import annotations

import json

from evloop import App, Request, Response

app = App()


@app.route("/tls")
def tls(request: Request) -> Response:
    info = request.tls
    return Response.json({
        "scheme": request.scheme,
        "client_subject": info.client_subject if info else None,
        "client_cert": bool(info and info.client_cert),
        "version": info.version if info else None,
        "server_name": info.server_name if info else None,
    })


def wsgi_app(environ, start_response):
    body = json.dumps({key: value for key, value in environ.items()
                       if key.startswith("SSL_") or key in ("HTTPS", "wsgi.url_scheme")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
