"""`make chaos` (QUICK=1 for the short run): the whole system under faults, then reconciled to the cent.

    python -m bench.chaos [--quick] [--orders N] [--seed S] [--sage sage100 [--transport soap]]
    python -m bench.chaos_adobe [--quick] [--orders N] [--seed S]     (the store: Adobe Commerce)

On a fresh database of its own (PostgreSQL + Redis when DATABASE_URL / CELERY_BROKER_URL are set,
else SQLite + the filesystem broker, in a temporary ML_DATA_DIR) it starts web, two Celery workers,
beat, the sandbox store and the agent with the simulated Sage 50 company (demo/system.py). Half the
orders are seeded (the backfill reads them), the rest are generated in the store at a steady rate
with refunds on some of them (webhooks + poll). Meanwhile, on a schedule printed as it happens:
kill -9 of a worker and its restart; the agent killed right after a Sage write and before it tells
the server (a crash hook in the agent process), or at a random busy moment, and restarted; a restart
of Redis (a dedicated redis-server started for the run, never a shared one); 429 storms and 503s
from the store; every webhook delivered two or three times; 20 % of webhooks dropped.

With ``--sage sage100`` the integration posts Sage 100 sales orders through the sage100sim agent
(licence exhaustion added to the faults); with ``--transport soap`` as well, the workers post them
over eBusiness Web Services to the emulator over HTTPS and no agent runs: the agent's faults give
way to SOAP ones, 503 windows (nothing applied) and, all along, creates Sage applied whose answer is
lost (502), dropped (connection closed, no answer) or late (past the client's timeout), where only
the look-up by SalesOrderNo before a new create keeps each order once.

Then it waits (bounded) for the system to settle and checks, from the simulated Sage company and the
store: every paid order invoiced exactly once, every refund credited exactly once, invoice gross =
order total, receipts = captured payments, credit notes = refund totals, nothing left stuck. Exit
status 1 on any difference. The result goes to bench/results/chaos-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import requests

from bench.environment import BASE_DIR, drop_database, prepare_database

CENT = Decimal("0.01")

# Runs in the agent process before its main: when the trigger file exists, the next Sage write
# kills the process with SIGKILL right after Sage stored the document and before the agent's
# journal or the server hear of it (the case only the look-up by reference can save).
AGENT_CRASH_HOOK = """
import os, signal
from pathlib import Path
from agent.journal import Journal
_chaos_trigger = Path(os.environ["CHAOS_AGENT_TRIGGER"])
_chaos_written = Journal.written
def _chaos_written_or_crash(self, *args, **kwargs):
    if _chaos_trigger.exists():
        _chaos_trigger.unlink(missing_ok=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return _chaos_written(self, *args, **kwargs)
Journal.written = _chaos_written_or_crash
"""


# -- the plan -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    seeded_orders: int  # in the store at start: the backfill reads them
    live_orders: int  # generated while the faults run: webhooks (repeated, some dropped) and the poll
    batch: int  # orders per generation step
    interval_s: float  # between generation steps
    refunds: int  # refunds placed on live orders while running
    events: tuple[tuple[float, str], ...]  # (seconds from start, action); see FIXED_ACTIONS / ACTIONS_WITH_ARGUMENT
    settle_timeout_s: float
    seed: int = 20261124
    workers: int = 2
    # Without faults, retries back off at most ~80 s (5 s doubling), and a job leased to an agent
    # killed mid-request (its long poll answered after it died, so after supervise() expired its
    # leases) comes back when its 120 s lease runs out; nothing moving for longer is stuck.
    stall_s: float = 150
    poll_seconds: int = 5  # integration poll interval and beat tick: the poll finds dropped webhooks
    sage: str = "sage50"  # "sage100": sales orders through the sage100sim agent, with licence exhaustion
    transport: str = "agent"  # Sage 100 only: "soap" posts from the workers over eBusiness Web Services

    @property
    def flow_seconds(self) -> float:
        steps = -(-self.live_orders // self.batch)
        return max(steps * self.interval_s, max((at for at, _ in self.events), default=0) + 1)


def quick_plan(orders: int = 80, seed: int = 20261124) -> Plan:
    """About 80 orders, three worker/agent kills, a 429 storm, 503s: about two minutes."""
    seeded = orders // 2
    events = (
        (0.0, "repeat 2"), (0.0, "drop 0.2"),
        (4.0, "kill worker1"), (6.0, "start worker1"),
        (8.0, "agent crash after write"),
        (11.0, "storm 6"), (12.0, "repeat 3"),
        (16.0, "errors 0.15"), (18.0, "kill worker2"), (20.0, "start worker2"), (22.0, "errors 0"),
        (14.0, "agent kill"),
        (23.0, "redis restart"), (24.0, "repeat 2"),
    )
    return Plan(seeded_orders=seeded, live_orders=orders - seeded, batch=4, interval_s=1.5,
                refunds=max(3, orders // 15), events=events, settle_timeout_s=150, seed=seed)


WORKERS = ("worker1", "worker2")


def full_plan(orders: int = 1000, seed: int = 20261124) -> Plan:
    """The default run: half seeded, half live over a few minutes, every fault several times."""
    seeded = orders // 2
    live = orders - seeded
    batch = 5
    span = -(-live // batch) * 1.0
    # The seeded backfill's workers are killed while it is between pages, whatever the machine's
    # speed (a kill on a timer alone hit it on a slow machine and missed it on a fast one).
    events: list[tuple[float, str]] = [(0.0, "repeat 2"), (0.0, "drop 0.2"), (0.0, "kill workers mid-backfill")]
    rng = random.Random(seed)
    cycle = 0
    at = 5.0
    while at < span - 10:
        worker = f"worker{cycle % 2 + 1}"
        events += [(at, f"kill {worker}"), (at + 3, f"start {worker}"),
                   (at + 8, "agent crash after write" if cycle % 2 == 0 else "agent kill"),
                   (at + 12, f"storm {rng.choice((5, 8, 12))}"), (at + 14, f"repeat {3 if cycle % 2 == 0 else 2}"),
                   (at + 20, "errors 0.1"), (at + 26, "errors 0"), (at + 28, "redis restart")]
        cycle += 1
        at += 35
    return Plan(seeded_orders=seeded, live_orders=live, batch=batch, interval_s=1.0, refunds=max(5, orders // 12),
                events=tuple(sorted(events)), settle_timeout_s=600, seed=seed)


def sage100_plan(plan: Plan) -> Plan:
    """The same run against a Sage 100 integration: every licence seat taken for a while, a few
    times (the agent cannot open a session and retries), besides the plan's own faults."""
    last = max((at for at, _ in plan.events), default=0.0)
    licence = tuple((at, "licence 4") for at in (3.0, last / 2 + 1, last + 2))
    return replace(plan, events=tuple(sorted(plan.events + licence)), sage="sage100")


# The record kinds a run's expected postings count (stock pushes and customers also end posted).
POSTINGS = ("order", "refund")
# The SOAP run: the workers' client gives up on an answer after SOAP_TIMEOUT_S; a late answer comes
# SOAP_LATE_S after the create was applied, past that timeout.
SOAP_TIMEOUT_S = 4
SOAP_LATE_S = 6
# All along the fault phase: of the creates Sage 100 applied, these shares lose their answer.
SOAP_AFTER_WRITE = (("soap-lost", "0.05"), ("soap-drop", "0.05"), ("soap-slow", "0.03"))


def sage100_soap_plan(plan: Plan) -> Plan:
    """The plan against Sage 100 over eBusiness Web Services: no agent, so each agent fault becomes a
    window of SOAP 503s (20 % of calls, nothing applied, 5 s); creates applied and then answered
    502, never answered or answered late throughout; the store's and the workers' faults stay."""
    agent_faults = ("agent crash after write", "agent kill")
    events = [(at, action) for at, action in plan.events if action not in agent_faults]
    for at, action in plan.events:
        if action in agent_faults:
            events += [(at, "soap-errors 0.2"), (at + 5, "soap-errors 0")]
    events += [(0.0, f"{verb} {rate}") for verb, rate in SOAP_AFTER_WRITE]
    return replace(plan, events=tuple(sorted(events)), sage="sage100", transport="soap")


# -- a Redis of our own -------------------------------------------------------------------------
class DedicatedRedis:
    """A redis-server on a free port, for this run only, with an append-only file synced on every
    write: restarting it loses nothing that was acknowledged, as a production Redis with AOF."""

    def __init__(self, work_dir: Path):
        from connector.devstack import free_port

        self.port = free_port()
        self.dir = work_dir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        import redis

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)

    def restart(self) -> None:
        self.stop(signal.SIGKILL)
        self.start()


# -- the run --------------------------------------------------------------------------------------
@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    entries: list[dict] = field(default_factory=list)
    echo: bool = True

    def note(self, what: str) -> None:
        at = round(time.monotonic() - self.t0, 1)
        self.entries.append({"t": at, "event": what})
        if self.echo:
            print(f"  [{at:7.1f} s] {what}", flush=True)


class ChaosRun:
    """Drives the faults of a Plan against a started demo.system.System."""

    store_name = "BigCommerce"  # in the timeline; another store's run (bench/chaos_adobe.py) names its own

    def __init__(self, system, plan: Plan, *, redis: DedicatedRedis | None = None, trigger: Path,
                 echo: bool = True):
        self.system, self.plan, self.redis, self.trigger = system, plan, redis, trigger
        self.rng = random.Random(plan.seed)
        self.timeline = Timeline(echo=echo)
        self.live_ids: list[int] = []
        self.refunds_placed: list[int] = []
        self.counts = Counter()
        self.agent_killed_by_us = False
        self.workers_down_by_us: set[str] = set()  # killed by a planned fault, started again by another
        # Records the store's rules hold open (bench/chaos_adobe.py: partly invoiced orders), and
        # records that must end posted, by (kind, external id): both known once the orders are placed.
        self.allowed_open: set[tuple[str, str]] = set()
        self.must_post: set[tuple[str, str]] = set()

    # -- faults ---------------------------------------------------------------------------------
    def faults(self, **knobs) -> None:
        requests.post(f"{self.system.sandbox_url}/__sandbox__/faults", json=knobs, timeout=10).raise_for_status()

    def act(self, action: str) -> None:
        fault, argument = resolve_action(action)
        fault(self, argument)

    def kill_process(self, name: str) -> None:
        in_flight = self._in_flight()
        stack = self.system.stack
        pid = stack.processes[name].popen.pid if name in stack.processes else None
        self.workers_down_by_us.add(name)
        stack.kill(name)
        self.counts["worker_kills"] += 1
        self.timeline.note(f"kill -9 {name} (pid {pid}) with {in_flight} records in flight")

    def start_worker(self, name: str) -> None:
        from demo.system import WORKER_INCLUDE

        self.system.stack.worker(name=name, concurrency=2, extra=WORKER_INCLUDE)
        self.workers_down_by_us.discard(name)
        self.timeline.note(f"started {name} again")

    def supervise_workers(self) -> None:
        """Start again a worker that exited by itself, as its service manager does in production
        (systemd ``Restart=always``, README "Production"). Kombu's Redis transport can die while it
        reconnects to a broker that was just restarted ("Unrecoverable error: AttributeError:
        'NoneType' object has no attribute 'hostname'" while restoring unacknowledged messages;
        celery/kombu#582, #970): the worker exits, and nothing but its supervisor brings it back.
        What it held is redelivered (late acks) or found by the sweeper, which is what is tested."""
        stack = self.system.stack
        for name in [n for n in stack.processes if n.startswith("worker")]:
            if name in self.workers_down_by_us or stack.alive(name):
                continue
            code = stack.processes[name].popen.returncode
            self.counts["worker_crashes"] += 1
            self.timeline.note(f"{name} exited by itself (exit {code}); its supervisor starts it again")
            self.start_worker(name)

    @property
    def has_agent(self) -> bool:
        return self.plan.transport != "soap"

    def arm_agent_crash(self, _: str = "") -> None:
        if not self.has_agent:
            self.timeline.note("agent crash skipped: no agent in a SOAP run")
            return
        self.trigger.touch()
        self.timeline.note("armed the agent's crash hook: SIGKILL after the next Sage write, before its ack")

    def kill_agent(self, _: str = "") -> None:
        if not self.has_agent:
            self.timeline.note("agent kill skipped: no agent in a SOAP run")
            return
        deadline = time.monotonic() + 5  # a moment when it holds work, if one comes soon
        while not (busy := self._leased_jobs()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.agent_killed_by_us = True
        self.system.stack.kill("agent")
        self.counts["agent_kills"] += 1
        self.timeline.note(f"kill -9 agent at a random moment ({busy} jobs leased)")

    def licence_exhaustion(self, seconds: str) -> None:
        """Sage 100: every concurrent-user seat taken for ``seconds`` (a new session is refused)."""
        from agent.simulator.sage100 import Sage100Company

        company = Sage100Company(self.system.company_path)
        try:
            seats = company.meta("licence_seats")
            company.set_seats(0)
        finally:
            company.close()

        def restore():
            again = Sage100Company(self.system.company_path)
            try:
                again.set_seats(seats)
            finally:
                again.close()

        threading.Timer(float(seconds), restore).start()
        self.counts["licence_exhaustions"] += 1
        self.timeline.note(f"Sage 100 licence seats all taken for {seconds} s")

    def soap_errors(self, rate: str) -> None:
        """Sage 100 over SOAP: IIS answers 503 to this share of every call (nothing applied)."""
        self.system.soap_faults(error_rate=float(rate))
        if float(rate):
            self.counts["soap_5xx_windows"] += 1
        self.timeline.note(f"Sage 100 eBusiness Web Services answers 503 to {float(rate):.0%} of calls")

    def soap_lost_answers(self, rate: str) -> None:
        self.system.soap_faults(lost_reply_rate=float(rate))
        self.timeline.note(f"{float(rate):.0%} of the creates Sage 100 applies are answered 502 (answer lost)")

    def soap_dropped_answers(self, rate: str) -> None:
        self.system.soap_faults(drop_reply_rate=float(rate))
        self.timeline.note(f"{float(rate):.0%} of the creates Sage 100 applies end with the connection closed, "
                           "no answer")

    def soap_late_answers(self, rate: str) -> None:
        self.system.soap_faults(slow_reply_rate=float(rate), slow_reply_s=float(SOAP_LATE_S))
        self.timeline.note(f"{float(rate):.0%} of the creates Sage 100 applies are answered {SOAP_LATE_S} s late "
                           f"(the client gives up after {SOAP_TIMEOUT_S} s)")

    def rate_limit_storm(self, seconds: str) -> None:
        self.faults(rate_limit_storm=float(seconds))
        self.counts["storms"] += 1
        self.timeline.note(f"{self.store_name} 429 storm for {seconds} s")

    def store_errors(self, rate: str) -> None:
        self.faults(error_rate=float(rate))
        self.timeline.note(f"{self.store_name} answers 503 to {float(rate):.0%} of API calls")

    def repeat_webhooks(self, times: str) -> None:
        self.faults(webhook_repeat=int(times))
        self.timeline.note(f"every webhook delivered {times} times")

    def drop_webhooks(self, rate: str) -> None:
        self.faults(webhook_drop_rate=float(rate))
        self.timeline.note(f"{float(rate):.0%} of webhooks dropped")

    def restart_redis(self, _: str = "") -> None:
        if self.redis is None:
            self.timeline.note("redis restart skipped: the broker is not a Redis of this run")
            return
        self.redis.restart()
        self.counts["redis_restarts"] += 1
        self.timeline.note(f"redis-server (port {self.redis.port}) killed -9 and started again")

    def kill_workers_mid_backfill(self, _: str = "") -> None:
        """Both workers, killed once the seeded backfill has saved a page and before it is done:
        the task dies with whichever worker ran it, and the sweeper must hand the run on."""
        from connector.models import SyncRun

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = SyncRun.objects.filter(kind=SyncRun.Kind.BACKFILL).order_by("pk").first()
            if run is not None and run.state != SyncRun.State.RUNNING:
                self.timeline.note(f"backfill already {run.state} before its workers could be killed")
                return
            if run is not None and run.seen:
                for name in WORKERS:
                    self.workers_down_by_us.add(name)
                    self.system.stack.kill(name)
                    self.counts["worker_kills"] += 1
                self.counts["backfill_kills"] += 1
                self.timeline.note(f"kill -9 worker1 and worker2 mid-backfill ({run.seen} of {run.total} orders read)")
                time.sleep(3)
                for name in WORKERS:
                    self.start_worker(name)
                return
            time.sleep(0.02)
        self.timeline.note("no backfill progress within 30 s; workers not killed")

    def _in_flight(self) -> int:
        from connector.models import SyncRecord

        return SyncRecord.objects.exclude(state__in=(SyncRecord.State.POSTED, SyncRecord.State.SKIPPED)).count()

    def _leased_jobs(self) -> int:
        from connector.models import AgentJob

        return AgentJob.objects.filter(state=AgentJob.State.LEASED).count()

    # -- the agent ------------------------------------------------------------------------------
    def start_agent(self) -> None:
        if not self.has_agent:
            return
        self.system.stack.env["CHAOS_AGENT_TRIGGER"] = str(self.trigger)
        self.system.start_agent("agent", wrapper=AGENT_CRASH_HOOK)

    def supervise(self) -> None:
        """Restart a dead agent at once. Its leases (120 s) would run out by themselves; move
        them forward instead, as an operator would not wait either (only the dead agent held any)."""
        from django.utils import timezone

        from connector.models import AgentJob

        self.supervise_workers()
        if not self.has_agent or self.system.stack.alive("agent"):
            return
        code = self.system.stack.processes["agent"].popen.returncode
        if code == -signal.SIGKILL and not self.agent_killed_by_us:
            self.counts["agent_crashes"] += 1
            self.timeline.note("agent died by its crash hook: Sage wrote, the server was not told")
        self.agent_killed_by_us = False
        expired = AgentJob.objects.filter(state=AgentJob.State.LEASED).update(
            lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
        self.start_agent()
        self.timeline.note(f"agent started again (exit {code}; {expired} leases expired)")

    # -- orders ---------------------------------------------------------------------------------
    def generate(self, count: int) -> None:
        response = requests.post(f"{self.system.sandbox_url}/__sandbox__/orders/generate", json={"count": count},
                                 timeout=30)
        response.raise_for_status()
        self.live_ids.extend(response.json()["created"])

    def maybe_refund(self, due: int) -> None:
        while len(self.refunds_placed) < min(due, self.plan.refunds) and self.live_ids:
            order_id = self.rng.choice(self.live_ids)
            kind = self.rng.choice(("item", "item", "shipping", "full"))
            response = requests.post(f"{self.system.sandbox_url}/__sandbox__/orders/{order_id}/refunds",
                                     json={"kind": kind}, timeout=10)
            self.counts["refund_attempts"] += 1
            if response.status_code == 201:
                self.refunds_placed.append(response.json()["id"])
            if self.counts["refund_attempts"] > 20 * self.plan.refunds:
                return  # few refundable orders: take what there is

    def drive(self) -> None:
        """The fault phase: orders at a steady rate while the events fire on schedule."""
        plan = self.plan
        events = sorted(plan.events)
        steps = -(-plan.live_orders // plan.batch)
        step = 0
        self.timeline.t0 = time.monotonic()
        self.timeline.note(f"system up, backfill of {plan.seeded_orders} seeded orders started; fault phase: "
                           f"{plan.live_orders} live orders, {plan.refunds} refunds, "
                           f"{len(events)} scheduled faults")
        while step < steps or events:
            now = time.monotonic() - self.timeline.t0
            while events and events[0][0] <= now:
                self.act(events.pop(0)[1])
            if step < steps and now >= step * plan.interval_s:
                self.generate(min(plan.batch, plan.live_orders - step * plan.batch))
                step += 1
                self.maybe_refund(due=round(plan.refunds * step / steps))
            self.supervise()
            time.sleep(0.1)
        self.faults(error_rate=0.0, rate_limit_storm=0.0)
        if not self.has_agent:
            self.system.soap_faults(error_rate=0.0, lost_reply_rate=0.0, drop_reply_rate=0.0, slow_reply_rate=0.0)
        self.timeline.note(f"fault phase over: {len(self.live_ids)} orders and {len(self.refunds_placed)} "
                           f"refunds placed; errors off")

    def settle(self, expected: int) -> bool:
        """Wait until ``expected`` orders and refunds are posted, every other record is posted or
        skipped (except those of ``allowed_open``, which the rules hold) and no agent job is open;
        with ``must_post`` set, until each of those records is posted by name. False after a stall
        of ``plan.stall_s`` or the settle timeout."""
        from connector.models import AgentJob, SyncRecord

        settled = (SyncRecord.State.POSTED, SyncRecord.State.SKIPPED)
        deadline = time.monotonic() + self.plan.settle_timeout_s
        last, last_change = None, time.monotonic()
        while time.monotonic() < deadline:
            self.supervise()
            if self.trigger.exists() and time.monotonic() > deadline - self.plan.settle_timeout_s / 2:
                self.trigger.unlink(missing_ok=True)  # armed but never fired: no write happened since
                self.timeline.note("crash hook disarmed (no Sage write happened after arming)")
            # Orders and refunds only: stock pushes end posted too, and counting them let a run call
            # itself settled while an order skipped as unpaid had not yet been read again as paid.
            posted_keys = set(SyncRecord.objects.filter(state=SyncRecord.State.POSTED, kind__in=POSTINGS)
                              .values_list("kind", "external_id"))
            open_records = sum(1 for key in SyncRecord.objects.exclude(state__in=settled)
                               .values_list("kind", "external_id") if key not in self.allowed_open)
            open_jobs = AgentJob.objects.exclude(state=AgentJob.State.DONE).count()
            missing = len(self.must_post - posted_keys)
            progress = (len(posted_keys), open_records, open_jobs, missing)
            if progress != last:
                self.timeline.note(f"settling: {len(posted_keys)}/{expected} posted, {open_records} records and "
                                   f"{open_jobs} agent jobs open" + (f", {missing} not posted yet" if missing else ""))
                last, last_change = progress, time.monotonic()
            if len(posted_keys) >= expected and not open_records and not open_jobs and not missing:
                return True
            if time.monotonic() - last_change > self.plan.stall_s:
                self.timeline.note(f"no progress for {self.plan.stall_s:.0f} s: giving up")
                return False
            time.sleep(1)
        self.timeline.note("settle timeout")
        return False


# The plan's actions: a phrase alone ("redis restart") or a verb and its one argument ("kill worker1",
# "storm 6"). Each names the ChaosRun method that does it; the method gets the argument ("" for none).
FIXED_ACTIONS: dict[str, Callable[[ChaosRun, str], None]] = {
    "kill workers mid-backfill": ChaosRun.kill_workers_mid_backfill,
    "agent crash after write": ChaosRun.arm_agent_crash,
    "agent kill": ChaosRun.kill_agent,
    "redis restart": ChaosRun.restart_redis,
}
ACTIONS_WITH_ARGUMENT: dict[str, Callable[[ChaosRun, str], None]] = {
    "kill": ChaosRun.kill_process,  # a worker by name
    "start": ChaosRun.start_worker,  # a worker by name, after its kill
    "storm": ChaosRun.rate_limit_storm,  # seconds of 429 from the store
    "licence": ChaosRun.licence_exhaustion,  # seconds with every Sage 100 licence seat taken
    "errors": ChaosRun.store_errors,  # share of store API calls answered 503
    "repeat": ChaosRun.repeat_webhooks,  # deliveries of every webhook
    "drop": ChaosRun.drop_webhooks,  # share of webhooks never delivered
    "soap-errors": ChaosRun.soap_errors,  # share of Sage 100 SOAP calls answered 503, nothing applied
    "soap-lost": ChaosRun.soap_lost_answers,  # share of applied SOAP creates answered 502
    "soap-drop": ChaosRun.soap_dropped_answers,  # share of applied SOAP creates never answered
    "soap-slow": ChaosRun.soap_late_answers,  # share of applied SOAP creates answered past the timeout
}


def resolve_action(action: str) -> tuple[Callable[[ChaosRun, str], None], str]:
    """The method and argument for one of the plan's actions; ValueError for anything else."""
    if action in FIXED_ACTIONS:
        return FIXED_ACTIONS[action], ""
    verb, _, argument = action.partition(" ")
    if verb in ACTIONS_WITH_ARGUMENT and argument:
        return ACTIONS_WITH_ARGUMENT[verb], argument
    raise ValueError(f"unknown chaos action {action!r}; known: {', '.join([*FIXED_ACTIONS, *ACTIONS_WITH_ARGUMENT])}")


# -- reconciliation (pure) ------------------------------------------------------------------------
def money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def captured(transactions: list[dict]) -> Decimal:
    from connector.bigcommerce import normalize as rules

    return sum((money(t["amount"]) for t in transactions
                if t.get("event") in rules.CAPTURE_EVENTS and t.get("status") == "ok"
                and rules.tender_kind(t) is None), Decimal("0.00"))


def refunded_in_money(refund: dict) -> Decimal:
    from connector.bigcommerce import normalize as rules

    return sum((money(p["amount"]) for p in refund.get("payments") or []
                if not p.get("is_declined") and not rules.TENDER_GATEWAYS.get((p.get("provider_id") or "").lower())),
               Decimal("0.00"))


def postable_statuses() -> frozenset[int]:
    from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, NEVER_PAID_STATUS_IDS

    return DEFAULT_PAID_STATUS_IDS - NEVER_PAID_STATUS_IDS


def reconcile(orders: dict[int, dict], refunds: list[dict], captured_by_order: dict[int, Decimal],
              docs: dict[str, dict[str, list[dict]]], records: list[dict], postable_ids: frozenset[int]) -> dict:
    """Compare the store with the Sage company. ``docs`` is System.sage_documents(); ``records``
    the sync records (kind, external_id, action, state, message). Every list in the answer is a
    difference except ``skipped``."""
    postable = {i for i, o in orders.items() if o["status_id"] in postable_ids}
    invoices = docs.get("invoice", {})
    expected_inv = {f"BC-{i}" for i in postable}
    out: dict = {"orders": len(orders), "postable_orders": len(postable), "refunds": len(refunds)}
    out["invoice_duplicates"] = sorted(r for r, rows in invoices.items() if len(rows) > 1)
    out["invoices_lost"] = sorted(expected_inv - set(invoices))
    out["invoices_unexpected"] = sorted(set(invoices) - expected_inv)
    cents: list[dict] = []
    for order_id in sorted(postable):
        rows = invoices.get(f"BC-{order_id}") or []
        if rows and money(rows[0]["gross"]) != money(orders[order_id]["total_inc_tax"]):
            cents.append({"reference": f"BC-{order_id}", "what": "invoice gross",
                          "sage": str(money(rows[0]["gross"])), "store": str(money(orders[order_id]["total_inc_tax"]))})
    receipts: dict[str, list[dict]] = defaultdict(list)
    for reference, rows in docs.get("SR", {}).items():
        receipts[reference.rsplit("-P", 1)[0]].extend(rows)
    out["receipt_duplicates"] = sorted(r for r, rows in docs.get("SR", {}).items() if len(rows) > 1)
    for order_id in sorted(postable):
        got = sum((money(r["amount"]) for r in receipts.get(f"BC-{order_id}", [])), Decimal("0.00"))
        want = captured_by_order.get(order_id, Decimal("0.00"))
        if got != want:
            cents.append({"reference": f"BC-{order_id}", "what": "receipts", "sage": str(got), "store": str(want)})
    credits = docs.get("credit", {})
    expected_cn = {f"BC-{r['order_id']}-R{r['id']}": r for r in refunds}
    out["credit_duplicates"] = sorted(r for r, rows in credits.items() if len(rows) > 1)
    out["credits_lost"] = sorted(set(expected_cn) - set(credits))
    out["credits_unexpected"] = sorted(set(credits) - set(expected_cn))
    out["refund_payment_duplicates"] = sorted(r for r, rows in docs.get("SP", {}).items() if len(rows) > 1)
    for reference, refund in sorted(expected_cn.items()):
        rows = credits.get(reference) or []
        if rows and money(rows[0]["gross"]) != money(refund["total_amount"]):
            cents.append({"reference": reference, "what": "credit note gross", "sage": str(money(rows[0]["gross"])),
                          "store": str(money(refund["total_amount"]))})
        paid = sum((money(r["amount"]) for ref, rs in docs.get("SP", {}).items() if ref.startswith(reference + "-P")
                    for r in rs), Decimal("0.00"))
        if rows and paid != refunded_in_money(refund):
            cents.append({"reference": reference, "what": "refund payments", "sage": str(paid),
                          "store": str(refunded_in_money(refund))})
    out["cent_differences"] = cents
    settled = {"posted", "skipped"}
    out["stuck"] = [{k: r[k] for k in ("kind", "external_id", "action", "state", "message")}
                    for r in records if r["state"] not in settled]
    skipped = [r for r in records if r["state"] == "skipped"]
    out["skipped_but_postable"] = sorted(f"BC-{r['external_id']}" for r in skipped
                                         if r["kind"] == "order" and int(r["external_id"]) in postable)
    out["skipped"] = dict(Counter(re.sub(r"^BC-\d+ is not posted: ", "", r["message"]).split(".")[0][:90]
                                  for r in skipped))
    out["duplicates"] = sum(len(out[k]) for k in ("invoice_duplicates", "receipt_duplicates", "credit_duplicates",
                                                   "refund_payment_duplicates"))
    out["lost"] = len(out["invoices_lost"]) + len(out["credits_lost"])
    out["cent_difference_count"] = len(cents)
    out["ok"] = not (out["duplicates"] or out["lost"] or cents or out["stuck"] or out["invoices_unexpected"]
                     or out["credits_unexpected"] or out["skipped_but_postable"])
    return out


def reconcile_sage100(orders: dict[int, dict], sales_orders: dict[str, list[dict]], records: list[dict],
                      postable_ids: frozenset[int], customer_emails: list[str] | None = None) -> dict:
    """Compare the store with the Sage 100 company: one sales order per postable order (by its
    customer PO, the store order number), equal to the order's total; one AR customer per buyer
    email (``customer_emails``: every customer's, as Sage holds them); nothing stuck."""
    postable = {i for i, o in orders.items() if o["status_id"] in postable_ids}
    expected = {str(i) for i in postable}
    out: dict = {"orders": len(orders), "postable_orders": len(postable)}
    out["sales_order_duplicates"] = sorted(po for po, rows in sales_orders.items() if len(rows) > 1)
    out["sales_orders_lost"] = sorted(expected - set(sales_orders))
    out["sales_orders_unexpected"] = sorted(set(sales_orders) - expected)
    out["cent_differences"] = [
        {"reference": po, "what": "sales order total", "sage": str(money(rows[0]["OrderTotal"])),
         "store": str(money(orders[int(po)]["total_inc_tax"]))}
        for po, rows in sorted(sales_orders.items())
        if po in expected and money(rows[0]["OrderTotal"]) != money(orders[int(po)]["total_inc_tax"])]
    out["stuck"] = [{k: r[k] for k in ("kind", "external_id", "action", "state", "message")}
                    for r in records if r["state"] not in ("posted", "skipped")]
    by_email = Counter((email or "").strip().lower() for email in customer_emails or ())
    out["customer_duplicates"] = sorted(email for email, n in by_email.items() if email and n > 1)
    out["duplicates"] = len(out["sales_order_duplicates"]) + len(out["customer_duplicates"])
    out["lost"] = len(out["sales_orders_lost"])
    out["cent_difference_count"] = len(out["cent_differences"])
    out["ok"] = not (out["duplicates"] or out["lost"] or out["cent_differences"] or out["stuck"]
                     or out["sales_orders_unexpected"])
    return out


def reconcile_system(system, sage: str = "sage50") -> dict:
    """Read the store (faults off) and the Sage company and reconcile them."""
    from connector.models import SyncRecord
    from demo.seed import SOAP_COMPANY

    # This system's records only: the Black Friday bench reconciles fifty stores on one database.
    mine = SyncRecord.objects.filter(integration=system.integration)
    if sage == "sage100":
        records = list(mine.values("kind", "external_id", "action", "state", "message"))
        emails = [c.get("EmailAddress") or "" for c in system.soap(f"companies/{SOAP_COMPANY}/customers")] \
            if system.soap_url else [r["EmailAddress"] or "" for r in system.query("SELECT EmailAddress FROM ar_customer")]
        return reconcile_sage100({o["id"]: o for o in system.store_orders()}, system.sales_orders_100(), records,
                                 postable_statuses(), emails)
    orders = {o["id"]: o for o in system.store_orders()}
    refunds = system.store_refunds()
    statuses = postable_statuses()
    client = system.store_client()
    captured_by_order = {i: captured(client.order_transactions(i)) for i, o in orders.items()
                         if o["status_id"] in statuses}
    records = list(mine.values("kind", "external_id", "action", "state", "message"))
    return reconcile(orders, refunds, captured_by_order, system.sage_documents(), records, statuses)


def expected_postings(system, sage: str = "sage50") -> int:
    """Records that end posted: the postable orders, and for Sage 50 the refunds (a Sage 100 refund
    is a note on its order's record, skipped)."""
    statuses = postable_statuses()
    orders = sum(1 for o in system.store_orders() if o["status_id"] in statuses)
    return orders + (len(system.store_refunds()) if sage == "sage50" else 0)


# -- one whole run ----------------------------------------------------------------------------------
def start_chaos_system(process_env: dict, work_dir: Path, plan: Plan):
    """demo.system.start_system with the run's settings; the agent is started by ChaosRun."""
    from demo.system import start_system

    # Lost messages (killed workers) are re-sent by the sweeper: tighter ticks keep the run short.
    env = {**process_env, "POLL_TICK_SECONDS": str(plan.poll_seconds), "LOG_LEVEL": "INFO",
           "SWEEP_GRACE_SECONDS": "20", "SWEEP_TICK_SECONDS": "5", "SAGE100_SOAP_TIMEOUT_SECONDS": str(SOAP_TIMEOUT_S)}
    return start_system(env, work_dir, orders=plan.seeded_orders, workers=plan.workers, concurrency=2,
                        agent=False, kick=False, webhook_repeat=2, poll_interval_seconds=plan.poll_seconds,
                        sage=plan.sage, transport=plan.transport, soap_extra=["--seed", str(plan.seed)])


def run_chaos(system, plan: Plan, work_dir: Path, *, redis: DedicatedRedis | None = None,
              echo: bool = True) -> dict:
    """Drive the plan against a started system, let it settle, reconcile. Returns the result."""
    started = time.monotonic()
    run = ChaosRun(system, plan, redis=redis, trigger=work_dir / "agent-crash-trigger", echo=echo)
    run.start_agent()
    system.kick_sync()
    run.drive()
    expected = expected_postings(system, plan.sage)
    settled = run.settle(expected)
    run.trigger.unlink(missing_ok=True)
    result = reconcile_system(system, plan.sage)
    result.update({
        "settled": settled, "expected_postings": expected, "wall_s": round(time.monotonic() - started, 1),
        "faults": dict(run.counts), "live_orders": len(run.live_ids), "refunds_placed": len(run.refunds_placed),
        "webhook_deliveries": len(system.sandbox("webhooks")["deliveries"]), "timeline": run.timeline.entries,
        "plan": {k: v for k, v in asdict(plan).items() if k != "events"},
    })
    if system.soap_url:
        result["soap_operations"] = system.soap("operations")
    result["ok"] = result["ok"] and settled
    return result


def _soap_rows(result: dict) -> list[tuple[str, object, str]]:
    """A SOAP run's own faults, as the emulator counted them."""
    ops = result.get("soap_operations")
    if ops is None:
        return []
    return [("SOAP 503 windows / creates applied then answered 502, dropped, late",
             "{} / {}, {}, {}".format(result["faults"].get("soap_5xx_windows", 0),
                                      *(ops.get(k, 0) for k in ("(answer lost: 502)", "(answer dropped)",
                                                                "(answer late)"))), ""),
            ("SOAP calls: GetSalesOrder / CreateSalesOrder",
             f"{ops.get('GetSalesOrder', 0)} / {ops.get('CreateSalesOrder', 0)}", "")]


def print_summary(result: dict) -> None:
    rows = [
        ("orders in the store", result["orders"], ""),
        ("paid orders (postable)", result["postable_orders"], ""),
        # A Sage 100 run reconciles sales orders only (a refund there is a note for the accountant).
        ("refunds", result.get("refunds", "—"), ""),
        ("duplicates (invoices, receipts, credit notes, refund payments)", result["duplicates"], "target 0"),
        ("lost (invoices + credit notes missing in Sage)", result["lost"], "target 0"),
        ("cent differences", result["cent_difference_count"], "target 0"),
        ("stuck records", len(result["stuck"]), "target 0"),
        ("skipped but postable", len(result.get("skipped_but_postable", [])), "target 0"),
        *([("held by the rules (partly invoiced) / credit memos waiting for them",
            f"{result['held_orders']} / {result['refunds_waiting']}", "nothing in Sage")]
          if "held_orders" in result else []),
        ("worker kills / agent kills / agent crashes after write",
         "{} / {} / {}".format(*(result["faults"].get(k, 0) for k in ("worker_kills", "agent_kills",
                                                                      "agent_crashes"))), ""),
        *([("workers that exited by themselves (started again)", result["faults"]["worker_crashes"], "")]
          if result["faults"].get("worker_crashes") else []),
        ("429 storms / Redis restarts", "{} / {}".format(result["faults"].get("storms", 0),
                                                         result["faults"].get("redis_restarts", 0)), ""),
        ("webhook deliveries sent by the store", result["webhook_deliveries"], "2-3x each, 20 % dropped"),
        *_soap_rows(result),
        ("wall time (s)", result["wall_s"], ""),
    ]
    print()
    for label, value, note in rows:
        print(f"  {label:66} {value!s:>10}  {note}")
    for record in result["stuck"][:30]:
        print(f"  STUCK {record['kind']} {record['external_id']} {record['action']}: {record['state']} — "
              f"{record['message'][:160]}")
    for diff in result["cent_differences"][:30]:
        print(f"  DIFF {diff['reference']} {diff['what']}: Sage {diff['sage']} store {diff['store']}")
    for key in ("invoice_duplicates", "credit_duplicates", "receipt_duplicates", "invoices_lost", "credits_lost",
                "invoices_unexpected", "credits_unexpected", "skipped_but_postable",
                "sales_order_duplicates", "sales_orders_lost", "sales_orders_unexpected", "customer_duplicates"):
        if result.get(key):
            print(f"  {key}: {result[key][:30]}")
    if result.get("skipped"):
        print(f"  skipped (not postable, with reasons): {result['skipped']}")
    print(f"\n  {'PASS' if result['ok'] else 'FAIL'}: {'settled' if result['settled'] else 'did NOT settle'}")


def main(argv=None, *, start: Callable = start_chaos_system, run: Callable = run_chaos, store: str = "") -> int:
    """The command line. Another store's run (bench/chaos_adobe.py) passes its own ``start`` and
    ``run`` (same signatures as start_chaos_system / run_chaos) and its name, which names its
    database and result file."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.chaos{'_' + store if store else ''}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 80 orders, a few faults (~3 minutes)")
    parser.add_argument("--orders", type=int, help="orders in all (default 1000, quick 80)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--keep", action="store_true", help="keep the run's data folder (logs, Sage company)")
    parser.add_argument("--sage", choices=["sage50", "sage100"], default="sage50",
                        help="the integration's Sage: sage100 posts sales orders through the sage100sim agent and "
                             "adds licence exhaustion to the faults")
    parser.add_argument("--transport", choices=["agent", "soap"], default="agent",
                        help="Sage 100 only: soap posts from the workers over eBusiness Web Services (HTTPS emulator) "
                             "with SOAP 503s and lost, dropped and late answers to applied creates")
    args = parser.parse_args(argv)
    if args.transport == "soap" and args.sage != "sage100":
        parser.error("--transport soap is for --sage sage100")
    plan = (quick_plan(args.orders or 80, args.seed) if args.quick else full_plan(args.orders or 1000, args.seed))
    if args.sage == "sage100":
        plan = sage100_soap_plan(plan) if args.transport == "soap" else sage100_plan(plan)

    work_dir = Path(tempfile.mkdtemp(prefix="mlc-chaos-"))
    os.environ["ML_DATA_DIR"] = str(work_dir)  # own broker folder, logs and SQLite file
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    redis = None
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        if not shutil.which("redis-server"):
            print("CELERY_BROKER_URL is Redis but redis-server is not installed: cannot run a Redis of our own")
            return 2
        redis = DedicatedRedis(work_dir)
        redis.start()
        os.environ["CELERY_BROKER_URL"] = os.environ["COORDINATION_REDIS_URL"] = redis.url
    system = None
    try:
        # CHAOS_DATABASE, or named per store and process: two chaos runs at once on one PostgreSQL
        # server (two developers, the Adobe run beside a BigCommerce one, two checkouts) must not
        # drop each other's database.
        default_name = f"mlconnector_chaos{'_' + store if store else ''}_{os.getpid()}"
        db_url = prepare_database(os.environ.get("CHAOS_DATABASE") or default_name, work_dir / "chaos.sqlite3")
        import django

        django.setup()
        from django.conf import settings

        from bench.environment import machine

        print(f"chaos: {plan.seeded_orders + plan.live_orders} orders, database {db_url.split('@')[-1]}, "
              f"broker {settings.CELERY_BROKER_URL}, data {work_dir}", flush=True)
        process_env = {"DATABASE_URL": db_url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                       "COORDINATION_REDIS_URL": settings.COORDINATION_REDIS_URL or "",
                       "SECRET_KEY": settings.SECRET_KEY, "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
                       "DEBUG": "1", "ML_DATA_DIR": str(work_dir)}
        system = start(process_env, work_dir, plan)
        result = run(system, plan, work_dir, redis=redis)
        result.update({"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
                       "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                       "broker": settings.CELERY_BROKER_URL.split(":", 1)[0], "quick": args.quick})
    finally:
        if system is not None:
            system.stop()
        if redis is not None:
            redis.stop()
    print_summary(result)
    out_dir = BASE_DIR / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{store + '-' if store else ''}chaos-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"  written: {out.relative_to(BASE_DIR)}")
    if not result["ok"]:
        print(f"  logs kept in {work_dir / 'logs'}")
    elif not args.keep:
        shutil.rmtree(work_dir, ignore_errors=True)
        drop_database(db_url.rpartition("/")[2])  # the run's own database, once its result is written
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
