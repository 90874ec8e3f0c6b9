"""The run loop: heartbeat, lease, execute jobs serially in one Sage company, complete or fail,
poll Sage for changes and push them. Backs off when the server or Sage is unavailable.

One ``Runner`` drives one Sage company: jobs and change polls share the Sage login (one user
name cannot be logged in twice), so everything touching Sage happens on this one thread, one job
at a time.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from agent import __version__, doctor
from agent.backends.base import SageBackend
from agent.backoff import Backoff
from agent.client import AgentClient, StaleLease
from agent.config import AgentConfig
from agent.errors import RecordLocked, SageBusy, SageError
from agent.journal import ACKNOWLEDGED, WRITTEN, Journal
from agent.logging_setup import CONSOLE_SKIP
from agent.operations import WRITE_OPERATIONS, OperationSettings, SageKnowledge, execute, prefetch, sage_id_of
from mlcommon.http import ApiError, AuthError, RateLimitedError, RetryableError

logger = logging.getLogger("agent.runner")


class StopRequested(BaseException):
    """Raised by the signal handler to abandon an idle long poll. A BaseException, like
    KeyboardInterrupt, so no `except Exception` in the HTTP stack swallows it."""


PUSH_BATCH = 500
# Results are sent in batches (POST /jobs/complete) when the server has that endpoint: at most this
# many, and never held longer than this after the first one, so a slow Sage does not sit on results.
# Once the server is known to take batches they are sent from a background thread, so the server
# applies one batch while Sage writes the next (the lease is larger than a batch: 100 by default).
# 50 rather than 25: each request has a fixed cost on the server (measured on the 3,000-order
# pipeline: 25 → 140 orders/s, 50 → 153).
COMPLETE_BATCH = 50
COMPLETE_HOLD_SECONDS = 0.5
# A throttled call waits the server's Retry-After, but never less: a Retry-After of 0 must not
# turn into a tight loop of 429s.
MIN_THROTTLED_PAUSE = 0.05


@dataclass
class ServerSettings:
    lease_wait_seconds: int = 25
    max_jobs: int = 10
    poll_changes_seconds: float = 60.0
    stock_quantity: str = "available"
    price_level: str | None = None  # Sage 100: the integration's price level; None: the server names none


def out_of_step_gap(interval: float, done: int, rng: random.Random) -> float:
    """Seconds to the next heartbeat or change poll after the ``done``-th one. Agents that start
    together (every agent reconnecting after the server's outage, a site's PCs after a power cut,
    a test fleet) would otherwise call in step for ever: fifty agents pushing their Sage changes in
    the same second start a hundred stock and price pushes on the server at once, every minute.
    So the second call comes after a random half to all of the interval, which spreads their
    phases at once, and every later one after the interval ± 10 %."""
    if done == 1:
        return interval * rng.uniform(0.5, 1.0)
    return interval * rng.uniform(0.9, 1.1)


class Runner:
    def __init__(self, config: AgentConfig, backend: SageBackend, client: AgentClient, journal: Journal, *,
                 out=None, clock=time.monotonic, rng: random.Random | None = None):
        self.config = config
        self.rng = rng or random.Random()
        self.backend = backend
        self.client = client
        self.journal = journal
        self.out = out if out is not None else sys.stdout
        self.clock = clock
        self.stop_event = threading.Event()
        self.server = ServerSettings()
        self.cursors: dict[str, str | None] = {}
        self._pushed_at_cursor: dict[str, set] = {}
        self.server_backoff = Backoff(base=config.backoff_base_seconds, cap=config.backoff_cap_seconds)
        self.sage_backoff = Backoff(base=config.backoff_base_seconds, cap=config.backoff_cap_seconds)
        self.settings = OperationSettings(sales_nominal=config.sales_nominal,
                                          carriage_nominal=config.carriage_nominal,
                                          bank_nominal=config.bank_nominal)
        # Answers from Sage that spare look-ups (the batch's search, stock codes seen): operations.py.
        self.knowledge = SageKnowledge()
        self._next_heartbeat = 0.0
        self._next_changes = 0.0
        self._change_polls = self._heartbeats = 0
        self._heartbeat_ok = False
        self.jobs_done = 0
        self._outbox: list[tuple[dict, dict, bool]] = []  # (job, result, replayed) awaiting `complete`
        self._outbox_since = 0.0
        self._sender: ThreadPoolExecutor | None = None  # one thread: batches reach the server in order
        self._sender_client: AgentClient | None = None
        self._sending: list[Future] = []
        self._in_long_poll = False

    # -- control ---------------------------------------------------------------------------
    def stop(self, *_args) -> None:
        if not self.stop_event.is_set():
            logger.info("stopping: finishing the current job, then logging out of Sage")
        self.stop_event.set()

    def on_signal(self, *_args) -> None:
        """SIGINT/SIGTERM handler. During the idle long poll (up to ~25 s) nothing is in hand, so
        the wait is abandoned at once by raising out of the blocked socket read (PEP 475: a
        handler that raises interrupts the system call). Jobs the server handed over in that
        instant go back to the queue when their lease expires. Anywhere else the current job
        finishes first: raising mid-job could split a Sage write from its journal entry."""
        self.stop()
        if self._in_long_poll:
            raise StopRequested

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop_event.wait(seconds)

    def _say(self, line: str) -> None:
        # The line goes to stdout for the person watching; the log file gets it too, but the
        # console log handler skips it so a foreground agent does not print every job twice.
        logger.info(line, extra={CONSOLE_SKIP: True})
        try:
            print(line, file=self.out, flush=True)
        except (OSError, ValueError):
            pass

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        """Loop until stopped (or one cycle with ``once``). Returns a process exit code."""
        logger.info("agent %s starting: backend=%s company=%s server=%s", __version__, self.backend.name,
                    self.config.company, self.client.base_url)
        exit_code = 0
        try:
            while not self.stopping:
                try:
                    self.cycle()
                    self.server_backoff.success()
                except StopRequested:  # the signal landed just outside cycle()'s own guard
                    break
                except AuthError as exc:
                    logger.error("the server refused the agent key (%s); check the key in admin", exc.status)
                    if self.config.once:
                        return 3
                    self._sleep(self.server_backoff.failure())
                    continue
                except RateLimitedError as exc:
                    # Throttled: the server says when the next call is welcome. Not an outage, so no
                    # growing backoff (that turned a one-second window into a stall of several).
                    delay = self.throttled_delay(exc)
                    logger.info("the server asked the agent to slow down; next call in %.1fs", delay)
                    if self.config.once:
                        return 2
                    self._sleep(delay)
                    continue
                except (RetryableError, ApiError) as exc:
                    delay = self.server_backoff.failure()
                    logger.warning("server unavailable (%s); retrying in %.1fs", exc, delay)
                    if self.config.once:
                        return 2
                    self._sleep(delay)
                    continue
                if self.config.once:
                    break
        finally:
            self.wait_for_results()
            if self._sender is not None:
                self._sender.shutdown(wait=True)
            try:
                self.backend.disconnect()
            except Exception:  # noqa: BLE001 - logging out must never mask the real exit
                logger.exception("logout from Sage failed")
            logger.info("agent stopped after %d job(s)", self.jobs_done)
        return exit_code

    def throttled_delay(self, error: RateLimitedError) -> float:
        """The server's Retry-After, within sane bounds; without one, the usual backoff."""
        if error.retry_after is None:
            return self.server_backoff.failure()
        return min(max(error.retry_after, MIN_THROTTLED_PAUSE), self.config.backoff_cap_seconds)

    def cycle(self) -> None:
        now = self.clock()
        if now >= self._next_heartbeat or not self._heartbeat_ok:
            self.wait_for_results()  # the journal's unacknowledged entries are then really unanswered
            self.heartbeat()
            self._heartbeats += 1
            self._next_heartbeat = self.clock() + out_of_step_gap(self.config.heartbeat_seconds, self._heartbeats,
                                                                  self.rng)
            self.flush_unacknowledged()
        if self.clock() >= self._next_changes and self.config.change_kinds:
            self.poll_changes()
            self._change_polls += 1
            self._next_changes = self.clock() + out_of_step_gap(self.poll_interval, self._change_polls, self.rng)
        if self.stopping:
            return
        if self.sage_backoff.failures:
            # Sage was busy or locked: probe with a login before taking jobs, so a long backup
            # does not burn the jobs' attempts.
            if not self.probe_sage():
                return
        wait = self.lease_wait
        if not self.config.once:
            until_due = min(self._next_heartbeat, self._next_changes) - self.clock()
            wait = max(0, min(wait, int(until_due)))
        self._in_long_poll = True
        try:
            jobs = self.client.lease(self.max_jobs, wait)
        except StopRequested:
            return
        finally:
            self._in_long_poll = False
        if jobs:
            self.process(jobs)
        elif wait == 0 and not self.config.once:
            # No long poll this round: do not hammer the server, but a heartbeat due in a moment
            # is not a reason to sit a whole second on jobs that arrive meanwhile.
            due = min(self._next_heartbeat, self._next_changes) - self.clock()
            self._sleep(max(0.05, min(1.0, due)))

    @property
    def lease_wait(self) -> int:
        value = self.config.lease_wait_seconds
        return int(self.server.lease_wait_seconds if value is None else value)

    @property
    def max_jobs(self) -> int:
        return int(self.config.max_jobs or self.server.max_jobs)

    @property
    def poll_interval(self) -> float:
        value = self.config.poll_changes_seconds
        return float(self.server.poll_changes_seconds if value is None else value)

    # -- heartbeat -----------------------------------------------------------------------------
    def heartbeat(self) -> dict:
        try:
            described = self.backend.describe()
        except SageError as exc:
            logger.warning("could not read Sage details for the heartbeat: %s", exc)
            described = {"sage_edition": self.backend.edition, "sage_version": "", "company": ""}
        info = {"agent_version": __version__, "backend": self.backend.name, **described}
        if not info.get("company"):
            info["company"] = self.config.company
        summary = doctor.last_summary(self.config.doctor_report)
        if summary is not None:
            info["doctor"] = summary  # the admin's agent page shows the last self-check
        answer = self.client.heartbeat(info)
        config = answer.get("config") or {}
        previous_level = self.server.price_level
        self.server = ServerSettings(
            lease_wait_seconds=int(config.get("lease_wait_seconds", self.server.lease_wait_seconds)),
            max_jobs=int(config.get("max_jobs", self.server.max_jobs)),
            poll_changes_seconds=float(config.get("poll_changes_seconds", self.server.poll_changes_seconds)),
            stock_quantity=config.get("stock_quantity", self.server.stock_quantity),
            price_level=config.get("price_level", self.server.price_level))
        if not self._heartbeat_ok:
            # The server's cursors are where a restarted agent resumes; afterwards ours run ahead.
            self.cursors.update(config.get("cursors") or {})
        elif previous_level != self.server.price_level:
            # The accountant chose another price level: every price again, at the new level.
            self.cursors["price"] = (config.get("cursors") or {}).get("price")
            self._pushed_at_cursor.pop("price", None)
            logger.info("price level now %r: prices are read again from %s", self.server.price_level,
                        self.cursors["price"] or "the beginning")
        self._heartbeat_ok = True
        return answer

    # -- jobs ----------------------------------------------------------------------------------
    def probe_sage(self) -> bool:
        try:
            self.backend.connect()
        except SageError as exc:
            delay = self.sage_backoff.failure()
            logger.warning("Sage still unavailable (%s: %s); next try in %.1fs", exc.code, exc, delay)
            self._sleep(delay)
            return False
        finally:
            self.backend.disconnect()
        self.sage_backoff.success()
        return True

    def process(self, jobs: list[dict]) -> None:
        pending = []
        for job in jobs:
            # Jobs whose Sage write is already in the journal need no Sage at all: answer them first.
            if not self.complete_from_journal(job):
                pending.append(job)
        if not pending:
            self.flush_results()
            return
        # Connect per batch and log out after it: the integration user stays free between batches.
        try:
            try:
                self.backend.connect()
            except SageError as exc:
                for job in pending:
                    self.report_failure(job, exc)
                delay = self.sage_backoff.failure() if exc.retryable else 0
                if delay:
                    logger.warning("Sage unavailable (%s); pausing %.1fs before leasing again", exc.code, delay)
                    self._sleep(delay)
                return
            # One journal transaction for the batch: "may have touched Sage" is written before the
            # first job runs; a job never reached (the agent stopping) is looked up in Sage anyway.
            self.journal.started_many([(int(job["id"]), job.get("op", ""), job.get("reference", ""),
                                        job.get("lease_token")) for job in pending
                                       if job.get("op") in WRITE_OPERATIONS])
            # After "started" is journalled and inside the same login the jobs write in: the
            # batch's references in one search (each answer used once, by its job's first attempt).
            prefetch(self.backend, [job for job in pending if job.get("op") in WRITE_OPERATIONS], self.knowledge)
            while pending:
                job = pending.pop(0)
                if self.stopping:
                    self.release(job, "agent is stopping")
                    continue
                self.run_job(job)
        finally:
            self.knowledge.begin_batch({})  # a batch's search answers never outlive its login
            self.backend.disconnect()
            self.flush_results()
            # The next lease may go out while the server applies this lease's last results (it hands
            # out other ready jobs meanwhile; these are leased to us, so never handed out twice).
            # One batch in flight at most; none with --once, whose caller reads the run as finished.
            self.wait_for_results(in_flight=0 if self.config.once else 1)

    def release(self, job: dict, why: str) -> None:
        try:
            self.client.fail(job["id"], job["lease_token"], "sage_busy", why, True)
        except ApiError as exc:
            logger.warning("could not hand job %s back (%s); its lease will expire", job["id"], exc)

    def complete_from_journal(self, job: dict) -> bool:
        if job.get("op") not in WRITE_OPERATIONS:
            return False
        entry = self.journal.get(int(job["id"]))
        if entry is None or entry.state not in (WRITTEN, ACKNOWLEDGED) or entry.result is None:
            return False
        # Sage already has it and we know the answer; the server just never heard it.
        self.complete(job, entry.result, replayed=True)
        return True

    def run_job(self, job: dict) -> None:
        """Execute one job whose journal entry is started (process() writes them for the batch)."""
        if self.complete_from_journal(job):
            return
        job_id, op = int(job["id"]), job.get("op", "")
        is_write = op in WRITE_OPERATIONS
        try:
            result = self.execute_with_local_retry(op, job.get("payload") or {})
        except SageError as exc:
            self.report_failure(job, exc)
            return
        except Exception as exc:  # noqa: BLE001 - one bad job must not stop the agent
            logger.exception("job %s %s crashed", job_id, op)
            self.report_failure(job, SageError(f"{exc.__class__.__name__}: {exc}"), retryable=True)
            return
        if is_write:
            self.journal.written(job_id, sage_id_of(result), result)
        self.complete(job, result)

    def execute_with_local_retry(self, op: str, payload: dict) -> dict:
        """Busy and record-locked are retried here a few times, briefly.

        They usually last seconds (someone saving a customer, Sage writing its files), and a local
        retry keeps the job's attempts and the server's backoff for real outages. The total wait is
        bounded far below the lease (120 s), so the lease never expires under us. Exclusive mode and
        "same user logged in" last minutes or hours: they go straight back to the server.
        """
        attempt = 0
        while True:
            try:
                return execute(self.backend, op, payload, self.settings, knowledge=self.knowledge)
            except (SageBusy, RecordLocked) as exc:
                attempt += 1
                if attempt > self.config.local_retries or self.stopping:
                    raise
                delay = self.config.local_retry_seconds * (2 ** (attempt - 1))
                logger.info("%s (%s); retry %d/%d in %.1fs", exc.code, exc, attempt, self.config.local_retries,
                            delay)
                self._sleep(delay)

    def complete(self, job: dict, result: dict, *, replayed: bool = False) -> None:
        """Hand a result to the server: batched when the server supports it, else at once."""
        if self.client.batch_complete is False:
            self.complete_one(job, result, replayed=replayed)
            return
        if not self._outbox:
            self._outbox_since = self.clock()
        self._outbox.append((job, result, replayed))
        if len(self._outbox) >= COMPLETE_BATCH or self.clock() - self._outbox_since >= COMPLETE_HOLD_SECONDS:
            self.flush_results()

    def flush_results(self) -> None:
        outbox, self._outbox = self._outbox, []
        if not outbox:
            return
        if not self.client.batch_complete:  # not known yet (the first batch finds out) or an older server
            self._send_results(outbox, self.client)
            return
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-complete")
            # Its own HTTP session: the main thread keeps using the client for fail and release.
            self._sender_client = self.client.twin()
        self._sending.append(self._sender.submit(self._send_results, outbox, self._sender_client))

    def wait_for_results(self, in_flight: int = 0) -> None:
        """Until at most ``in_flight`` of the batches handed to the sender thread are without an
        answer (each one handles its own errors)."""
        oldest = len(self._sending) - in_flight
        if oldest <= 0:
            return
        sending, self._sending = self._sending[:oldest], self._sending[oldest:]
        for future in sending:
            try:
                future.result()
            except Exception:  # noqa: BLE001 - the journal still holds the results; they are sent again later
                logger.exception("sending results failed; they stay in the journal")

    def _send_results(self, outbox: list[tuple[dict, dict, bool]], client: AgentClient) -> None:
        try:
            answers = client.complete_many([{"id": int(job["id"]), "lease_token": job["lease_token"],
                                                  "result": result} for job, result, _ in outbox])
        except ApiError as exc:
            logger.warning("%d result(s) not acknowledged (%s); will complete them from the journal later",
                           len(outbox), exc)
            return
        if answers is None:  # an older server: one call per job
            for job, result, replayed in outbox:
                self.complete_one(job, result, replayed=replayed)
            return
        by_id = {int(a.get("id", 0)): a for a in answers}
        self.journal.acknowledged(*[int(job["id"]) for job, _, _ in outbox if job.get("op") in WRITE_OPERATIONS
                                    and (by_id.get(int(job["id"])) or {}).get("status") == 200])
        for job, result, replayed in outbox:
            answer = by_id.get(int(job["id"])) or {}
            if answer.get("status") == 200:
                self.acknowledged(job, result, replayed)
            elif answer.get("status") == 409:
                logger.warning("job %s: lease is stale; the result stays in the journal for its next lease",
                               job["id"])
            else:
                logger.warning("job %s: complete failed (%s %s); will complete it from the journal later",
                               job["id"], answer.get("status"), answer.get("detail"))

    def complete_one(self, job: dict, result: dict, *, replayed: bool = False) -> None:
        job_id = int(job["id"])
        try:
            self.client.complete(job_id, job["lease_token"], result)
        except StaleLease:
            logger.warning("job %s: lease is stale; the result stays in the journal for its next lease", job_id)
            return
        except ApiError as exc:
            logger.warning("job %s: complete failed (%s); will complete it from the journal later", job_id, exc)
            return
        if job.get("op") in WRITE_OPERATIONS:
            self.journal.acknowledged(job_id)
        self.acknowledged(job, result, replayed)

    def acknowledged(self, job: dict, result: dict, replayed: bool) -> None:
        """Count and print a job the server acknowledged (its journal entry is marked by the caller)."""
        job_id = int(job["id"])
        self.jobs_done += 1
        sage_id = sage_id_of(result) or "-"
        self._say(f"JOB {job_id} {job.get('op')} ref={job.get('reference', '')} -> done sage_id={sage_id} "
                  f"existed={str(bool(result.get('existed'))).lower()}{' (from journal)' if replayed else ''}")

    def report_failure(self, job: dict, exc: SageError, *, retryable: bool | None = None) -> None:
        retryable = exc.retryable if retryable is None else retryable
        job_id = int(job["id"])
        try:
            self.client.fail(job_id, job["lease_token"], exc.code, str(exc), retryable)
        except ApiError as err:
            logger.warning("job %s: fail could not be reported (%s); the lease will expire", job_id, err)
        self._say(f"JOB {job_id} {job.get('op')} ref={job.get('reference', '')} -> failed code={exc.code} "
                  f"retryable={str(retryable).lower()}: {exc}")

    def flush_unacknowledged(self) -> None:
        """Results written to Sage whose ``complete`` never reached the server: try again now."""
        for entry in self.journal.pending_acknowledgement():
            if not entry.lease_token or entry.result is None:
                continue
            try:
                self.client.complete(entry.job_id, entry.lease_token, entry.result)
            except StaleLease:
                continue  # it will come back in a lease and be completed from the journal then
            except ApiError as exc:
                logger.info("job %s still unacknowledged (%s)", entry.job_id, exc)
                return
            self.journal.acknowledged(entry.job_id)
            logger.info("job %s acknowledged from the journal", entry.job_id)

    # -- changes ---------------------------------------------------------------------------------
    def change_options(self) -> dict | None:
        """What a Sage 100 backend reads changes with: its own options (warehouses, price level from
        the config file) with the integration's price level from the server over them. None for a
        backend without options (Sage 50)."""
        own = getattr(self.backend, "change_options", None)
        if own is None:
            return None
        if self.server.price_level is None:
            return dict(own)
        return {**own, "price_level": self.server.price_level}

    def poll_changes(self) -> None:
        options = self.change_options()
        extra = () if options is None else (options,)
        found = {}
        try:
            with self.backend.session():
                for kind in self.config.change_kinds:
                    try:
                        found[kind] = self.backend.read_changes(kind, self.cursors.get(kind), *extra)
                    except SageError as exc:
                        if exc.retryable:
                            raise
                        # One kind Sage cannot give (the boi backend and a price level) must not
                        # stop the others: stock still flows.
                        logger.warning("%s changes not read: %s", kind, exc)
        except SageError as exc:
            logger.info("change poll skipped: Sage unavailable (%s: %s)", exc.code, exc)
            return
        for kind, items in found.items():
            self.push(kind, items)

    def push(self, kind: str, items: list[dict]) -> None:
        # Modify dates are compared with >= (Sage keeps whole seconds), so the records stamped
        # exactly at the cursor come back every poll; skip the ones already pushed.
        already = self._pushed_at_cursor.get(kind, set())
        fresh = [i for i in items if _change_key(i) not in already]
        if not fresh:
            return
        cursor = max((i.get("modified_at") or "" for i in fresh), default="") or self.cursors.get(kind)
        for start in range(0, len(fresh), PUSH_BATCH):
            batch = fresh[start:start + PUSH_BATCH]
            batch_cursor = cursor if start + PUSH_BATCH >= len(fresh) else self.cursors.get(kind)
            answer = self.client.push_changes(kind, batch, batch_cursor)
            logger.info("pushed %d %s change(s); server accepted %s", len(batch), kind, answer.get("accepted"))
        self.cursors[kind] = cursor
        self._pushed_at_cursor[kind] = {_change_key(i) for i in items if i.get("modified_at") == cursor}


def _change_key(item: dict) -> tuple:
    return (item.get("stock_code") or item.get("account_ref"), item.get("modified_at"))
