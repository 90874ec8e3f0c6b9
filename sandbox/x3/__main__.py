"""``python -m sandbox.x3 --port 8702 --user U --password P --client-id C --client-secret S
--accounts 411000,706000,...`` runs the Sage X3 emulator in the foreground."""

from __future__ import annotations

import argparse

from sandbox.httpserver import SandboxServer
from sandbox.x3.app import DEFAULT_ACCOUNTS, X3Faults, X3SandboxApp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.x3", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--client-id", default="sandbox-client")
    parser.add_argument("--client-secret", default="sandbox-secret")
    parser.add_argument("--folder", default="SEED", help="X3 endpoint (api1 path and x-xtrem-endpoint)")
    parser.add_argument("--accounts", default=",".join(DEFAULT_ACCOUNTS), help="comma-separated chart of accounts")
    parser.add_argument("--class-name", default="GACCENTRY")
    parser.add_argument("--representation", default="GACCENTRY")
    parser.add_argument("--access-token-ttl", type=int, default=60, help="seconds")
    parser.add_argument("--jwt-audience", default="")
    parser.add_argument("--company-currency", default="",
                        help="the company's currency: entries in another one need RATMLT and AMTLED")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    app = X3SandboxApp(
        user=args.user, password=args.password, client_id=args.client_id, client_secret=args.client_secret,
        folder=args.folder, accounts=[a.strip() for a in args.accounts.split(",") if a.strip()],
        class_name=args.class_name, representation=args.representation,
        access_token_ttl=args.access_token_ttl, jwt_audience=args.jwt_audience,
        company_currency=args.company_currency,
        faults=X3Faults(latency_ms=args.latency_ms, error_rate=args.error_rate),
    )
    server = SandboxServer(app, host=args.host, port=args.port)
    print(f"Sage X3 sandbox on {server.url} (folder {args.folder})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
