"""A falcon app: JSON media in and out, errors as falcon raises them, a custom reason phrase."""

import falcon


class Items:
    def __init__(self):
        self.items = {}

    def on_get(self, req, resp, item_id):
        if item_id not in self.items:
            raise falcon.HTTPNotFound(title="no such item", description=item_id)
        resp.media = {"id": item_id, "value": self.items[item_id]}

    def on_put(self, req, resp, item_id):
        self.items[item_id] = req.get_media()
        resp.status = "201 Created Just Now"
        resp.media = {"stored": item_id}
        resp.set_header("X-Item", item_id)


def create():
    app = falcon.App()
    app.add_route("/items/{item_id}", Items())
    return app
