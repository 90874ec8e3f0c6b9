"""``python -m sandbox.bigcommerce --port 8701 --store-hash abc123 --token TOKEN ...``"""

from __future__ import annotations

import argparse
import sys

from sandbox.httpserver import SandboxServer

from .app import build_app
from .fleet import build_fleet, fleet_hashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bigcommerce", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--store-hash", default="abc123")
    parser.add_argument("--token", default="sandbox-token", help="the X-Auth-Token the store accepts")
    parser.add_argument("--client-id", default="sandbox-client")
    parser.add_argument("--client-secret", default="sandbox-secret", help="signs webhook deliveries")
    parser.add_argument("--orders", type=int, default=300, help="orders seeded at start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--channels", type=int, default=1, help="spread generated orders over channel ids 1..N")
    parser.add_argument("--validate", action="store_true", help="check all traffic against the specs")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--quota", type=int, default=150, help="requests per window")
    parser.add_argument("--window-ms", type=int, default=30000)
    parser.add_argument("--rate-limit-storm", type=float, default=0.0, help="seconds of 429s from start")
    parser.add_argument("--webhook-drop-rate", type=float, default=0.0)
    parser.add_argument("--webhook-repeat", type=int, default=1)
    parser.add_argument("--webhook-deactivate-after", type=int, default=20)
    parser.add_argument("--webhook-duplicate-rate", type=float, default=0.0,
                        help="share of deliveries sent one extra time")
    parser.add_argument("--stores", type=int, default=0,
                        help="host this many stores (hashes STORE_HASH001, STORE_HASH002, …), each with --orders")
    args = parser.parse_args(argv)
    faults = {
        "latency_ms": args.latency_ms, "error_rate": args.error_rate, "quota": args.quota,
        "window_ms": args.window_ms, "rate_limit_storm": args.rate_limit_storm,
        "webhook_drop_rate": args.webhook_drop_rate, "webhook_repeat": args.webhook_repeat,
        "webhook_deactivate_after": args.webhook_deactivate_after,
        "webhook_duplicate_rate": args.webhook_duplicate_rate,
    }
    if args.stores:
        fleet = build_fleet(fleet_hashes(args.store_hash, args.stores), token=args.token, client_id=args.client_id,
                            client_secret=args.client_secret, orders=args.orders, seed=args.seed,
                            channels=args.channels, validate=args.validate, faults=faults)
        return serve(SandboxServer(fleet, args.host, args.port),
                     f"{args.stores} stores under /stores/{args.store_hash}001/ … ({args.orders} orders each)")
    app = build_app(store_hash=args.store_hash, token=args.token, client_id=args.client_id,
                    client_secret=args.client_secret, orders=args.orders, seed=args.seed, channels=args.channels,
                    validate=args.validate, faults=faults)
    return serve(SandboxServer(app, args.host, args.port),
                 f"/stores/{args.store_hash}/ ({len(app.store.orders)} orders)")


def serve(server: SandboxServer, what: str) -> int:
    print(f"BigCommerce sandbox: {server.url} {what}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
