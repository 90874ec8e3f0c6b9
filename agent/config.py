"""Agent configuration: a TOML file with the same keys as the command line; the command line wins."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

KEY_ENV = "ML_AGENT_KEY"


@dataclass
class AgentConfig:
    server: str = ""
    key: str = field(default="", repr=False)
    backend: str = "simulator"
    company: str = ""
    journal: str = ""
    log_file: str = ""
    log_level: str = "INFO"
    once: bool = False
    verify_tls: bool = True
    # Plain http to a non-loopback server: for tests on a private network only (never in production).
    allow_plain_http: bool = False
    heartbeat_seconds: float = 60.0
    # None = take it from the server's heartbeat config.
    lease_wait_seconds: int | None = None
    max_jobs: int | None = None
    poll_changes_seconds: float | None = None
    change_kinds: list[str] = field(default_factory=lambda: ["stock", "price", "customer"])
    # Busy / record-locked writes are retried this many times in place before the job is failed
    # as retryable (see runner.execute_with_local_retry for why).
    local_retries: int = 3
    local_retry_seconds: float = 1.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 120.0
    sales_nominal: str = "4000"
    carriage_nominal: str = "4905"
    bank_nominal: str = "1200"
    # `agent doctor`: where its last report is kept (the heartbeat carries its summary), and codes
    # to check besides the nominal/bank codes above and the server's mappings.
    doctor_report: str = ""
    doctor_tax_codes: list[str] = field(default_factory=lambda: ["T1", "T9"])  # T9: receipts and refunds
    doctor_stock_codes: list[str] = field(default_factory=list)
    doctor_nominal_codes: list[str] = field(default_factory=list)
    backend_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        missing = [name for name in ("server", "key", "backend", "company") if not getattr(self, name)]
        if missing:
            raise ValueError(f"missing settings: {', '.join(missing)} (command line, config file or {KEY_ENV})")
        from agent.client import check_server_url

        check_server_url(self.server, allow_plain_http=self.allow_plain_http)
        self.resolve_paths()

    def resolve_paths(self) -> None:
        if not self.journal:
            self.journal = str(default_data_dir() / f"journal-{_slug(self.company)}.sqlite3")
        if not self.doctor_report:
            self.doctor_report = str(Path(self.journal).with_name(f"doctor-{_slug(self.company)}.json"))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in Path(text).name or text)[:40] or "company"


def default_data_dir() -> Path:
    base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ml-connector-agent"


def load_config(path: str | None, overrides: dict) -> AgentConfig:
    """Read ``path`` (TOML; keys as in AgentConfig, dashes or underscores) and apply ``overrides``."""
    values: dict = {}
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        values.update({k.replace("-", "_"): v for k, v in data.items()})
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(AgentConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    config = AgentConfig(**values)
    if not config.key:
        config.key = os.environ.get(KEY_ENV, "")
    return config
