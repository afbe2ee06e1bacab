"""Browser-sized request heads that differ on every request, for wrk (Lua) and for Python clients.

One template, two renderings of it: ``lua_script()`` is the wrk script of the
``browser-unique`` scenario (``run.py``) and ``head(n, host)`` the same bytes
for request number ``n`` from Python (``load/server_memory.py``). Request ``n``
fetches ``/items/ID`` (ID: ``n`` in hex) with a query naming the request before
it, a ``Referer`` on that one and a cookie carrying ID, so the path, the query,
the referer and the cookie are new on every request: no server can answer it
from a cache of heads, targets or cookies it has seen. The other fields are
what Chrome sends with a same-origin fetch: 12 fields in all, a cookie of about
195 bytes, about 730 bytes with wrk's IDs (8 or 9 hex digits; Chrome's own
``User-Agent`` and client hints are long, so 12 such fields come to more than
the 620 bytes of issue 20's first measurement).

wrk: one counter per thread (its own Lua state), started at the first script
argument (``wrk ... URL -- START``), so a warm-up run and the measured run
after it send different heads; each request costs three ``string.format`` calls,
not a random byte at a time, so wrk is not the bottleneck.
"""

import json
import re

TEMPLATE = (
    "GET /items/%(id)s?after=%(prev)s HTTP/1.1\r\n"
    "Host: %(host)s\r\n"
    "Connection: keep-alive\r\n"
    'sec-ch-ua: "Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"\r\n'
    "sec-ch-ua-mobile: ?0\r\n"
    'sec-ch-ua-platform: "Linux"\r\n'
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Referer: http://%(host)s/items/%(prev)s\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: _ga=GA1.1.%(id)s.1701791234; _gid=GA1.1.1290531766.1701791234; "
    "session=8f14e45fceea167a5a36dedd4bea2543.%(id)s; csrftoken=Xq3vT9bLm2WkRz7YpN4cHs8dFa6Ju1Eo; "
    "theme=dark; lang=en-US; consent=ok\r\n"
    "\r\n"
)
_FIELD = re.compile(r"%\((\w+)\)s")


def values(n, host):
    """The template's values for request number ``n``: its ID and the one before, in hex."""
    return {"id": f"{n:x}", "prev": f"{n - 1:x}", "host": host}


def head(n, host):
    """The head of request number ``n`` to ``host`` (``127.0.0.1:PORT``), as bytes."""
    return (TEMPLATE % values(n, host)).encode()


def lua_script():
    """The wrk script: ``request()`` renders the template for the thread's next number."""
    assert TEMPLATE.isascii()
    names = _FIELD.findall(TEMPLATE)
    lua_template = json.dumps(_FIELD.sub("%s", TEMPLATE))  # ASCII only: JSON's escapes are Lua's
    return f"""
local template = {lua_template}
local n = 0
local host
init = function(args)
  n = tonumber(args[1]) or 0
  host = wrk.headers["Host"]
end
request = function()
  n = n + 1
  local id, prev = string.format("%x", n), string.format("%x", n - 1)
  return string.format(template, {", ".join(names)})
end
"""
