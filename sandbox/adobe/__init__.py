"""A faithful local emulator of one Adobe Commerce (Magento 2.4.8/2.4.9) instance, PaaS and Cloud Service.

Library use: ``from sandbox.adobe.store import AdobeCommerceStore`` (state, no HTTP) and
``from sandbox.adobe.app import build_app`` (served by ``sandbox.httpserver.SandboxServer``).
Command line: ``python -m sandbox.adobe --help``. The quirks it reproduces are listed in
``sandbox/adobe/README.md``.
"""
