"""The one way the server sends a request to a URL a user gave (webhooks): SSRF-safe.

# SECURITY (../shared/security.md, class 3): the host is resolved here and EVERY address it
# resolves to must be public (``is_global``, not multicast; IPv4-mapped IPv6 judged as IPv4),
# unless the administrator allow-listed it (``ASSAY_WEBHOOK_ALLOW``: CIDRs or host names).
# The connection then goes to the checked address itself (the name is not resolved a second
# time, so DNS rebinding has no gap), TLS still verifies the certificate for the name. No
# redirect is followed (a 3xx is a failed attempt), every socket operation and the whole
# exchange are bounded in time, and at most MAX_RESPONSE_BYTES of the answer are read.
# Deliveries sent in a batch share a Session: connections kept alive per checked address.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 2000
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_BYTES = 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be fetched (bad shape, or a forbidden address); the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case name or address literal (no brackets)
    port: int
    path: str  # path and query


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str
    latency_ms: int
    location: str | None = None


_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def parse(url: object) -> Target:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise Refused(f"url must be an http or https URL of at most {MAX_URL_LENGTH} characters.")
    return _parse(url)


@functools.lru_cache(maxsize=1024)
def _parse(url: str) -> Target:
    """(Cached: a dispatcher sends a batch to a handful of URLs; a refusal is not cached.)"""
    if _SPACE_OR_CONTROL.search(url):
        raise Refused("url must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("url is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("url must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise Refused("url must not carry a user name or password (use the secret).")
    host = (parts.hostname or "").lower()
    if not host:
        raise Refused("url has no host.")
    if parts.fragment:
        raise Refused("url must not have a #fragment.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _allow_list() -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], set[str]]:
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    hosts: set[str] = set()
    for entry in getattr(settings, "WEBHOOK_ALLOW", []):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return networks, hosts


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(target: Target) -> list[IPAddress]:
    """Every address ``target.host`` stands for, each checked; Refused if any is forbidden
    (a name with one private address among public ones is refused as a whole)."""
    networks, hosts = _allow_list()
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise Refused(f"The host {target.host} does not resolve.") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        if not addresses:  # pragma: no cover - getaddrinfo raises instead
            raise Refused(f"The host {target.host} does not resolve.")
    if target.host.rstrip(".") in hosts:
        return addresses
    for address in addresses:
        if not _public(address) and not any(address in network for network in networks):
            shown = target.host if literal is not None else f"{target.host} resolves to {address}, which"
            raise Refused(
                f"{shown} is a loopback, private, link-local or metadata address: webhooks may not reach it "
                "(an administrator can allow it with ASSAY_WEBHOOK_ALLOW)."
            )
    return addresses


def check(url: object) -> Target:
    """Parse and resolve ``url`` now (creation time); Refused with the reason."""
    target = parse(url)
    if target.host.rstrip(".") not in _allow_list()[1]:  # an allow-listed name may not resolve yet
        resolve(target)
    return target


def _connect(address: str, port: int, timeout: float | None) -> socket.socket:
    sock = socket.create_connection((address, port), timeout)
    # http.client writes the headers and the body in two sends: with Nagle's algorithm the
    # body waits for the receiver's (delayed) ACK of the headers, ~40 ms per request on a
    # kept-alive connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, address: IPAddress, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = str(address)

    def connect(self) -> None:
        self.sock = _connect(self._address, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, address: IPAddress, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = str(address)

    def connect(self) -> None:
        raw = _connect(self._address, self.port, self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class Session:
    """Sends POSTs for the batches of one dispatcher run (automations.services.dispatch),
    keeping connections alive between them. Thread-safe: the sender threads share it.

    # SECURITY: every post() parses its URL and resolves its host through resolve() (the
    # SSRF check) before any byte is sent; the answer (addresses or the refusal) is kept for
    # one batch only (new_batch() forgets it), per (host, port): each target is checked once
    # per batch, at its send time.
    # A connection is reused only for the same (scheme, host, port, checked address): a
    # different host name sharing an address is resolved and checked on its own and gets its
    # own connection (its Host header, its TLS name). A connection is kept only when the
    # answer was read to its end within the size cap and the receiver did not ask to close.
    """

    def new_batch(self) -> None:
        """Forget the checked addresses (kept connections stay, each for its checked address):
        every batch resolves and checks its targets again."""
        with self._lock:
            self._resolved.clear()

    def __init__(self, *, keep_alive: bool = True) -> None:
        self.keep_alive = keep_alive
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int, str], list[http.client.HTTPConnection]] = {}
        self._resolved: dict[tuple[str, int], list[IPAddress] | Refused] = {}
        self.opened = 0  # connections made (a test and the benchmark read it)

    def _addresses(self, target: Target) -> list[IPAddress]:
        key = (target.host, target.port)
        with self._lock:
            known = self._resolved.get(key)
        if known is None:
            try:
                known = resolve(target)
            except Refused as exc:
                known = exc
            with self._lock:
                self._resolved[key] = known
        if isinstance(known, Refused):
            raise Refused(str(known))
        return known

    def _take(self, key: tuple[str, str, int, str]) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _give_back(self, key: tuple[str, str, int, str], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(connection)

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float = TIMEOUT_SECONDS) -> Answer:
        """POST ``body`` to ``url`` through the checks above. Raises Refused (forbidden target)
        or OSError / http.client.HTTPException (network trouble, timeout)."""
        target = parse(url)
        address = self._addresses(target)[0]
        key = (target.scheme, target.host, target.port, str(address))
        started = time.monotonic()
        reused = self._take(key) if self.keep_alive else None
        if reused is not None:
            try:
                return self._exchange(key, reused, target, body, headers, started, timeout)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                # An idle connection the receiver closed meanwhile: once more on a new one
                # (the receiver may see the delivery twice: it dedupes by the delivery id).
                pass
        with self._lock:
            self.opened += 1
        connection: http.client.HTTPConnection = (
            _PinnedHTTPS(target, address, timeout)
            if target.scheme == "https"
            else _PinnedHTTP(target, address, timeout)
        )
        return self._exchange(key, connection, target, body, headers, started, timeout)

    def _exchange(
        self,
        key: tuple[str, str, int, str],
        connection: http.client.HTTPConnection,
        target: Target,
        body: bytes,
        headers: dict[str, str],
        started: float,
        timeout: float,
    ) -> Answer:
        deadline = started + timeout
        keep = False
        try:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            sent = headers if self.keep_alive else {**headers, "Connection": "close"}
            connection.request("POST", target.path, body=body, headers=sent)
            response = connection.getresponse()
            received = b""
            while len(received) < MAX_RESPONSE_BYTES and time.monotonic() < deadline:
                chunk = response.read(min(8192, MAX_RESPONSE_BYTES - len(received)))
                if not chunk:
                    break
                received += chunk
            status = response.status
            location = response.getheader("Location")
            keep = self.keep_alive and response.isclosed() and not response.will_close
        finally:
            if keep:
                self._give_back(key, connection)
            else:
                connection.close()
        latency = int((time.monotonic() - started) * 1000)
        return Answer(
            status=status,
            excerpt=received[:EXCERPT_BYTES]
            .decode("utf-8", "replace")
            .replace("\x00", "\ufffd"),  # PostgreSQL text holds no NUL
            latency_ms=latency,
            location=location,
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = TIMEOUT_SECONDS) -> Answer:
    """One POST on a connection of its own (closed after it), through the checks above."""
    return Session(keep_alive=False).post(url, body, headers, timeout=timeout)
