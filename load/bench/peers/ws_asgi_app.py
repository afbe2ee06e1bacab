"""ASGI WebSocket echo for uvicorn (``--ws websockets`` or ``--ws wsproto``): ``/ws/echo`` as evloop-demo serves it.

Every other scope (lifespan, HTTP) goes to ``asgi_app``.
"""

from asgi_app import app as http_app


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        await http_app(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:  # websocket.disconnect
            return
