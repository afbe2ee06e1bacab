"""A bottle app: path parameters, a form to JSON, static files, a redirect, a custom status."""

import bottle

application = bottle.Bottle()


@application.get("/hello/<name>")
def hello(name):
    return f"hello {name}"


@application.post("/form")
def form():
    return {"fields": dict(bottle.request.forms), "query": dict(bottle.request.query)}


@application.get("/files/<path:path>")
def files(path):
    return bottle.static_file(path, root="assets")


@application.get("/go")
def go():
    bottle.redirect("/hello/redirected")


@application.get("/custom")
def custom():
    return bottle.HTTPResponse("custom body", status="299 Very Custom")
