"""Base disk images for operating systems: a path on the hosts, or a URL fetched into the
image directory and stored by content (``<sha256>.<format>``), so two different files that
happen to share a name are two images, and the same file fetched twice is stored once.

Every image this machine can read is checked with ``qemu-img info`` first: vpsorg boots
qcow2 and raw images only. ``qemu-img`` calls any file it does not recognise "raw", so a raw
image must also look like a disk: a whole number of 512-byte sectors, and not text (a disk's
first sectors hold binary structures, boot code and zero padding; a text file has no NUL
byte). A qcow2 image with a backing file is refused: it would read another file on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

DOWNLOAD_CHUNK = 1 << 20
SECTOR = 512
TEXT_PROBE = 64 * 1024  # bytes of a raw image looked at for a NUL
FORMATS = ("qcow2", "raw")
SHA256 = re.compile(r"[0-9a-f]{64}")
QEMU_IMG_TIMEOUT = 60.0

Progress = Callable[[int, int | None], None]
"""Called as a download goes: (bytes received so far, total bytes or None if unknown)."""


class ImageError(Exception):
    """An image that cannot be used; the message is one line for the operator."""


def is_url(value: str) -> bool:
    return urllib.parse.urlsplit(value).scheme in ("http", "https")


def check_sha256(value: str) -> str:
    digest = value.strip().lower()
    if not SHA256.fullmatch(digest):
        raise ImageError(f"{value!r} is not a SHA-256 digest (64 hexadecimal digits)")
    return digest


def fetch(
    url: str, image_dir: Path, *, sha256: str | None = None, progress: Progress | None = None
) -> Path:
    """Download ``url`` into ``image_dir``, check it, and return where it is stored.

    With ``sha256``, an image already stored with that digest is not downloaded again, and
    a download with another digest is an error. The file is written under a temporary name
    and renamed when complete and checked, so an interrupted or refused download is never
    mistaken for an image.
    """
    expected = check_sha256(sha256) if sha256 else None
    if expected is not None:
        for fmt in FORMATS:
            if (stored := image_dir / f"{expected}.{fmt}").exists():
                return stored
    image_dir.mkdir(parents=True, exist_ok=True)
    partial = image_dir / f".download.{os.getpid()}.part"
    try:
        digest = _download(url, partial, progress)
        if expected is not None and digest != expected:
            raise ImageError(f"{url} has SHA-256 {digest}, not {expected}; nothing was stored")
        fmt = inspect(partial, label=url)
        target = image_dir / f"{digest}.{fmt}"
        if not target.exists():
            partial.rename(target)
        return target
    finally:
        partial.unlink(missing_ok=True)


def _download(url: str, out_path: Path, progress: Progress | None) -> str:
    """Write ``url``'s body to ``out_path``; return its SHA-256."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, out_path.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            while chunk := response.read(DOWNLOAD_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received, total)
    except (OSError, ValueError) as exc:  # URLError is an OSError; a bad URL a ValueError
        raise ImageError(f"cannot download {url}: {exc}") from exc
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(DOWNLOAD_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def inspect(path: Path, *, label: str | None = None) -> str:
    """The image's format, qcow2 or raw; ImageError when it is not a usable disk image."""
    name = label or str(path)
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise ImageError(
            "qemu-img is not installed; it checks images (Debian: apt-get install qemu-utils)"
        )
    try:
        ran = subprocess.run(
            [qemu_img, "info", "--output=json", str(path)],
            capture_output=True,
            text=True,
            timeout=QEMU_IMG_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ImageError(f"qemu-img info {name} took over {QEMU_IMG_TIMEOUT:g}s") from None
    if ran.returncode != 0:
        reason = (ran.stderr.strip().splitlines() or ["unreadable"])[-1]
        raise ImageError(f"{name} is not a disk image qemu-img can read: {reason}")
    info = json.loads(ran.stdout)
    fmt = str(info.get("format"))
    if fmt not in FORMATS:
        raise ImageError(f"{name} is a {fmt} image; vpsorg boots qcow2 or raw images")
    if fmt == "qcow2" and info.get("backing-filename"):
        raise ImageError(f"{name} is a qcow2 image with a backing file; flatten it first")
    if fmt == "raw":
        _check_raw(path, name)
    return fmt


def _check_raw(path: Path, name: str) -> None:
    size = path.stat().st_size
    if size == 0 or size % SECTOR:
        raise ImageError(
            f"{name} is not a disk image: {size} bytes, not a whole number of {SECTOR}-byte sectors"
        )
    with path.open("rb") as file:
        head = file.read(TEXT_PROBE)
    if b"\0" not in head:
        raise ImageError(f"{name} looks like a text file, not a disk image")
