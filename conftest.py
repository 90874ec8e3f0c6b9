"""Session-wide test plumbing for every test folder (pyproject's testpaths)."""

import pytest
from django.db import connections


@pytest.fixture(scope="session", autouse=True)
def close_background_connections(django_db_setup, django_db_blocker):
    """The webhook group-commit writer thread keeps its own database connection for the life of
    the process (that is its point). At the end of the session it must let go of it, or the test
    database cannot be dropped ("being accessed by other users") and lingers for the next run.
    Depends on django_db_setup so this teardown runs before the database is destroyed."""
    yield
    from connector.bigcommerce import webhooks

    writer = webhooks._group_commit
    if writer is not None:
        with django_db_blocker.unblock():
            writer.in_writer(connections.close_all)
