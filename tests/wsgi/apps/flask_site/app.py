"""A Flask app with a factory: sessions, an upload, a streamed response, send_file, redirects."""

import hashlib

from flask import Flask, Response, jsonify, redirect, request, send_file, session, stream_with_context


def create_app(secret="tests-only"):
    app = Flask(__name__)
    app.secret_key = secret

    @app.get("/")
    def index():
        return "hello from flask"

    @app.post("/login")
    def login():
        session["user"] = request.form["user"]
        return redirect("/me")

    @app.get("/me")
    def me():
        return jsonify(user=session.get("user"))

    @app.post("/upload")
    def upload():
        upload = request.files["file"]
        data = upload.read()
        return jsonify(name=upload.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                       note=request.form.get("note"))

    @app.get("/stream")
    def stream():
        def lines():
            for i in range(5):
                yield f"line {i} for {request.args.get('who', 'nobody')}\n"
        return Response(stream_with_context(lines()), mimetype="text/plain")

    @app.get("/download")
    def download():
        return send_file("data.bin", mimetype="application/octet-stream", as_attachment=True,
                         download_name="data.bin")

    @app.get("/teapot")
    def teapot():
        return "short and stout", "418 I'm a teapot"

    return app
