"""The SSRF guard of every fetch: which addresses may be reached, and a deadline for each URL.

Each hop (the first request and every redirect) resolves the host name, refuses addresses on the
server's own network (loopback, private, link-local including cloud metadata at 169.254.169.254,
multicast, reserved) unless allowed, and then connects to exactly the address it checked, so a name
that resolves differently a second time (DNS rebinding) cannot slip through.
"""
from __future__ import annotations

import ipaddress
import math
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .records import ArticleError


class UrlRefused(ArticleError):
    """A URL that may not be fetched (scheme, or an address on the server's own network); nothing was sent."""


class FetchError(ArticleError):
    """A URL that could not be fetched or is not what was asked for; the message says which."""


URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """Anything with a scheme (http://, file://, ftp://…): the guard then says which ones are fetched."""
    return bool(URL_SCHEME.match(str(text)))


def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name stands for; "localhost" and names under ".localhost" are loopback (RFC 6761)."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise FetchError(f"cannot resolve the host name {host!r} ({err})") from err
    return list(dict.fromkeys(info[4][0] for info in infos))


def refusal(address: str) -> str | None:
    """Why an address is on the server's own network (and refused by default), or None for a public one."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip == ipaddress.ip_address("169.254.169.254") or ip == ipaddress.ip_address("fd00:ec2::254"):
        return "a cloud metadata address"
    for kind in ("unspecified", "loopback", "link_local", "private", "multicast", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind.replace('_', '-')} address"
    return None if ip.is_global else "not a public address"


@dataclass(frozen=True)
class UrlPolicy:
    """Which addresses may be fetched: public ones, plus private ones when the operator allows them
    (`QA_ALLOW_PRIVATE_URLS=1`, `--allow-private-urls`), plus `allowed` networks (tests: 127.0.0.1 only)."""

    allow_private: bool = False
    allowed: tuple[str, ...] = ()  # networks, such as "127.0.0.1/32"

    def address(self, url: str) -> tuple[str, str, int]:
        """(address to connect to, host name, port) for a URL, or UrlRefused before anything is sent."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs can be added, not {parts.scheme or 'a bare path'}:")
        if not parts.hostname:
            raise UrlRefused("the URL has no host name")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as err:
            raise UrlRefused(f"the URL's port is not valid ({err})") from err
        addresses = resolve(parts.hostname, port)
        for address in addresses:  # every address: a name with one public and one private address is refused
            why = refusal(address)
            if why and not self.allow_private and not self._allowed(address):
                named = f"{address} is" if parts.hostname.strip("[]") == address else f"{parts.hostname} is {address},"
                raise UrlRefused(f"{named} {why} on the server's own network; refused "
                                 f"(set QA_ALLOW_PRIVATE_URLS=1 or --allow-private-urls to allow it)")
        return addresses[0], parts.hostname, port

    def _allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        return any(ip in ipaddress.ip_network(net) for net in self.allowed)


class Deadline:
    """The moment the current URL's time is up: every connect, read and write waits at most until then,
    so a server that drips a byte a second (each read well inside the per-read timeout) is cut off too."""

    def __init__(self):
        self.at = math.inf

    def left(self, timeout: float | None) -> float:
        import httpcore

        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise httpcore.ReadTimeout("the deadline for this URL passed")
        return remaining if timeout is None else min(timeout, remaining)

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


def _deadline_transport(deadline: Deadline):
    """httpx's transport on a network backend whose streams obey `deadline`."""
    import httpcore
    import httpx

    class Stream(httpcore.NetworkStream):
        def __init__(self, stream):
            self.stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self.stream.read(max_bytes, deadline.left(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.stream.write(buffer, deadline.left(timeout))

        def close(self) -> None:
            self.stream.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return Stream(self.stream.start_tls(ssl_context, server_hostname, deadline.left(timeout)))

        def get_extra_info(self, info):
            return self.stream.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self):
            self.backend = httpcore.SyncBackend()

        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            return Stream(self.backend.connect_tcp(host, port, deadline.left(timeout), local_address, socket_options))

        def sleep(self, seconds: float) -> None:
            self.backend.sleep(seconds)

    class Transport(httpx.HTTPTransport):
        def __init__(self):
            super().__init__()
            self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=Backend())

    return Transport()
