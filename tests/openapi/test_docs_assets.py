"""/api/v1/docs is served with its assets from vpsorg: no CDN (the browser test: tests/e2e)."""

from __future__ import annotations

import re


async def test_docs_page_loads_only_local_assets(client):
    response = await client.get("/api/v1/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", response.text)
    assert urls
    for url in urls:
        assert url.startswith("/api/v1/"), url
    assert "https://" not in response.text
    for url in [u for u in urls if "/assets/" in u]:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


async def test_no_redoc_without_its_cdn(client):
    assert (await client.get("/api/v1/redoc")).status_code == 404
