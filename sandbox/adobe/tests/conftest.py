"""Fixtures for the Adobe Commerce sandbox tests (the helpers live in ``sandbox.adobe.testkit``)."""

from __future__ import annotations

import pytest

from sandbox.adobe.testkit import Adobe, Receiver


@pytest.fixture
def adobe():
    store = Adobe()
    yield store
    store.close()


@pytest.fixture
def make_adobe():
    made = []

    def factory(**kwargs):
        store = Adobe(**kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
