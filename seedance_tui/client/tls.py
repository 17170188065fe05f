"""One TLS context for every client of the process.

httpx builds a fresh `ssl.SSLContext` for each client it makes (the certifi bundle
loaded again: 30-100 ms here), and the dashboard makes three right after its first frame
(the API client, the auto-downloader's and the frame loader's media clients). An
`SSLContext` may be shared by any number of connections and clients, so they share this
one: made once, when the first client is built, exactly as httpx makes its default
(`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured, else certifi's bundle; verification on).
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()


__all__ = ["shared_tls_context"]
