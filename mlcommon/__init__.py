"""What the server and the agent share, and nothing else: the ledger document codec
(``mlcommon.ledger``) and the one HTTP client base with its typed error hierarchy
(``mlcommon.http``).

It is its own distribution (``mlcommon/pyproject.toml``, ``requests`` only) because the agent runs
alone on a Windows PC next to Sage and installs without Django or Celery; the server distribution
ships the same package. Nothing here may import Django, Celery or the ``connector`` package
(``agent/tests/test_agent_standalone.py`` checks it).
"""

__version__ = "0.1.0"
