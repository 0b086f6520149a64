"""Where orderflow may send a request (and with it a token, a key or a password): one policy for the
base URLs of channels, carriers and FBA, the SFTP hosts of suppliers and the label files carriers point to.

- ``https://`` everywhere; plain ``http://`` only to loopback, and loopback only when the local runtime
  allows it (``ORDERFLOW_SANDBOX_LOOPBACK=1``, set by ``orderflow local`` and the tests' fakes). On AWS
  ``127.0.0.1``/``localhost`` is the Lambda runtime API, never a shop.
- Addresses that are private, link-local (``169.254.169.254``: instance metadata), multicast, reserved or
  unspecified are refused everywhere, when given as an IP literal. (A public name that resolves to such an
  address is not looked up here: Lambda without a VPC reaches no private network anyway.)
- Label files: only from the hosts the carrier serves them from (:data:`LABEL_HOSTS`), each redirect
  checked again.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from orderflow import config

#: Set to ``1`` by the local runtime: loopback servers (the sandbox shops, carrier, SFTP and FBA servers).
LOOPBACK_ENV = config.SANDBOX_LOOPBACK.name
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

#: Hosts a carrier's label files may come from (suffix match), by carrier type.
LABEL_HOSTS: dict[str, tuple[str, ...]] = {
    "easypost": ("easypost.com", "easypost-files.s3.amazonaws.com", "easypost-files.s3-us-west-2.amazonaws.com",
                 "easypost-files.s3.us-west-2.amazonaws.com"),
    "shippo": ("goshippo.com", "shippo-delivery.s3.amazonaws.com", "shippo-delivery-east.s3.amazonaws.com"),
    "sandbox": (),
}


def loopback_allowed() -> bool:
    return os.environ.get(LOOPBACK_ENV) == "1"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    ip = _ip(host)
    return host.lower().rstrip(".") in LOOPBACK_NAMES if ip is None else ip.is_loopback


def check_host(host: str) -> str:
    """Raise ValueError unless requests may go to ``host`` (see the module's rules)."""
    if is_loopback(host):
        if not loopback_allowed():
            raise ValueError(f"{host} is this machine (loopback): only the local stack's sandbox servers live "
                             "there; give the server's public name")
        return host
    ip = _ip(host)
    if ip is not None and (ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
                           or ip.is_unspecified or getattr(ip, "ipv4_mapped", None) is not None):
        raise ValueError(f"{host} is a private, link-local or reserved address: give the server's public name")
    return host


def check_base_url(value: str, example: str = "https://api.example.com") -> str:
    """An API base URL: ``https://`` to a public host (``http://`` only to loopback on the local stack),
    no query, fragment or credentials in it. Returns it without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, e.g. {example}")
    check_host(parts.hostname)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("must use https (plain http only for the local stack's sandbox servers on 127.0.0.1)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not carry a query, a fragment or credentials; credentials go in their own field")
    return value.rstrip("/")


def check_label_url(url: str, carrier_type: str, base_url: str | None = None) -> str:
    """A label file's URL from a carrier's answer: https from the carrier's label hosts (or its own API
    host), or the local sandbox carrier on loopback. Raises ValueError otherwise."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise ValueError("the label URL has no host (or carries credentials)")
    check_host(host)
    if is_loopback(host):
        return url  # the local sandbox carrier (check_host allowed loopback)
    if parts.scheme != "https":
        raise ValueError("the label URL is not https")
    own = (urlsplit(base_url).hostname or "").lower() if base_url else ""
    allowed = LABEL_HOSTS.get(str(carrier_type), ())
    if host == own or any(host == a.lstrip(".") or host.endswith("." + a.lstrip(".")) for a in allowed):
        return url
    raise ValueError(f"label files of {carrier_type} come from {', '.join(a.lstrip('.') for a in allowed) or own}, "
                     f"not {host}")
