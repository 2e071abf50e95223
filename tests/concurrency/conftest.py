"""An installation for several API and worker processes on one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import Installation


@pytest.fixture
def installation_with(databases, tmp_path: Path) -> Iterator[Callable[..., Installation]]:
    made: list[Installation] = []

    def make(**settings: Any) -> Installation:
        workdir = tmp_path / f"installation-{len(made) + 1}"
        workdir.mkdir()
        installation = Installation(databases.fresh(workdir), workdir, **settings)
        installation.run("db", "upgrade")
        made.append(installation)
        return installation

    yield make
    for installation in made:
        installation.stop_all()
    for installation in made:
        for title, text in installation.logs():
            assert "Traceback" not in text, f"{title} shows an unhandled error:\n{text}"
