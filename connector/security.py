"""Small security pieces the settings and the admin share: the Content-Security-Policy header and
the check of outbound URLs an owner types (store API, Sage server, OAuth token URL)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` (settings.CONTENT_SECURITY_POLICY) to HTML pages: the admin
    renders tenant-supplied text (store names, order payloads), so a script that slipped past
    escaping still could not run or send anything elsewhere."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", policy)
        return response


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address.is_loopback or address.is_link_local or address.is_private or address.is_reserved
            or address.is_multicast or address.is_unspecified)


def _addresses(host: str) -> list:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # unresolvable now: the request itself will fail; nothing internal is reached
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_outbound_url(url: str) -> None:
    """ValidationError unless ``url`` is https to a public address. With
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS (the demo, the tests) plain http and internal hosts pass."""
    if not url:
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").strip()
    if not host:
        raise ValidationError("Enter a full URL, e.g. https://api.example.com.")
    if settings.OUTBOUND_ALLOW_PRIVATE_HOSTS:
        return
    if parts.scheme != "https":
        raise ValidationError("Use an https:// URL: credentials are sent to it.")
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise ValidationError(f"{host} is this server itself; enter the service's public address.")
    for address in _addresses(host):
        if _is_internal(address):
            raise ValidationError(f"{host} points to an internal address ({address}); credentials are sent only "
                                  f"to public addresses.")


def url_host(url: str) -> str:
    return (urlsplit(url or "").hostname or "").lower()


def client_ip(request) -> str | None:
    """The calling client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies in front the
    address the outermost trusted proxy saw (X-Forwarded-For is otherwise written by the client)."""
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= count:
            return hops[-count]
    # None, not a placeholder: django-axes stores it in an IP address column (PostgreSQL's inet),
    # and requests made in process (the test client's force_login) have no address at all.
    return request.META.get("REMOTE_ADDR") or None
