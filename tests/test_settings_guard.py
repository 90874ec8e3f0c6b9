"""With DEBUG off the app refuses to start without its keys, and says how to make them."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def test_refuses_to_start_without_keys_when_debug_is_off(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DEBUG")}
    env.update({"DEBUG": "0", "ML_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "connector.settings"})
    # Run from a copy-less cwd so the developer's .env is not read: point settings at an empty dir.
    code = "import connector.envfile as e, pathlib; e.ENV_PATH = pathlib.Path('/nonexistent/.env');" \
           "import django; from django.conf import settings; settings.SECRET_KEY"
    env["PYTHONPATH"] = str(BASE_DIR)
    result = subprocess.run([sys.executable, "-c", _no_dotenv(code)], env=env, capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY, FIELD_ENCRYPTION_KEY not set" in result.stderr
    assert "python -m connector.envfile" in result.stderr


def _no_dotenv(code: str) -> str:
    # settings loads BASE_DIR/.env; make load_env_file a no-op so only the environment counts.
    return "import connector.envfile as e; e.load_env_file = lambda *a, **k: None\n" + code


def test_dev_env_file_is_created_once_and_never_overwritten(tmp_path):
    from connector.envfile import ensure_dev_env_file, read_env_file

    path = tmp_path / ".env"
    saved = {k: os.environ.pop(k) for k in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DEBUG") if k in os.environ}
    try:
        assert set(ensure_dev_env_file(path)) == {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DEBUG"}
        first = read_env_file(path)
        assert ensure_dev_env_file(path) == []
        assert read_env_file(path) == first
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        os.environ.update(saved)
