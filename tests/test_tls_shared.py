"""Every HTTP client of the process shares one TLS context (client/tls.py): made once,
verifying certificates as httpx's default does."""

from __future__ import annotations

import ssl

from seedance_tui.client import Client, MediaClient
from seedance_tui.client.tls import shared_tls_context
from seedance_tui.models import Provider


def tls_context_of(http) -> ssl.SSLContext:
    # httpx 0.28 keeps it on its connection pool (no public accessor).
    return http._transport._pool._ssl_context


async def test_the_api_and_media_clients_share_one_verifying_tls_context():
    api = Client({Provider.NANOPHOTO: "https://nanophoto.ai"}, {Provider.NANOPHOTO: None})
    media, other_media = MediaClient(), MediaClient()
    try:
        contexts = {id(tls_context_of(c._http)) for c in (api, media, other_media)}
        assert contexts == {id(shared_tls_context())}
        context = shared_tls_context()
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"] > 0
    finally:
        for client in (api, media, other_media):
            await client.aclose()
