"""``python -m sandbox.sage100 serve --port 8703 --https`` runs the Sage 100 eBusiness Web Services
emulator in the foreground (a self-signed certificate is made unless --cert/--key are given; its PEM
is printed to upload on the Sage connection). ``python -m sandbox.sage100 inspect --url URL
sales-orders`` shows what a running emulator holds."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import requests

from sandbox.sage100.app import Company, EBusinessFaults, EBusinessSandboxApp, User
from sandbox.sage100.certs import make_self_signed
from sandbox.sage100.server import EBusinessServer


def _user(text: str) -> tuple[str, User]:
    """NAME:PASSWORD[:disabled][:COMPANY+COMPANY]"""
    parts = text.split(":")
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("a user is NAME:PASSWORD[:disabled][:ABC+XYZ]")
    user = User(parts[1])
    for extra in parts[2:]:
        if extra == "disabled":
            user.web_services_enabled = False
        elif extra:
            user.companies = {c.upper() for c in extra.split("+")}
    return parts[0], user


def _company(text: str) -> tuple[str, Company]:
    """CODE[:disabled]"""
    code, _, flag = text.partition(":")
    if len(code) != 3:
        raise argparse.ArgumentTypeError("a Sage 100 company code has 3 characters")
    return code.upper(), Company(code.upper(), web_services_enabled=flag != "disabled")


def serve(args) -> int:
    users = dict(args.user or [("WEBUSER", User("web-password"))])
    companies = dict(args.company or [("ABC", Company("ABC"))])
    items = {i.strip().upper() for i in (args.items or "").split(",") if i.strip()}
    for company in companies.values():
        company.items = set(items)
        for number in (args.web_customer or ()):
            division, _, customer_no = number.partition("-")
            company.customers[(division, customer_no.upper())] = {
                "ARDivisionNo": division, "CustomerNo": customer_no.upper(), "CustomerName": "Web sales"}
    app = EBusinessSandboxApp(users=users, companies=companies, seed=args.seed, faults=EBusinessFaults(
        latency_ms=args.latency_ms, error_rate=args.error_rate, lost_reply_rate=args.lost_reply_rate,
        drop_reply_rate=args.drop_reply_rate, slow_reply_rate=args.slow_reply_rate, slow_reply_s=args.slow_reply_s,
        record_in_use_rate=args.record_in_use_rate))
    cert = key = None
    if args.https:
        if args.cert:
            cert, key = args.cert, args.key
        else:
            folder = Path(args.cert_dir or tempfile.mkdtemp(prefix="sage100-sandbox-tls-"))
            pair = make_self_signed(folder, hosts=tuple(args.hostname or ()))
            cert, key = str(pair.cert_path), str(pair.key_path)
    server = EBusinessServer(app, host=args.host, port=args.port, cert_path=cert, key_path=key)
    print(f"Sage 100 eBusiness Web Services sandbox on {server.service_url} (WSDL: ?wsdl; companies "
          f"{', '.join(companies)})", flush=True)
    if cert:
        print(f"certificate: {cert}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def inspect(args) -> int:
    base = args.url.rstrip("/")
    what = args.what
    path = "/__sandbox__/sage100/companies" if what == "companies" else \
        "/__sandbox__/sage100/operations" if what == "operations" else \
        f"/__sandbox__/sage100/companies/{args.company.upper()}/{what}"
    response = requests.get(base + path, timeout=10, verify=args.cafile or True)
    if response.status_code != 200:
        print(f"{response.status_code}: {response.text}", file=sys.stderr)
        return 1
    print(json.dumps(response.json(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.sage100", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the emulator in the foreground")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8703)
    run.add_argument("--https", action="store_true", help="TLS with a self-signed certificate (or --cert/--key)")
    run.add_argument("--cert", help="PEM certificate (with --key); default: a new self-signed one")
    run.add_argument("--key")
    run.add_argument("--cert-dir", help="where the self-signed certificate is written (default: a temp folder)")
    run.add_argument("--hostname", action="append", help="extra host name or IP in the certificate")
    run.add_argument("--user", action="append", type=_user, help="NAME:PASSWORD[:disabled][:ABC+XYZ] (repeatable; "
                     "default WEBUSER:web-password)")
    run.add_argument("--company", action="append", type=_company, help="CODE[:disabled] (repeatable; default ABC)")
    run.add_argument("--items", default="", help="comma-separated item codes on file (default: any code)")
    run.add_argument("--web-customer", action="append", help="a customer on file in every company, e.g. 01-WEBSALE")
    run.add_argument("--latency-ms", type=int, default=0)
    run.add_argument("--error-rate", type=float, default=0.0, help="share of calls answered 503 (nothing applied)")
    run.add_argument("--lost-reply-rate", type=float, default=0.0, help="share of creates applied, then answered 502")
    run.add_argument("--drop-reply-rate", type=float, default=0.0,
                     help="share of creates applied, then the connection closed with no answer")
    run.add_argument("--slow-reply-rate", type=float, default=0.0,
                     help="share of creates applied, then answered --slow-reply-s seconds late")
    run.add_argument("--slow-reply-s", type=float, default=0.0)
    run.add_argument("--record-in-use-rate", type=float, default=0.0, help="share of creates refused: record in use")
    run.add_argument("--seed", type=int, default=1)
    run.set_defaults(func=serve)
    look = commands.add_parser("inspect", help="show what a running emulator holds")
    look.add_argument("--url", required=True, help="the emulator's base URL, e.g. https://127.0.0.1:8703")
    look.add_argument("--company", default="ABC")
    look.add_argument("--cafile", help="the emulator's certificate (PEM), to verify HTTPS")
    look.add_argument("what", choices=["companies", "sales-orders", "customers", "operations"])
    look.set_defaults(func=inspect)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
