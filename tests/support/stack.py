"""The real-process system (demo/system.py) as a pytest fixture: ``system_factory`` starts it on
the test database (``process_env``, tests/conftest.py) and stops whatever it started."""

from __future__ import annotations

import pytest

from demo.system import System, start_system


@pytest.fixture
def system_factory(process_env, tmp_path):
    started: list[System] = []

    def make(**kwargs) -> System:
        system = start_system(process_env, tmp_path, **kwargs)
        started.append(system)
        return system

    yield make
    for system in started:
        system.stop()
