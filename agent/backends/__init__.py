"""Sage backends. ``create_backend`` builds one by name; heavy imports happen lazily inside."""

from __future__ import annotations

BACKENDS = ("simulator", "sdo", "sage50us", "sage100sim", "boi")


def create_backend(name: str, company: str, options: dict | None = None):
    options = dict(options or {})
    if name == "simulator":
        from agent.backends.simulator import SimulatorBackend

        return SimulatorBackend(company, **options)
    if name == "sdo":
        from agent.backends.sdo import SdoBackend

        return SdoBackend(company, **options)
    if name == "sage50us":
        from agent.backends.sage50us import Sage50UsBackend

        return Sage50UsBackend(company, **options)
    if name == "sage100sim":
        from agent.backends.sage100sim import Sage100SimulatorBackend

        return Sage100SimulatorBackend(company, **options)
    if name == "boi":
        from agent.backends.boi import BoiBackend

        return BoiBackend(company, **options)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
