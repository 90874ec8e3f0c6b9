"""Logging to a rotating file and the console, with the agent key scrubbed from every record."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A record carrying this attribute (``extra={CONSOLE_SKIP: True}``) was already printed for the
# person at the console (the runner's job lines); it goes to the log file only.
CONSOLE_SKIP = "ml_agent_console_skip"


def _not_already_printed(record: logging.LogRecord) -> bool:
    return not getattr(record, CONSOLE_SKIP, False)


class SecretFilter(logging.Filter):
    """Belt and braces: the key is never passed to a logger, but an exception text could carry it."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, None
        return True


def setup_logging(log_file: str | None, level: str = "INFO", secrets: list[str] | None = None) -> None:
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for handler in list(root.handlers):
        if getattr(handler, "_ml_agent", False):
            root.removeHandler(handler)
    console = logging.StreamHandler()
    console.addFilter(_not_already_printed)
    handlers: list[logging.Handler] = [console]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=5,
                                                             encoding="utf-8"))
    secret_filter = SecretFilter(secrets or [])
    for handler in handlers:
        handler._ml_agent = True
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(secret_filter)
        root.addHandler(handler)
