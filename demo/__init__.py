"""The demo that `make run` starts, and the same system started for the end-to-end tests and the
benchmarks: a sandbox BigCommerce store and a simulated Sage 50 company with its agent, wired to
real web, worker and beat processes.

Development tooling, not the product: the server never imports it. It is an app only for its
management commands (``runstack`` = `make run`, ``seed_demo``, ``demo_order``).

- ``demo.seed``: the demo's data (tenant, connections, integration, mappings, agent key) and the
  argv of its extra processes;
- ``demo.system``: the whole system as real processes (``start_demo`` for `make run`,
  ``start_system`` on a test or benchmark database).
"""
