"""`QUICK=1 make bench` stays about a minute: the rows whose time is set by the clock (many
merchants, a realistic Sage, the Black Friday hour) show their newest full result, dated, instead
of running again (bench/__main__.py); naming one in --only runs it at its quick size."""

from __future__ import annotations

import json

import pytest

import bench.__main__ as bench_main


def tenants_result(late: int) -> dict:
    return {"integrations": 2000, "interval_s": 60, "window_s": 180.0, "polls": 6001, "polls_expected": 6000,
            "late_polls": late, "gaps_over_10s": 0, "api_calls_per_idle_poll": 1.0, "worker_cpu_ms_per_poll": 9.1,
            "beat_cpu_pct": 0.4, "worker_cpu_pct": 30.0, "rows_per_day": {"syncrun_rows": 2100, "rollup_rows": 2000,
                                                                          "rollup_rows_steady": 2000, "audit_rows": 300},
            "syncrun_rows_per_day_idle_before": 2880000, "peak_rss_mb": {"beat": 120, "worker": 150}, "ok": late == 0}


def write(folder, stem: str, data: dict) -> None:
    (folder / f"{stem}.json").write_text(json.dumps(data))


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_main, "RESULTS_DIR", tmp_path)
    return tmp_path


def test_the_newest_full_run_that_measured_the_row_is_shown(results_dir):
    write(results_dir, "20261201-090000", {"quick": False, "tenants": tenants_result(late=3)})
    write(results_dir, "20261203-090000", {"quick": False, "tenants": tenants_result(late=0)})
    write(results_dir, "20261204-090000", {"quick": True, "tenants": tenants_result(late=9)})  # quick: not it
    write(results_dir, "20261205-090000", {"quick": False, "pipeline": {"orders_per_s": 250}})  # --only pipeline
    write(results_dir, "20261205-100000", {"quick": False, "tenants": {"error": "TimeoutError: …"}})  # broke
    (results_dir / "20261206-080000.json").write_text("{ half written")
    write(results_dir, "chaos-20261206-090000", {"quick": False, "tenants": tenants_result(late=7)})  # not a bench run

    result = bench_main.last_full_result("tenants", results_dir)

    assert result["late_polls"] == 0
    assert result["source"] == "the last full run, 03 Dec 2026 09:00 (20261203-090000.json)"


@pytest.mark.parametrize("name", bench_main.LONG_ROWS)
def test_without_a_full_run_the_row_says_what_to_run(results_dir, name):
    write(results_dir, "20261204-090000", {"quick": True, name: {bench_main.SLOWNESS[name][0]: {}}})
    result = bench_main.last_full_result(name, results_dir)
    assert result == {"missing": f"no full run yet: make bench BENCH_ARGS=--only={name}"}
    [row] = bench_main._rows({name: result})
    assert row[2] == result["missing"] and row[-1] == ""  # no figure, so neither ok nor MISSED


def run_main(monkeypatch, argv: list[str]) -> list[str]:
    """bench's main with every row's run recorded instead of run, and no database of its own."""
    ran = []

    def run_one(name, size, env, **kwargs):
        ran.append(name)
        return tenants_result(late=5) if name == "tenants" else {"error": "not run in this test"}

    monkeypatch.setattr(bench_main, "_run_one", run_one)
    monkeypatch.setattr(bench_main, "prepare_database", lambda: "sqlite:///unused")
    monkeypatch.setattr(bench_main, "_setup_django", lambda: None)
    monkeypatch.setattr(bench_main, "machine", lambda: {"cores": 2, "memory": "", "cpu": "", "python": "3.11",
                                                       "platform": "test"})
    assert bench_main.main(argv) == 0
    return ran


def test_a_quick_run_shows_the_long_rows_instead_of_running_them(results_dir, monkeypatch, capsys):
    write(results_dir, "20261203-090000", {"quick": False, "tenants": tenants_result(late=0)})

    ran = run_main(monkeypatch, ["--quick"])

    assert not {"tenants", "sage_cost", "black_friday"} & set(ran)
    assert {"pipeline", "latency", "sage100", "webhook_ingest", "adobe_latency"} <= set(ran)  # the rest still run
    table = capsys.readouterr().out.split("benchmark ")[-1]
    assert "6001/6000 polls in 180 s, 0 > 10 s late" in table
    assert "(tenants: from the last full run, 03 Dec 2026 09:00 (20261203-090000.json))" in table
    assert "no full run yet: make bench BENCH_ARGS=--only=black_friday" in table
    written = json.loads(sorted(results_dir.glob("2*.json"))[-1].read_text())
    assert written["quick"] and written["tenants"]["source"].startswith("the last full run")


def test_naming_a_long_row_runs_it_even_when_quick(results_dir, monkeypatch, capsys):
    write(results_dir, "20261203-090000", {"quick": False, "tenants": tenants_result(late=0)})

    ran = run_main(monkeypatch, ["--quick", "--only", "tenants"])

    assert ran == ["tenants"]
    table = capsys.readouterr().out.split("benchmark ")[-1]
    assert "5 > 10 s late" in table and "from the last full run" not in table

