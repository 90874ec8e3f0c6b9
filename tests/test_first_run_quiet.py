"""`make run`'s first screen without noise: a worker stopped the way Ctrl-C stops the stack
logs no pool "errors" (its children are not sent SIGTERM behind its back), and nothing says
"No hostname was supplied" about the embedded broker."""

import pytest

from connector.devstack import Stack, wait_for

pytestmark = pytest.mark.e2e


def test_a_stopped_worker_says_nothing_alarming(process_env, tmp_path):
    stack = Stack(env=process_env, log_dir=tmp_path)
    try:
        stack.worker(concurrency=2)
        wait_for(lambda: "ready." in stack.log("worker"), timeout=90, what="the worker to be ready")
    finally:
        stack.stop()
    log = stack.log("worker")
    assert "ready." in log
    for noise in ("signal 15", "SIGTERM", "WorkerLostError", "No hostname was supplied", "ERROR"):
        assert noise not in log, log[-3000:]
    assert stack.processes["worker"].popen.returncode == 0
