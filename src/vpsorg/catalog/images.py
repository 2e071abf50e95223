"""Base disk images for operating systems: a path on the hosts, or a URL fetched once."""

from __future__ import annotations

import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

DOWNLOAD_CHUNK = 1 << 20


def is_url(value: str) -> bool:
    return urllib.parse.urlsplit(value).scheme in ("http", "https")


def fetch(url: str, image_dir: Path) -> Path:
    """Download ``url`` into ``image_dir`` unless it is already there; return the path.

    The file is written under a temporary name and renamed when complete, so an
    interrupted download is never mistaken for an image.
    """
    name = Path(urllib.parse.urlsplit(url).path).name or "image"
    target = image_dir / name
    if target.exists():
        return target
    image_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out, DOWNLOAD_CHUNK)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
