"""Hostile and malformed requests, each with the status evloop must answer.

Every case id names the RFC section (RFC 9112 unless said otherwise) or the
attack it comes from.  Each case is fed whole, one byte at a time, and with
trailing bytes; all three must give the same status, before any event of a
later request.
"""

import pytest
from _http_helpers import WAYS, feed_way, request

from evloop.http import Limits, RequestHead

H = "Host: h"
GET = f"GET / HTTP/1.1\n{H}"
TE = "Transfer-Encoding: chunked"
CASES: list[tuple[str, bytes, int]] = []


def case(case_id: str, raw: bytes | str, status: int) -> None:
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    CASES.append((case_id, raw, status))


def chunked(body: bytes, extra: str = "") -> bytes:
    return request(f"POST / HTTP/1.1\n{H}\n{TE}{extra}", body)


# -- request line (section 3) -----------------------------------------------
case("3-double-sp-after-method", request(f"GET  / HTTP/1.1\n{H}"), 400)
case("3-double-sp-before-version", request(f"GET /  HTTP/1.1\n{H}"), 400)
case("3-tab-separator", request(f"GET\t/ HTTP/1.1\n{H}"), 400)
case("3-tab-before-version", request(f"GET /\tHTTP/1.1\n{H}"), 400)
case("3-leading-sp", request(f" GET / HTTP/1.1\n{H}"), 400)
case("3-leading-tab", request(f"\tGET / HTTP/1.1\n{H}"), 400)
case("3-trailing-sp-after-version", request(f"GET / HTTP/1.1 \n{H}"), 400)
case("3-trailing-tab-after-version", request(f"GET / HTTP/1.1\t\n{H}"), 400)
case("3-missing-target", request(f"GET HTTP/1.1\n{H}"), 400)
case("3-empty-target", request(f"GET  HTTP/1.1\n{H}"), 400)
case("3-method-only", request(f"GET\n{H}"), 400)
case("3-http09-simple-request", request("GET /"), 400)
case("3-four-parts", request(f"GET / x HTTP/1.1\n{H}"), 400)
case("3-nul-before-method", request(f"\x00GET / HTTP/1.1\n{H}"), 400)
case("3-vertical-tab-separator", request(f"GET\x0b/ HTTP/1.1\n{H}"), 400)
case("3-form-feed-separator", request(f"GET\x0c/ HTTP/1.1\n{H}"), 400)
case("3-nbsp-separator", request(f"GET\xa0/ HTTP/1.1\n{H}"), 400)
case("2.2-bare-cr-in-request-line", request(f"GET /\r HTTP/1.1\n{H}"), 400)
case("2.2-bare-cr-ends-request-line", f"GET / HTTP/1.1\r{H}\r\n\r\n", 400)
case("2.2-double-cr-ends-request-line", f"GET / HTTP/1.1\r\r\n{H}\r\n\r\n", 400)
case("2.2-cr-only-line-endings", f"GET / HTTP/1.1\r{H}\r\r\r\n", 400)
# section 2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT (case-sensitive)
for version in [
    "http/1.1", "Http/1.1", "HTTP/1", "HTTP/1.", "HTTP/.1", "HTTP/11", "HTTP/1.10", "HTTP/01.1",
    "HTTP/1.1.1", "HTTP/1,1", "HTTP/a.b", "HTTP/1.x", "HTTP/-1.1", "HTTP/+1.1", "HTTPS/1.1",
    "HTTP1.1", "HTTP\\1.1", "HTTP/1.1\x00", "HTTP/\xb9.\xb9", "HTTP/1.1a", "",
]:
    case(f"2.3-bad-version-{version.encode('unicode_escape').decode() or 'empty'}",
         request(f"GET / {version}\n{H}"), 400)
case("2.3-version-with-inner-space", request(f"GET / HTTP/ 1.1\n{H}"), 400)
case("2.3-version-name-space", request(f"GET / HTTP /1.1\n{H}"), 400)
for version in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9", "HTTP/2.1", "HTTP/0.0"]:
    case(f"rfc9110-15.6.6-505-{version}", request(f"GET / {version}\n{H}"), 505)
case("rfc9113-3.4-h2-preface-505", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)
# section 3.1: method = token
for char in '()<>@,;:\\"/[]?={}':
    case(f"3.1-method-delimiter-{char!r}", request(f"GE{char}T / HTTP/1.1\n{H}"), 400)
for byte in [b"\x00", b"\x01", b"\x7f", b"\x80", b"\xc3\x89"]:
    case(f"3.1-method-byte-{byte.hex()}", request(b"GE" + byte + b"T / HTTP/1.1\nHost: h"), 400)
# section 3.2: request-target forms
case("3.2.4-asterisk-with-get", request(f"GET * HTTP/1.1\n{H}"), 400)
case("3.2.4-asterisk-with-post", request(f"POST * HTTP/1.1\n{H}\nContent-Length: 0"), 400)
case("3.2.4-asterisk-path-with-options", request(f"OPTIONS */x HTTP/1.1\n{H}"), 400)
case("3.2.4-double-asterisk", request(f"OPTIONS ** HTTP/1.1\n{H}"), 400)
case("3.2.3-authority-form-with-get", request(f"GET example.com:80 HTTP/1.1\n{H}"), 400)
case("3.2.3-connect-authority-501", request("CONNECT example.com:443 HTTP/1.1\nHost: example.com:443"), 501)
case("3.2.3-connect-ipv6-authority-501", request("CONNECT [::1]:443 HTTP/1.1\nHost: [::1]:443"), 501)
case("3.2.3-connect-origin-form", request(f"CONNECT / HTTP/1.1\n{H}"), 400)
case("3.2.3-connect-asterisk", request(f"CONNECT * HTTP/1.1\n{H}"), 400)
case("3.2.3-connect-no-port", request(f"CONNECT example.com HTTP/1.1\n{H}"), 400)
case("3.2.3-connect-userinfo", request(f"CONNECT u@example.com:443 HTTP/1.1\n{H}"), 400)
case("3.2-relative-target", request(f"GET index.html HTTP/1.1\n{H}"), 400)
case("3.2-dot-relative-target", request(f"GET ../etc/passwd HTTP/1.1\n{H}"), 400)
case("rfc9110-4.2.4-absolute-userinfo", request(f"GET http://user@h/ HTTP/1.1\n{H}"), 400)
case("rfc9110-4.2.4-absolute-userinfo-password", request(f"GET http://u:p@h/ HTTP/1.1\n{H}"), 400)
case("rfc9110-4.2.1-absolute-empty-host", request(f"GET http:///x HTTP/1.1\n{H}"), 400)
case("3.2.2-absolute-unknown-scheme", request(f"GET ftp://h/x HTTP/1.1\n{H}"), 400)
case("3.2.2-absolute-javascript-scheme", request(f"GET javascript:alert(1) HTTP/1.1\n{H}"), 400)
case("3.2.2-absolute-bad-port", request(f"GET http://h:8x/ HTTP/1.1\n{H}"), 400)
case("3.2.2-absolute-still-needs-host-3.2", request("GET http://h/ HTTP/1.1"), 400)
case("3.2.1-fragment-in-target", request(f"GET /a#frag HTTP/1.1\n{H}"), 400)
case("rfc3986-2.1-bad-pct-encoding", request(f"GET /%zz HTTP/1.1\n{H}"), 400)
case("rfc3986-2.1-truncated-pct", request(f"GET /a%2 HTTP/1.1\n{H}"), 400)
case("rfc3986-2.1-trailing-pct", request(f"GET /a% HTTP/1.1\n{H}"), 400)
case("rfc3986-2.1-pct-in-query", request(f"GET /?q=%G0 HTTP/1.1\n{H}"), 400)
for byte in [b"\x00", b"\x01", b"\x09", b"\x0b", b"\x1f", b"\x7f", b"\x80", b"\xff", b"\xc3\xa9"]:
    case(f"3.2-target-byte-{byte.hex()}", request(b"GET /a" + byte + b"b HTTP/1.1\nHost: h"), 400)
case("3.2-target-nul-truncation-attack", request(f"GET /index.html\x00.php HTTP/1.1\n{H}"), 400)
# section 3 / RFC 9110 15.5.15: request line limit
case("3-request-line-over-limit-414", request("GET /" + "a" * (8192 - 13) + f" HTTP/1.1\n{H}"), 414)
case("3-request-line-way-over-limit-414", request("GET /" + "a" * 20000 + f" HTTP/1.1\n{H}"), 414)
case("3-request-line-no-end-414", "GET /" + "a" * 9000, 414)
case("3-long-method-414", request("A" * 9000 + f" / HTTP/1.1\n{H}"), 414)

# -- field lines (section 5, RFC 9110 5) --------------------------------------
case("5.1-space-before-colon", request(f"GET / HTTP/1.1\n{H}\nX-A : 1"), 400)
case("5.1-tab-before-colon", request(f"GET / HTTP/1.1\n{H}\nX-A\t: 1"), 400)
case("5.1-space-before-colon-host", request("GET / HTTP/1.1\nHost : h"), 400)
case("5.1-space-before-colon-te-smuggling", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding : chunked", b"0\r\n\r\n"), 400)
case("5.1-space-before-colon-cl-smuggling", request(f"POST / HTTP/1.1\n{H}\nContent-Length : 3", b"abc"), 400)
case("5.2-obs-fold-space", request(f"GET / HTTP/1.1\n{H}\nX-A: 1\n 2"), 400)
case("5.2-obs-fold-tab", request(f"GET / HTTP/1.1\n{H}\nX-A: 1\n\t2"), 400)
case("5.2-obs-fold-host", request("GET / HTTP/1.1\nHost:\n h"), 400)
case("5.2-obs-fold-te-smuggling", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding:\n chunked", b"0\r\n\r\n"), 400)
case("5.2-obs-fold-cl", request(f"POST / HTTP/1.1\n{H}\nContent-Length:\n 3", b"abc"), 400)
case("2.2-whitespace-after-request-line", request(f"GET / HTTP/1.1\n {H}"), 400)
case("2.2-tab-after-request-line", request(f"GET / HTTP/1.1\n\t{H}"), 400)
case("5-empty-field-name", request(f"GET / HTTP/1.1\n{H}\n: v"), 400)
case("5-no-colon", request(f"GET / HTTP/1.1\n{H}\nNoColonHere"), 400)
case("5-no-colon-with-space", request(f"GET / HTTP/1.1\n{H}\nX-A 1"), 400)
case("5-name-with-inner-space", request(f"GET / HTTP/1.1\n{H}\nX A: 1"), 400)
case("5-colon-only", request(f"GET / HTTP/1.1\n{H}\n:"), 400)
for char in '()<>@,;\\"/[]?={}':
    case(f"rfc9110-5.1-name-delimiter-{char!r}", request(f"GET / HTTP/1.1\n{H}\nX{char}A: 1"), 400)
for byte in [b"\x00", b"\x01", b"\x0b", b"\x7f", b"\x80", b"\xff"]:
    case(f"rfc9110-5.1-name-byte-{byte.hex()}", request(b"GET / HTTP/1.1\nHost: h\nX" + byte + b"A: 1"), 400)
# RFC 9110 5.5: no CR, LF, NUL or other CTL (HTAB excepted) in values
for code in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]:
    case(f"rfc9110-5.5-value-ctl-{code:02x}",
         request(b"GET / HTTP/1.1\nHost: h\nX-A: a" + bytes([code]) + b"b"), 400)
case("rfc9110-5.5-value-leading-nul", request(f"GET / HTTP/1.1\n{H}\nX-A: \x00"), 400)
case("rfc9110-5.5-value-trailing-nul", request(f"GET / HTTP/1.1\n{H}\nX-A: a\x00"), 400)
case("rfc9110-5.5-nul-in-host", request("GET / HTTP/1.1\nHost: h\x00.evil"), 400)
case("rfc9110-5.5-nul-in-te", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: chunked\x00", b"0\r\n\r\n"), 400)
case("rfc9110-5.5-vt-before-chunked", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: \x0bchunked", b"0\r\n\r\n"), 400)
case("rfc9110-5.5-ff-in-cl", request(f"POST / HTTP/1.1\n{H}\nContent-Length: \x0c3", b"abc"), 400)
case("2.2-bare-cr-in-value", request(f"GET / HTTP/1.1\n{H}\nX-A: a\rb"), 400)
case("2.2-bare-cr-line-ending", f"GET / HTTP/1.1\r\n{H}\rX-A: 1\r\n\r\n", 400)
case("2.2-cr-cr-lf-line-ending", f"GET / HTTP/1.1\r\n{H}\r\r\n\r\n", 400)
case("2.2-bare-cr-final-line", f"GET / HTTP/1.1\r\n{H}\r\n\rX\r\n\r\n", 400)
case("2.2-bare-cr-in-name", request(f"GET / HTTP/1.1\n{H}\nX\rA: 1"), 400)
case("2.2-bare-cr-before-colon", request(f"GET / HTTP/1.1\n{H}\nX-A\r: 1"), 400)

# -- Host (section 3.2) -------------------------------------------------------
case("3.2-missing-host", request("GET / HTTP/1.1"), 400)
case("3.2-missing-host-with-other-fields", request("GET / HTTP/1.1\nX-Host: h\nHostname: h"), 400)
case("3.2-two-hosts", request("GET / HTTP/1.1\nHost: a\nHost: b"), 400)
case("3.2-two-identical-hosts", request("GET / HTTP/1.1\nHost: a\nHost: a"), 400)
case("3.2-two-hosts-case", request("GET / HTTP/1.1\nHost: a\nhOST: a"), 400)
case("3.2-two-hosts-empty-first", request("GET / HTTP/1.1\nHost:\nHost: a"), 400)
case("3.2-two-hosts-http10", request("GET / HTTP/1.0\nHost: a\nHost: b"), 400)
case("3.2-host-list", request("GET / HTTP/1.1\nHost: a, b"), 400)
for host in ["a b", "user@h", "u:p@h", "h/x", "h?x", "h#x", "h\\x", "h<x>", "h:8x", "h:80:80",
             "[::1", "::1", "h%zz", "h%", "h\"x", "caf\xe9", "h\tx", "[::1]x", "h:-1"]:
    case(f"3.2-invalid-host-{host.encode('unicode_escape').decode()}",
         request(f"GET / HTTP/1.1\nHost: {host}"), 400)
case("3.2-invalid-host-http10", request("GET / HTTP/1.0\nHost: a b"), 400)
case("3.2-invalid-host-absolute-form", request("GET http://h/ HTTP/1.1\nHost: a@b"), 400)

# -- message body length (section 6) ------------------------------------------
case("6.3-smuggling-cl-te", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 4\n{TE}", b"0\r\n\r\n"), 400)
case("6.3-smuggling-te-cl", request(f"POST / HTTP/1.1\n{H}\n{TE}\nContent-Length: 4", b"0\r\n\r\n"), 400)
case("6.3-smuggling-cl0-te", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 0\n{TE}", b"0\r\n\r\n"), 400)
case("6.3-smuggling-te-cl-case", request(f"POST / HTTP/1.1\n{H}\ntransfer-encoding: chunked\nCONTENT-LENGTH: 4", b"0\r\n\r\n"), 400)
case("6.3-smuggling-te-bad-cl", request(f"POST / HTTP/1.1\n{H}\n{TE}\nContent-Length: x", b"0\r\n\r\n"), 400)
case("6.1-te-in-http10", request(f"POST / HTTP/1.0\n{TE}", b"0\r\n\r\n"), 400)
case("6.1-te-in-http10-with-host", request(f"POST / HTTP/1.0\n{H}\n{TE}", b"0\r\n\r\n"), 400)
for value in ["xchunked", "chunkedx", "chunked-false", "chunk", "chunk ed", '"chunked"', "chunked, gzip",
              "chunked, identity", "gzip", "identity", "deflate", "x", "chunked;", "chunked\\"]:
    case(f"6.3-te-final-not-chunked-{value}", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: {value}", b"0\r\n\r\n"), 400)
case("6.1-te-empty", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding:", b"0\r\n\r\n"), 400)
case("6.1-te-only-commas", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: , ,", b"0\r\n\r\n"), 400)
case("6.1-te-chunked-twice", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: chunked, chunked", b"0\r\n\r\n"), 400)
case("6.1-te-chunked-twice-two-lines", request(f"POST / HTTP/1.1\n{H}\n{TE}\n{TE}", b"0\r\n\r\n"), 400)
case("6.1-te-chunked-then-other-line", request(f"POST / HTTP/1.1\n{H}\n{TE}\nTransfer-Encoding: x", b"0\r\n\r\n"), 400)
case("7-te-chunked-with-parameter", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: chunked;q=1", b"0\r\n\r\n"), 400)
case("6.1-te-chunked-bad-parameter", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: gzip;=1, chunked", b"0\r\n\r\n"), 400)
for value in ["gzip, chunked", "deflate, chunked", "compress, chunked", "identity, chunked", "x-gzip, chunked",
              "br, chunked", "foo, chunked", "gzip;level=1, chunked"]:
    case(f"6.1-te-unknown-coding-501-{value}", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: {value}", b"0\r\n\r\n"), 501)
case("6.1-te-two-lines-501", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: gzip\n{TE}", b"0\r\n\r\n"), 501)
for value in ["-1", "+5", "5.0", "0x5", "5 5", "5,6", "5, 6", "abc", "", "5a", "1e3", "\xb2", "\xbd",
              "5,", ",5", "5;", "5\t5", "five", "0 x", "' 5'", "5,,5"]:
    case(f"rfc9110-8.6-bad-content-length-{value.encode('unicode_escape').decode() or 'empty'}",
         request(f"POST / HTTP/1.1\n{H}\nContent-Length: {value}", b"abcde"), 400)
case("6.3-differing-cl-lines", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 5\nContent-Length: 6", b"abcdef"), 400)
case("6.3-differing-cl-lines-case", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 5\ncontent-length: 50", b"abcdef"), 400)
case("6.3-cl-line-and-empty-cl", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 5\nContent-Length:", b"abcdef"), 400)
case("6.3-differing-cl-list-with-huge", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 5, 99999999999999999999", b"abcde"), 400)
for value in ["1073741825", "2000000000", "4294967301", "9223372036854775807", "9223372036854775808",
              "18446744073709551616", "18446744073709551621", "99999999999999999999", "9" * 1000]:
    case(f"6.3-content-length-too-large-{value[:24]}",
         request(f"POST / HTTP/1.1\n{H}\nContent-Length: {value}", b"abcde"), 413)
case("6.3-content-length-too-large-list", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 2000000000, 2000000000"), 413)
# More identical values than MAX_CONTENT_LENGTH_VALUES (8): refused before they are split.
case("rfc9110-8.6-cl-list-too-long", request(f"POST / HTTP/1.1\n{H}\nContent-Length: {', '.join(['5'] * 9)}", b"abcde"),
     400)
case("rfc9110-8.6-cl-lines-too-many", request(f"POST / HTTP/1.1\n{H}\n" + "\n".join(["Content-Length: 5"] * 9),
                                              b"abcde"), 400)

# -- chunked framing (section 7.1) ---------------------------------------------
for size in ["0x5", "+5", "-5", "5_0", "_5", " 5", "5 ", "5\t", "", "g", "5g", "5\x00", "\x005", "5.0",
             "5,5", "5 5", "0x0", "x", ";", "5:", "\xb5"]:
    case(f"7.1-bad-chunk-size-{size.encode('unicode_escape').decode() or 'empty'}",
         chunked(size.encode("latin-1") + b"\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1-chunk-size-17-digits", chunked(b"00000000000000005\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1-chunk-size-overflow-2to64", chunked(b"10000000000000000\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1-chunk-size-overflow-wraps-to-5", chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1-chunk-size-many-digits", chunked(b"f" * 100 + b"\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1-chunk-size-16-digits-413", chunked(b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 413)
case("7.1-chunk-size-over-max-body-413", chunked(b"40000001\r\nhello\r\n0\r\n\r\n"), 413)
case("7.1-bare-lf-after-size", chunked(b"5\nhello\r\n0\r\n\r\n"), 400)
case("7.1-bare-lf-after-data", chunked(b"5\r\nhello\n0\r\n\r\n"), 400)
case("7.1-bare-lf-after-last-chunk", chunked(b"5\r\nhello\r\n0\n\r\n"), 400)
case("7.1-bare-lf-ends-body", chunked(b"5\r\nhello\r\n0\r\n\n"), 400)
case("7.1-bare-lf-in-trailer", chunked(b"0\r\nX-T: 1\n\r\n"), 400)
case("7.1-bare-lf-ends-trailers", chunked(b"0\r\nX-T: 1\r\n\n"), 400)
case("7.1-bare-cr-in-trailer", chunked(b"0\r\nX-T: 1\rX: 2\r\n\r\n"), 400)
case("7.1-bare-cr-after-size", chunked(b"5\rhello\r\n0\r\n\r\n"), 400)
case("7.1-cr-cr-lf-after-size", chunked(b"5\r\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1-missing-crlf-after-data", chunked(b"5\r\nhelloX\r\n0\r\n\r\n"), 400)
case("7.1-data-longer-than-size", chunked(b"5\r\nhelloworld\r\n0\r\n\r\n"), 400)
case("7.1-data-shorter-than-size", chunked(b"5\r\nhell\r\n0\r\n\r\n"), 400)
case("7.1-missing-crlf-before-next-size", chunked(b"5\r\nhello0\r\n\r\n"), 400)
case("7.1-cr-only-after-data", chunked(b"5\r\nhello\r0\r\n\r\n"), 400)
case("7.1-lf-cr-after-data", chunked(b"5\r\nhello\n\r0\r\n\r\n"), 400)
case("7.1-empty-line-instead-of-size", chunked(b"\r\n5\r\nhello\r\n0\r\n\r\n"), 400)
for ext in [";", ";=v", "; =v", ";a=", ';a="x', ";a b", ";a=b c", ";a=\x01", ';a="\x01"', ";a=b;", ";a==b",
            ";a=(b)", ";\x00", ";a=b,c=d", ",a"]:
    case(f"7.1.1-bad-chunk-ext-{ext.encode('unicode_escape').decode()}",
         chunked(b"5" + ext.encode("latin-1") + b"\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1.1-chunk-ext-too-long", chunked(b"5;a=" + b"b" * 4100 + b"\r\nhello\r\n0\r\n\r\n"), 400)
case("7.1.1-chunk-ext-too-long-no-crlf", chunked(b"5;a=" + b"b" * 5000), 400)
case("7.1.1-chunk-ext-bare-lf", chunked(b"5;a=b\nhello\r\n0\r\n\r\n"), 400)
# Each line within its 4 KiB, five of them past the body's 16 KiB (Node.js, CVE-2024-22019).
case("7.1.1-chunk-ext-total-too-long", chunked((b"1;a=" + b"b" * 4000 + b"\r\nx\r\n") * 5 + b"0\r\n\r\n"), 413)
case("7.1.2-trailer-obs-fold", chunked(b"0\r\nX-T: 1\r\n 2\r\n\r\n"), 400)
case("7.1.2-trailer-nul", chunked(b"0\r\nX-T: a\x00b\r\n\r\n"), 400)
case("7.1.2-trailer-space-before-colon", chunked(b"0\r\nX-T : 1\r\n\r\n"), 400)
case("7.1.2-trailer-no-colon", chunked(b"0\r\nX-T\r\n\r\n"), 400)
case("7.1.2-trailer-empty-name", chunked(b"0\r\n: v\r\n\r\n"), 400)
case("7.1.2-trailer-bad-name", chunked(b"0\r\nX(T): v\r\n\r\n"), 400)
case("7.1.2-too-many-trailers-431", chunked(b"0\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n"), 431)
case("7.1.2-trailers-too-large-431", chunked(b"0\r\nX-T: " + b"v" * 70000 + b"\r\n\r\n"), 431)
case("7.1.2-trailers-too-large-unterminated-431", chunked(b"0\r\nX-T: " + b"v" * 70000), 431)

# -- limits (RFC 9110 15.5.14, RFC 6585 5) -------------------------------------
case("rfc6585-5-101-fields-431", request(f"GET / HTTP/1.1\n{H}\n" + "\n".join(f"X-{i}: v" for i in range(100))), 431)
case("rfc6585-5-1000-fields-431", request(f"GET / HTTP/1.1\n{H}\n" + "\n".join(f"X-{i}: v" for i in range(1000))), 431)
case("rfc6585-5-many-empty-named-fields-431", request(f"GET / HTTP/1.1\n{H}\n" + "\n".join("X:" for _ in range(200))), 431)
case("rfc6585-5-huge-field-431", request(f"GET / HTTP/1.1\n{H}\nX-Big: " + "v" * 70000), 431)
case("rfc6585-5-head-over-64k-431", request(f"GET / HTTP/1.1\n{H}\n" + "\n".join(f"X-{i}: " + "v" * 700 for i in range(95))), 431)
case("rfc6585-5-unterminated-head-431", f"GET / HTTP/1.1\r\n{H}\r\nX-Big: " + "v" * 70000, 431)
case("rfc6585-5-huge-field-bare-lf-431", f"GET / HTTP/1.1\n{H}\nX-Big: " + "v" * 70000 + "\n\n", 431)

# -- expectations (RFC 9110 10.1.1) ----------------------------------------------
case("rfc9110-10.1.1-unknown-expectation-417", request(f"POST / HTTP/1.1\n{H}\nExpect: 200-ok\nContent-Length: 1", b"x"), 417)
case("rfc9110-10.1.1-expectation-list-417", request(f"POST / HTTP/1.1\n{H}\nExpect: 100-continue, x\nContent-Length: 1", b"x"), 417)
case("rfc9110-10.1.1-expect-with-param-417", request(f"POST / HTTP/1.1\n{H}\nExpect: 100-continue;a=b\nContent-Length: 1", b"x"), 417)

# -- assorted attacks ------------------------------------------------------------
case("smuggling-cl-te-classic",
     request(f"POST / HTTP/1.1\n{H}\nContent-Length: 13\n{TE}", b"0\r\n\r\nSMUGGLED"), 400)
case("smuggling-te-te-obfuscated-second-line",
     request(f"POST / HTTP/1.1\n{H}\n{TE}\nTransfer-encoding: cow", b"5\r\nhello\r\n0\r\n\r\n"), 400)
case("smuggling-te-tab-value", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding:\tchunked\nContent-Length: 3", b"abc"), 400)
case("smuggling-te-underscore-name-plus-cl",
     request(f"POST / HTTP/1.1\n{H}\nTransfer_Encoding: chunked\nContent-Length: 5\nContent-Length: 6", b"abcdef"), 400)
case("smuggling-te-xchunked-plus-cl", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: xchunked\nContent-Length: 3", b"abc"), 400)
case("smuggling-te-lf-injected", f"POST / HTTP/1.1\r\n{H}\r\nX: y\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400)
case("smuggling-cl-obs-fold-digit", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 1\n 0", b"a" * 10), 400)
case("smuggling-bare-cr-hides-te", f"POST / HTTP/1.1\r\n{H}\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
case("smuggling-nul-hides-te", f"POST / HTTP/1.1\r\n{H}\r\nX: a\x00\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
case("smuggling-chunk-size-0x-prefix-attack", chunked(b"0x10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"), 400)
case("smuggling-chunk-ext-lf-attack", chunked(b"2;\nxx\r\n4c\r\n0\r\n\r\n"), 400)
case("smuggling-chunk-data-lf-terminated", chunked(b"2\r\nxx\n0\r\n\r\n"), 400)
case("header-injection-crlf-in-value", f"GET / HTTP/1.1\r\n{H}\r\nX: a\r\r\nInjected: 1\r\n\r\n", 400)
case("response-splitting-lf-in-target", request(f"GET /a\x0aX: b HTTP/1.1\n{H}"), 400)
case("http09-downgrade-attack", b"GET /\r\n\r\n", 400)
case("ssl-on-plain-port", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400)
case("binary-garbage", b"\xff\xfe\xfd\x00\x01\r\n\r\n", 400)

ACCEPTED = [
    ("6.1-te-chunked-uppercase", chunked(b"0\r\n\r\n").replace(b"chunked", b"CHUNKED")),
    ("rfc9110-5.6.1-te-empty-elements", request(f"POST / HTTP/1.1\n{H}\nTransfer-Encoding: ,chunked", b"0\r\n\r\n")),
    ("rfc9110-8.6-cl-identical-list", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 3,3, 3", b"abc")),
    ("rfc9110-8.6-cl-identical-leading-zeros", request(f"POST / HTTP/1.1\n{H}\nContent-Length: 3\nContent-Length: 003", b"abc")),
    ("7.1.1-chunk-ext-bws", chunked(b"3 ; a = b ;c\t=\t\"d\"\r\nabc\r\n0\r\n\r\n")),
    ("7.1-chunk-size-uppercase-hex", chunked(b"A\r\n0123456789\r\n0\r\n\r\n")),
    ("7.1-last-chunk-many-zeros", chunked(b"0000\r\n\r\n")),
    ("2.2-bare-lf-head", b"GET / HTTP/1.1\nHost: h\n\n"),
    ("2.2-leading-crlf", b"\r\n" + request(GET)),
    ("3.2.4-options-asterisk", request(f"OPTIONS * HTTP/1.1\n{H}")),
    ("rfc9110-2.5-minor-version-upgrade", request(f"GET / HTTP/1.7\n{H}")),
    ("3.2-empty-host", request("GET / HTTP/1.1\nHost:")),
    ("5.5-obs-text-value", request(b"GET / HTTP/1.1\nHost: h\nX: \x80\xff")),
]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("raw,status", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_request_rejected(way, raw, status):
    events, error, conn = feed_way(way, raw)
    assert error is not None, f"accepted: {events!r}"
    assert error.status == status, error.reason
    assert error.reason
    # Nothing of a second request is ever produced before the error.
    assert sum(isinstance(e, RequestHead) for e in events) <= 1
    assert not conn.keep_alive


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("raw", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_tricky_but_valid_request_accepted(way, raw):
    events, error, _ = feed_way(way, raw)
    assert error is None
    assert isinstance(events[0], RequestHead)


@pytest.mark.parametrize("way", WAYS)
def test_chunked_total_over_max_body_413(way):
    # 7.1: the running total is checked at each size line, before the data.
    # Small limits keep the one-byte-at-a-time way fast.
    limits = Limits(max_body_bytes=1000)
    raw = chunked((b"1f4\r\n" + b"x" * 500 + b"\r\n") * 2 + b"1\r\nx\r\n0\r\n\r\n")
    _, error, _ = feed_way(way, raw, limits)
    assert error.status == 413
    at_limit = chunked((b"1f4\r\n" + b"x" * 500 + b"\r\n") * 2 + b"0\r\n\r\n")
    assert feed_way(way, at_limit, limits)[1] is None


def test_corpus_is_large_and_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 200
