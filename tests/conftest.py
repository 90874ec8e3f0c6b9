import shutil

import pytest
from django.conf import settings
from django.db import connection


def subprocess_env_for_test_db() -> dict[str, str]:
    """Environment that points a child process (web, worker, agent API) at the test database
    and the test broker. Use together with the `transactional_db` fixture so rows are committed."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        auth = db.get("USER") or "postgres"
        if db.get("PASSWORD"):
            auth += f":{db['PASSWORD']}"
        url = f"postgres://{auth}@{host}:{port}/{db['NAME']}"
    return {
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "COORDINATION_REDIS_URL": settings.COORDINATION_REDIS_URL or "",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "DEBUG": "1",
    }


def purge_broker() -> None:
    """Start each real-process test with an empty queue (earlier runs may have left messages)."""
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        queue = settings.BROKER_DIR / "queue"
        shutil.rmtree(queue, ignore_errors=True)
        queue.mkdir(parents=True, exist_ok=True)
    else:
        from connector.celery import app

        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("celery")


@pytest.fixture
def process_env(transactional_db):
    purge_broker()
    return subprocess_env_for_test_db()
