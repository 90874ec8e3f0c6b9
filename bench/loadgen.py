"""Load generators for the webhook ingest benchmark: ``wrk`` when it can be found or installed,
else a small asyncio client. Both replay *precomputed* requests (bodies and signatures are made
before the clock starts), so the client spends its CPU on sockets, not on HMACs: on a 2-core
machine a client that signs or parses in Python takes the cores the server is being measured on.

Both take a list of ``(headers, body)`` deliveries, send them in order (cycling when the run
outlasts the list), keep ``connections`` keep-alive connections busy for ``duration`` seconds and
return a :class:`LoadResult`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    tool: str
    requests: int  # answered requests
    elapsed_s: float
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    socket_errors: int = 0
    answered_per_worker: list[int] = field(default_factory=list)  # how far each partition got
    skipped: int = 0  # requests each partition generated before the first one it sent

    @property
    def per_second(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0


def find_wrk(install: bool = True) -> str | None:
    """Path to wrk; on a Debian machine where we are root, install it once (apt) when missing."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, **quiet)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, **quiet)
    return shutil.which("wrk")


# One wrk thread owns the partition requests[id], requests[id + threads], …; it counts answers
# so the caller knows exactly which deliveries were answered (and so which must be stored).
_WRK_SCRIPT = r"""
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  reqs, answered, statuses = {}, 0, {}
  local n = 0
  local f = assert(io.open(path, "rb"))
  while true do
    local len = f:read("*l")
    if not len then break end
    local raw = f:read(tonumber(len))
    if n % nthreads == id then table.insert(reqs, raw) end
    n = n + 1
  end
  f:close()
  nxt = 0
end

function request()
  local r = reqs[(nxt % #reqs) + 1]
  nxt = nxt + 1
  return r
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local parts, per = {}, {}
  local merged = {}
  for _, t in ipairs(threads) do
    table.insert(per, tostring(t:get("answered")))
    for k, v in pairs(t:get("statuses")) do merged[k] = (merged[k] or 0) + v end
  end
  for k, v in pairs(merged) do table.insert(parts, string.format('"%d": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "statuses": {%s}, "answered": [%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, table.concat(parts, ", "),
    table.concat(per, ", ")))
end
"""


def raw_request(url: str, headers: dict[str, str], body: bytes) -> bytes:
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def run_wrk(wrk: str, url: str, deliveries: list[tuple[dict, bytes]], *, duration: float, connections: int,
            threads: int = 1, timeout_s: int = 10) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "replay.lua"
        script.write_text(_WRK_SCRIPT)
        data = Path(tmp) / "requests.bin"
        with data.open("wb") as out:
            for headers, body in deliveries:
                raw = raw_request(url, headers, body)
                out.write(f"{len(raw)}\n".encode() + raw)
        argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
                "--timeout", f"{timeout_s}s", "-s", str(script), url, "--", str(data), str(threads)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    got = json.loads(line[len("WRKJSON "):])
    return LoadResult("wrk", got["requests"], got["duration_us"] / 1e6, got["statuses"], got["p50_us"] / 1000,
                      got["p95_us"] / 1000, got["p99_us"] / 1000, got["socket_errors"], got["answered"],
                      # wrk asks each thread's request() once before connecting and never sends that one
                      skipped=1)


async def _replay(host: str, port: int, raws: list[bytes], connections: int, duration: float):
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    answered = [0] * connections
    errors = 0
    deadline = time.perf_counter() + duration

    async def one_connection(index: int):
        nonlocal errors
        mine = raws[index::connections] or raws
        reader, writer = await asyncio.open_connection(host, port)
        sent = 0
        try:
            while time.perf_counter() < deadline:
                begun = time.perf_counter()
                writer.write(mine[sent % len(mine)])
                sent += 1
                status_line = await reader.readline()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if not status_line:
                    errors += 1
                    return
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - begun)
                code = status_line.split(b" ", 2)[1].decode()
                statuses[code] = statuses.get(code, 0) + 1
                answered[index] += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection(i) for i in range(connections)))
    return latencies, statuses, answered, errors, time.perf_counter() - started


def run_python(url: str, deliveries: list[tuple[dict, bytes]], *, duration: float, connections: int) -> LoadResult:
    """The fallback: one asyncio thread, raw HTTP/1.1 keep-alive. Each connection owns the
    partition deliveries[i::connections] (the same bookkeeping as the wrk script)."""
    parts = urlsplit(url)
    raws = [raw_request(url, headers, body) for headers, body in deliveries]
    latencies, statuses, answered, errors, elapsed = asyncio.run(
        _replay(parts.hostname, parts.port, raws, connections, duration))
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[max(0, int(len(latencies) * p) - 1)] * 1000, 2) if latencies else 0.0

    return LoadResult("python-asyncio", len(latencies), elapsed, statuses, pct(0.5), pct(0.95), pct(0.99), errors,
                      answered)


def answered_deliveries(count: int, answered: list[int], workers: int, skipped: int = 0) -> list[int]:
    """Indexes into the delivery list that got an answer, given each partition's answer count
    (partition w holds indexes w, w + workers, …, cycling). With several connections per
    partition the last few may be off by those still in flight when the client stopped."""
    indexes = []
    for worker, got in enumerate(answered):
        mine = list(range(worker, count, workers)) or list(range(count))
        indexes += [mine[k % len(mine)] for k in range(skipped, skipped + got)]
    return indexes


async def _send_all(host: str, port: int, raws: list[bytes], connections: int) -> list[int]:
    statuses = [0] * len(raws)
    indexes = iter(range(len(raws)))

    async def one_connection():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in indexes:  # shared iterator: each delivery is sent once, by whichever is free
                writer.write(raws[index])
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                statuses[index] = int(status_line.split(b" ", 2)[1]) if status_line else 0
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return statuses


def send_all(url: str, deliveries: list[tuple[dict, bytes]], *, connections: int = 32) -> list[int]:
    """Send every delivery once over ``connections`` concurrent keep-alive connections; the
    status of each (0 when the connection broke before its answer)."""
    parts = urlsplit(url)
    raws = [raw_request(url, headers, body) for headers, body in deliveries]
    return asyncio.run(_send_all(parts.hostname, parts.port, raws, connections))
