"""A faithful local emulator of one BigCommerce store (REST v2/v3, rate limits, webhooks).

Library use: ``from sandbox.bigcommerce.store import BigCommerceStore`` (state, no HTTP) and
``from sandbox.bigcommerce.app import build_app, BigCommerceApp`` (served by
``sandbox.httpserver.SandboxServer``). Command line: ``python -m sandbox.bigcommerce --help``.
"""
