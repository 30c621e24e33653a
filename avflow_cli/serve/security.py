"""Who may talk to ``avflow serve``, and the headers every answer carries (docs/serve.md, "Security").

* **Host** (DNS rebinding): a page on ``evil.example`` whose name is made to resolve to this
  machine would otherwise reach the server as same-origin. Every request — HTTP and WebSocket —
  must name a host this server answers to (:class:`HostPolicy`): the loopback names, the address
  it is bound to, any IP address when bound to all interfaces (a rebinding attack needs a *name*),
  and the names given with ``--allow-host``. Others get ``400``.
* **Origin** (cross-site use): a browser sends ``Origin`` with every WebSocket handshake and with
  POST/DELETE; it must equal the Host the request was sent to (:func:`same_origin`). A WebSocket
  from another origin is accepted only to be closed at once with 1008 (policy violation) and the
  reason; an HTTP request gets ``403``. Clients that send no Origin (scripts, curl) are not browsers
  acting for another site and pass.
* **Headers** (:func:`security_headers`): ``X-Content-Type-Options: nosniff``, a Content-Security-
  Policy that allows only this server's own scripts, styles, images and connections (no inline
  code: the page's scripts and styles live in ``static/``), ``frame-ancestors 'none'`` +
  ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and ``Cross-Origin-Resource-Policy:
  same-origin`` — on every answer: the page, the API, static files and errors.

:func:`require_unicode` refuses (422) client text that is not valid Unicode, before any job exists.

:class:`SecurityMiddleware` applies all of it to every route of the app, so a new endpoint (e.g. a
WebSocket in another module) is covered without calling anything; :func:`websocket_refusal` and
:func:`security_headers` are there for code that answers outside the app's middleware.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
POLICY_VIOLATION = 1008  # WebSocket close code
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")  # a well-formed Host header


def require_unicode(value: str, what: str) -> None:
    """422 for text that is not valid Unicode (a lone surrogate from a JSON ``\\ud800`` escape): it
    could not be written back as UTF-8, so it is refused before any job exists."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise HTTPException(422, f"{what} is not valid Unicode: a lone surrogate U+{ord(value[err.start]):04X} at "
                                 f"character {err.start} (send UTF-8 text)") from None


def split_host(host_header: str) -> tuple[str, str] | None:
    """``("name", ":port")`` of a well-formed Host header (names lower-cased, IPv6 without
    brackets), else None."""
    found = _HOST_RE.fullmatch(host_header.strip())
    if found is None:
        return None
    name = found.group(1).lower()
    return name[1:-1] if name.startswith("[") else name, found.group(2) or ""


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """The host names this server answers to (see the module docstring)."""

    bound: str = "127.0.0.1"  # --host
    allowed: tuple[str, ...] = ()  # --allow-host (names or addresses)
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        given = {h.strip().lower().strip("[]") for h in (*LOOPBACK_NAMES, self.bound, *self.allowed) if h.strip()}
        object.__setattr__(self, "names", frozenset(given))

    def allows(self, host_header: str | None) -> bool:
        """Whether a request that names ``host_header`` (the Host header) is for this server."""
        if not host_header:
            return False
        parts = split_host(host_header)
        if parts is None:
            return False
        name = parts[0]
        if name in self.names:
            return True
        return self.bound in WILDCARD_ADDRESSES and _is_ip(name)

    def refusal(self, host_header: str | None, short: bool = False) -> str:
        """One line for a refused Host; ``short`` fits a WebSocket close reason (≤ 123 bytes)."""
        shown = (host_header or "")[:40]
        if short:
            return f"Host {shown!r} refused (DNS rebinding guard; see --allow-host)"
        return (f"Host {shown!r} refused (DNS rebinding guard); this server answers to "
                f"{', '.join(sorted(self.names))} and names given with --allow-host")


def same_origin(origin: str, host_header: str) -> bool:
    """Whether a browser's ``Origin`` (``scheme://host[:port]``) is the server the request was
    sent to (its Host header), default ports included."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    target = split_host(host_header)
    if target is None:
        return False
    default = 443 if parts.scheme == "https" else 80
    target_port = int(target[1][1:]) if target[1] else default
    return parts.hostname.lower() == target[0] and (port or default) == target_port


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def websocket_refusal(scope: Scope, policy: HostPolicy) -> str | None:
    """Why a WebSocket handshake (or an unsafe HTTP request) must be refused, or None: a Host this
    server does not answer to, or an Origin that is not the Host. Short enough for a close reason."""
    host = _header(scope, b"host")
    if not policy.allows(host):
        return policy.refusal(host, short=True)
    origin = _header(scope, b"origin")
    if origin is not None and not same_origin(origin, host or ""):
        return f"cross-origin request refused: Origin {origin[:40]!r} is not this server"
    return None


def content_security_policy(host_header: str | None = None) -> str:
    """Only this server's own scripts, styles, media and connections; no inline code, no framing."""
    connect = "'self'"
    parts = split_host(host_header) if host_header else None
    if parts is not None:  # 'self' covers ws(s) in current browsers; naming them helps older ones
        netloc = (f"[{parts[0]}]" if ":" in parts[0] else parts[0]) + parts[1]
        connect += f" ws://{netloc} wss://{netloc}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"media-src 'self' blob:; connect-src {connect}; worker-src 'self' blob:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def security_headers(host_header: str | None = None) -> dict[str, str]:
    """The headers every answer of the server carries (see the module docstring)."""
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": content_security_policy(host_header),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def _with_headers(headers: Iterable[tuple[bytes, bytes]], extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
    names = {k.lower().encode() for k in extra}
    kept = [(k, v) for k, v in headers if k.lower() not in names]
    return kept + [(k.lower().encode(), v.encode()) for k, v in extra.items()]


class SecurityMiddleware:
    """ASGI middleware: Host and Origin checks on every request, security headers on every answer."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            reason = websocket_refusal(scope, self.policy)
            if reason is not None:
                await _refuse_websocket(receive, send, reason)
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if not self.policy.allows(host):
            await _send_error(send, 400, self.policy.refusal(host), None)
            return
        if scope["method"] in UNSAFE_METHODS and _header(scope, b"origin") is not None:
            reason = websocket_refusal(scope, self.policy)
            if reason is not None:
                await _send_error(send, 403, reason, host)
                return
        extra = security_headers(host)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _with_headers(message.get("headers", []), extra)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse_websocket(receive: Receive, send: Send, reason: str) -> None:
    """Accept, then close with 1008 and the reason (a refused handshake would give the client
    only an HTTP status, no reason)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    reason = reason.encode()[:123].decode(errors="ignore")  # a close reason has at most 123 bytes
    await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": reason})


async def _send_error(send: Send, status: int, message: str, host: str | None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = _with_headers([(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                            security_headers(host if host is not None and split_host(host) else None))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
