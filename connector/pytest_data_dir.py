"""A pytest plugin (pyproject: ``-p connector.pytest_data_dir``): a direct ``python -m pytest``
gets its own data folder, as ``make test`` does. Without it a direct run shared ./data with
``make run``, and could fail on messages an earlier run left in data/broker.

It runs when pytest loads plugins, before pytest-django imports the settings."""

import atexit
import os
import shutil
import tempfile

if not os.environ.get("ML_DATA_DIR"):
    _folder = tempfile.mkdtemp(prefix="mlc-test-")
    os.environ["ML_DATA_DIR"] = _folder
    atexit.register(shutil.rmtree, _folder, ignore_errors=True)
