"""What every HTTP client of the process shares, settled once: the TLS context, and
the answer to httpcore's question of which async library runs.

httpx builds a fresh `ssl.SSLContext` for each client it makes (the certifi bundle
loaded again: 30-100 ms here), and the dashboard makes three right after its first frame
(the API client, the auto-downloader's and the frame loader's media clients). An
`SSLContext` may be shared by any number of connections and clients, so they share this
one: made once, when the first client is built, exactly as httpx makes its default
(`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured, else certifi's bundle; verification on).

httpcore asks `import sniffio` each time one of its locks or events is set up (several
times per request) and falls back to asyncio when that fails. sniffio is no longer
installed with anyio, and a failed import searches every folder of `sys.path` again
each time: about 0.1 ms a time here, a few per request, 3 % of a busy dashboard's CPU.
When sniffio cannot be found, it is marked missing in `sys.modules` (Python's own way:
an import of a module whose entry is None fails at once), so the answer is the same,
without the search.
"""

from __future__ import annotations

import functools
import importlib.util
import ssl
import sys


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    import httpx

    skip_missing_sniffio()
    return httpx.create_ssl_context()


def skip_missing_sniffio() -> None:
    """`import sniffio` fails at once from now on if sniffio is not installed."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


__all__ = ["shared_tls_context", "skip_missing_sniffio"]
