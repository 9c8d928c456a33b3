"""What the access line costs: one GET through `HttpRouter` with its line written, and with
the `tctf.access` logger above INFO (nothing built), in the same run.

The route is trivial (no storage, no publishing), so the difference is the line against
the router's own work; lines go through `configure_logging`'s JSON handler to /dev/null.

    .venv/bin/python benchmarks/http_access_log.py [--requests 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from typing import Any

from bus import Context, Domain, Request
from bus.http import HttpRequest, HttpRouter
from bus.observability import configure_logging
from tctf.platform import Platform

domain = Domain("ping")


@domain.get("/ping/{item_id}")
async def ping(request: Request[None], ctx: Context) -> dict[str, Any]:
    return {"id": request.path_params["item_id"]}


async def _requests(router: HttpRouter, request: HttpRequest, count: int) -> None:
    for _ in range(count):
        await router.handle(request)


def per_request_us(router: HttpRouter, count: int, repeat: int, logged: bool) -> float:
    """Best of `repeat` runs of `count` requests, microseconds a request."""
    logging.getLogger("tctf.access").setLevel(logging.INFO if logged else logging.WARNING)
    request = HttpRequest("GET", "/ping/abc", headers={"x-correlation-id": "bench-1"})
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        asyncio.run(_requests(router, request, count))
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    router = Platform([domain], seed=1).router
    with open(os.devnull, "w") as sink:
        configure_logging("INFO", "tctf", stream=sink)
        asyncio.run(_requests(router, HttpRequest("GET", "/ping/warm"), 2000))
        without = per_request_us(router, args.requests, args.repeat, logged=False)
        with_line = per_request_us(router, args.requests, args.repeat, logged=True)
        for handler in logging.getLogger("tctf").handlers:
            handler.close()  # before its stream is: logging flushes handlers again at exit
    print("| access line | us/request | line |")
    print("|---|---:|---:|")
    print(f"| off (above INFO) | {without:.1f} | — |")
    print(f"| on | {with_line:.1f} | {with_line - without:.1f} us |")


if __name__ == "__main__":
    main()
