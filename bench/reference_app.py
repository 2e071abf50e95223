"""The reference: a one-route FastAPI app, served by uvicorn exactly as ``vpsorg serve`` serves.

Run as ``python -m bench.reference_app --port N``. What vpsorg costs beyond this app is what
vpsorg itself adds (middleware, authentication, the database, serialization of real bodies).
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

# What `vpsorg serve` passes to uvicorn.run (src/vpsorg/cli/serve.py) besides the app, host and port,
# with VPSORG_LOG_LEVEL=warning as the benchmark sets it. Keep the two in step.
LOG_LEVEL = "warning"
GRACEFUL_SHUTDOWN_SECONDS = 15

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"status": "ok", "service": "reference"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=LOG_LEVEL,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
