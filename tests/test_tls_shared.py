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


def test_a_missing_sniffio_is_looked_for_once_and_requests_still_work(monkeypatch):
    """httpcore imports sniffio at every lock it sets up; when sniffio is not installed
    it is marked missing once (no search of sys.path per request), and an async request
    still runs on asyncio."""
    import asyncio
    import importlib.util
    import sys

    import httpx

    from seedance_tui.client.tls import skip_missing_sniffio

    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    looked = []
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        looked.append(name)
        return None if name == "sniffio" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    skip_missing_sniffio()
    skip_missing_sniffio()
    assert looked == ["sniffio"]
    assert sys.modules["sniffio"] is None

    async def ask() -> int:
        # Through httpcore's pool (its locks ask for sniffio), to a server on loopback.
        async def answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{port}/")).status_code
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(ask()) == 200


def test_an_installed_sniffio_is_left_alone(monkeypatch):
    import sys
    import types

    from seedance_tui.client.tls import skip_missing_sniffio

    present = types.ModuleType("sniffio")
    monkeypatch.setitem(sys.modules, "sniffio", present)
    skip_missing_sniffio()
    assert sys.modules["sniffio"] is present
