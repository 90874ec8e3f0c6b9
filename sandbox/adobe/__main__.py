"""``python -m sandbox.adobe --port 8702 --orders 300 --seed 1 ...``

Serves a sandbox Adobe Commerce: PaaS REST at ``/rest/<store_code>/V1/...`` (OAuth 1.0a), the Cloud
Service shape at ``/<tenant>/V1/...`` (IMS tokens from ``/ims/token/v3``), control endpoints under
``/__sandbox__/``. Prints the integration's four OAuth values, the IMS credentials and the webhook
public key at start (also at ``GET /__sandbox__/info``).
"""

from __future__ import annotations

import argparse
import sys

from sandbox.httpserver import SandboxServer

from .app import build_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.adobe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--orders", type=int, default=300, help="orders seeded at start")
    parser.add_argument("--seed", type=int, default=1, help="seeded history is deterministic per seed")
    parser.add_argument("--tenant", default="sandboxtenant", help="ACCS tenant id (first path segment)")
    parser.add_argument("--consumer-key", help="32 characters; random (from --seed) if not given")
    parser.add_argument("--consumer-secret")
    parser.add_argument("--access-token")
    parser.add_argument("--access-token-secret")
    parser.add_argument("--ims-client-id", default="sandbox-ims-client")
    parser.add_argument("--ims-client-secret", default="sandbox-ims-secret")
    parser.add_argument("--ims-org-id", default="SANDBOXORG@AdobeOrg")
    parser.add_argument("--ims-token-ttl", type=int, default=86399, help="seconds an IMS token lives")
    parser.add_argument("--bearer", action="store_true",
                        help="allow the integration token as a standalone Bearer token (off by default since 2.4.4)")
    parser.add_argument("--no-input-limits", action="store_true",
                        help="turn Magento's web API input limits off (no 300 pageSize cap; no pageSize = all rows)")
    parser.add_argument("--past-last-page", choices=("empty", "last"), default="empty",
                        help="currentPage past the end: empty items (2.4.x) or the last page again (2.3.x)")
    parser.add_argument("--shared-increment-sequence", action="store_true",
                        help="let two store views produce the same increment_id (magento2#33457)")
    parser.add_argument("--validate", action="store_true", help="check all traffic against the shipped specs")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every API call (slow store)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of API calls answered 503")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="share of API calls answered 429")
    parser.add_argument("--retry-after", type=int, default=2, help="Retry-After seconds on 429s")
    parser.add_argument("--webhook-drop-rate", type=float, default=0.0)
    parser.add_argument("--webhook-repeat", type=int, default=1, help="send every webhook delivery N times")
    parser.add_argument("--webhook-private-key", help="PEM file of the Commerce Webhooks RSA key (else made at start)")
    args = parser.parse_args(argv)
    faults = {"latency_ms": args.latency_ms, "error_rate": args.error_rate, "throttle_rate": args.throttle_rate,
              "retry_after": args.retry_after, "webhook_drop_rate": args.webhook_drop_rate,
              "webhook_repeat": args.webhook_repeat, "ims_token_ttl": args.ims_token_ttl}
    private_pem = None
    if args.webhook_private_key:
        with open(args.webhook_private_key, "rb") as fh:
            private_pem = fh.read()
    app = build_app(orders=args.orders, seed=args.seed, validate=args.validate, faults=faults, tenant=args.tenant,
                    consumer_key=args.consumer_key, consumer_secret=args.consumer_secret,
                    access_token=args.access_token, access_token_secret=args.access_token_secret,
                    ims_client_id=args.ims_client_id, ims_client_secret=args.ims_client_secret,
                    ims_org_id=args.ims_org_id, bearer_enabled=args.bearer, input_limits=not args.no_input_limits,
                    past_last_page=args.past_last_page, shared_increment_sequence=args.shared_increment_sequence,
                    commerce_private_pem=private_pem)
    server = SandboxServer(app, args.host, args.port)
    info = app.info()
    integration = info["integrations"][0]
    print(f"Adobe Commerce sandbox: {server.url}/rest/default/V1/ (PaaS) and {server.url}/{args.tenant}/V1/ (ACCS); "
          f"{info['orders']} orders, {info['invoices']} invoices, {info['creditmemos']} credit memos", flush=True)
    print("OAuth 1.0a integration: " + " ".join(f"{k}={integration[k]}" for k in
                                                ("consumer_key", "consumer_secret", "access_token",
                                                 "access_token_secret")), flush=True)
    print(f"IMS: POST {server.url}/ims/token/v3 client_id={args.ims_client_id} org={args.ims_org_id}", flush=True)
    print("Webhook signing public key (x-adobe-commerce-webhook-signature):\n" + info["webhooks"]["public_key_pem"],
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.dispatcher.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
