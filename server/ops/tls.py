"""TLS served directly (https:// and wss://) for sites without a reverse proxy."""
from __future__ import annotations

import ssl
from pathlib import Path

from server.config import Config


class TLSConfigError(ValueError):
    """The certificate settings are incomplete or unreadable."""


def server_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """A server context with the library's modern defaults, TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load the TLS certificate {certfile} / key {keyfile}: {exc}") from None
    return context


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The context to serve with, or None for plain http:// and ws://; both files or neither."""
    if config.certfile is None and config.keyfile is None:
        return None
    if config.certfile is None or config.keyfile is None:
        raise TLSConfigError("TLS needs both certfile and keyfile")
    return server_context(config.certfile, config.keyfile)
