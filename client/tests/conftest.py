"""One real ``vpsorg serve`` (simulator driver) for the whole session, and its users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from support import CountingTransport, Installation  # client/tests is on sys.path (rootdir)

from vpsorg_client import Client


@pytest.fixture(scope="session")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    installation = Installation(tmp_path_factory.mktemp("vpsorg"))
    yield installation
    installation.stop()


@pytest.fixture(scope="session")
def api_url(installation: Installation) -> str:
    return installation.serve("--demo")


@pytest.fixture(scope="session")
def background(installation: Installation, api_url: str) -> Iterator[dict[str, Future[str]]]:
    """What only a few tests need and takes seconds to make (the operator CLI and a server
    start are slow on a busy machine): made while the first tests run."""
    with ThreadPoolExecutor(2) as pool:
        yield {
            "limited_url": pool.submit(installation.serve, "--no-worker", rate_limits="2/second"),
            "broke_token": pool.submit(installation.create_user, "broke", 0),
        }


@pytest.fixture(scope="session")
def limited_url(background: dict[str, Future[str]]) -> str:
    """A second ``vpsorg serve`` on the same database, with a rate limit of 2 per second."""
    return background["limited_url"].result()


@pytest.fixture(scope="session")
def broke_token(background: dict[str, Future[str]]) -> str:
    """The token of an account without credits."""
    return background["broke_token"].result()


@pytest.fixture(scope="session")
def token(installation: Installation, api_url: str, background: dict[str, Future[str]]) -> str:
    """The demo account's (100 credits): making one with the operator CLI takes seconds."""
    return installation.demo_token(api_url)


@pytest.fixture
def client(api_url: str, token: str) -> Iterator[Client]:
    with Client(token=token, base_url=api_url) as client:
        yield client


@pytest.fixture
def counting_client(
    api_url: str, token: str
) -> Iterator[Callable[[], tuple[Client, CountingTransport]]]:
    made: list[Client] = []

    def make() -> tuple[Client, CountingTransport]:
        transport = CountingTransport()
        client = Client(token=token, base_url=api_url, transport=transport)
        made.append(client)
        return client, transport

    yield make
    for client in made:
        client.close()
