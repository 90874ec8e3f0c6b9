"""A simulated Sage 50 company kept in one SQLite file (see ``company.py``)."""

from agent.simulator.company import SimCompany, SimSession

__all__ = ["SimCompany", "SimSession"]
