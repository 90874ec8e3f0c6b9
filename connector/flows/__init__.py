"""Flows: one module per (store → Sage) pairing, each registering its record handlers and
agent-job callbacks. Importing this package registers them all."""

from connector.flows import sage50, sage100, x3  # noqa: F401
