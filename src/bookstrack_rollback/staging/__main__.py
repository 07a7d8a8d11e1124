"""``python -m bookstrack_rollback.staging``: serve the embedded staging in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn

from .app import create_app
from .base import DEFAULT_TOKEN, StagingConfig
from .server import StagingStartError, bind_socket, serve, uvicorn_config
from .state import Staging
from .users_traffic import MAX_RATE, UsersTraffic, UsersTrafficError
from .workerd.host import HostError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bookstrack_rollback.staging",
        description=(
            "Serve the embedded BooksTrack staging: the BooksTrack API at /, the Cloudflare API "
            "subset at /client/v4 (versions, deployments, tail, Analytics Engine SQL, KV) and admin "
            "routes at /__staging. Bound to 127.0.0.1 only. Stop with Ctrl-C."
        ),
    )
    parser.add_argument("--port", type=int, default=8787, help="TCP port (0: any free port; default 8787)")
    parser.add_argument("--seed", type=int, default=StagingConfig.seed, help="seed of every id, book and injected error")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the Cloudflare API token accepted (default: a development token)")
    parser.add_argument("--ingestion-lag", type=float, default=0.0, metavar="SECONDS",
                        help="delay before a data point shows in Analytics Engine SQL (default 0)")
    parser.add_argument("--health-shape", choices=("version", "constant"), default="version",
                        help="/health reports the serving version's tag, or production's constant 1.0.0")
    parser.add_argument("--no-telemetry", action="store_true",
                        help="write no Analytics Engine data points or tail events (only to measure their cost)")
    parser.add_argument("--users-rate", type=float, default=0.0, metavar="N",
                        help=f"the staging's own users send N searches per second to it, Poisson "
                             f"arrivals (0 to {MAX_RATE:g}; default 0: no users)")
    parser.add_argument("--users-popular-share", type=float, default=UsersTraffic.popular_share, metavar="F",
                        help="share of the users' searches that ask a popular, cached query "
                             f"(0 to 1; default {UsersTraffic.popular_share:g})")
    parser.add_argument("--runtime", choices=("python", "workerd"), default="python",
                        help="what answers at the BooksTrack base URL: python, the built-in emulation (default; "
                             "starts at once), or workerd, the deployed versions' own code run in workerd "
                             "(needs Node.js and `make clients`; the seeded versions run the reference Worker "
                             "of drills/reference-worker)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    return parser.parse_args(argv)


def users_line(users: UsersTraffic) -> str:
    if users.rate <= 0.0:
        return "off (--users-rate 0; PUT /__staging/users to start it)"
    return f"{users.rate:g} requests/s, {users.popular_share:.0%} popular searches"


def runtime_line(runtime: str) -> str:
    if runtime == "workerd":
        return "workerd (each deployed version's own code answers)"
    return "python (the built-in emulation answers; --runtime workerd runs the deployed code)"


def banner(config: StagingConfig, base_url: str) -> str:
    return "\n".join([
        "Embedded BooksTrack staging is serving.",
        f"  BooksTrack base URL:     {base_url}",
        f"  Cloudflare API base URL: {base_url}/client/v4",
        f"  account id:              {config.account_id}",
        f"  worker name:             {config.worker_name}",
        f"  KV namespace id:         {config.kv_namespace_id}",
        f"  development token:       {config.token}",
        f"  users' traffic:          {users_line(config.users)}",
        f"  runtime:                 {runtime_line(config.runtime)}",
        f"  admin:                   {base_url}/__staging/info",
        "For wrangler:",
        f"  export CLOUDFLARE_API_BASE_URL={base_url}/client/v4 CLOUDFLARE_ACCOUNT_ID={config.account_id} "
        f"CLOUDFLARE_API_TOKEN=<the development token>",
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        users = UsersTraffic(rate=args.users_rate, popular_share=args.users_popular_share)
    except UsersTrafficError as exc:
        print(f"error: users' traffic: {exc} (--users-rate {args.users_rate:g}, "
              f"--users-popular-share {args.users_popular_share:g})", file=sys.stderr)
        return 2
    config = StagingConfig(
        seed=args.seed, token=args.token, ingestion_lag_s=args.ingestion_lag, health_shape=args.health_shape,
        telemetry=not args.no_telemetry, users=users, runtime=args.runtime,
    )
    try:
        sock = bind_socket("127.0.0.1", args.port)
    except StagingStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        staging = Staging(config)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    staging.books.catalogue  # generate the catalogue now, not during the first search
    app = create_app(staging)
    server = uvicorn.Server(uvicorn_config(app, log_level=args.log_level))
    if config.runtime == "workerd":
        print("Starting the serving version in workerd ...", flush=True)
    try:
        asyncio.run(serve(server, sock, staging, app, announce=lambda: print(banner(config, base_url), flush=True)))
    except KeyboardInterrupt:
        pass
    except HostError as exc:
        print(f"error: the workerd runtime could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        sock.close()
    print("Embedded staging stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
