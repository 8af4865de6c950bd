"""The ceiling: a bare aiohttp "hello" route, served like the pool (`web.run_app`, no access log, the same
event loop: `--loop`, which bench.load sets to the server's)."""

from __future__ import annotations

import argparse

from aiohttp import web

from owp_bot.eventloop import CHOICES, loop_factory


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hello")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=CHOICES, default="auto")
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/healthz", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None,
                loop=loop_factory(args.loop)())


if __name__ == "__main__":
    main()
