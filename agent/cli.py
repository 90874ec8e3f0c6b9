"""Command line: ``python -m agent run ...`` and ``python -m agent simulator ...``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from decimal import Decimal

from agent import __version__
from agent.backends import BACKENDS

logger = logging.getLogger("agent")


def program_name() -> str:
    """``ml-agent`` when started by the installed console script, ``python -m agent`` otherwise."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "ml-agent" if name.removesuffix(".exe").removesuffix("-script.py") == "ml-agent" else "python -m agent"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=program_name(), description="ml-connector agent for desktop Sage")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="connect to the server and execute Sage jobs")
    run.add_argument("--config", help="TOML file with the same keys as these options")
    run.add_argument("--server", help="server base URL, e.g. https://connector.example.com")
    run.add_argument("--key", help="agent key (or set ML_AGENT_KEY; a key on the command line is visible "
                                   "to other users of the machine)")
    run.add_argument("--backend", choices=BACKENDS)
    run.add_argument("--company", help="simulator: company file; sdo: company data folder; sage50us: company name")
    run.add_argument("--journal", help="local journal file (default: per-user data folder)")
    run.add_argument("--log-file", dest="log_file")
    run.add_argument("--log-level", dest="log_level")
    run.add_argument("--once", action="store_true", default=None, help="one cycle (heartbeat, changes, one lease)")
    run.add_argument("--lease-wait", dest="lease_wait_seconds", type=int, help="override the server's long poll")
    run.add_argument("--heartbeat-seconds", dest="heartbeat_seconds", type=float)
    run.add_argument("--poll-changes-seconds", dest="poll_changes_seconds", type=float)
    run.add_argument("--user", help="Sage user name the backend logs in with")
    run.add_argument("--password", help="Sage password (prefer the config file)")

    doctor = sub.add_parser("doctor", help="check this PC and the Sage company before the agent posts anything",
                            description="Logs in to Sage with the agent's settings, reads (never writes), and "
                                        "checks the Sage user, the SDK version, SDK access, every SDK member the "
                                        "agent uses and the mapped codes. Exit code 0 = all in order, 1 = problems.")
    doctor.add_argument("--config", help="the agent's TOML config file")
    doctor.add_argument("--server", help="server base URL (to read the mappings and report the result)")
    doctor.add_argument("--key", help="agent key (or ML_AGENT_KEY)")
    doctor.add_argument("--backend", choices=BACKENDS)
    doctor.add_argument("--company", help="as for `run`")
    doctor.add_argument("--user", help="Sage user name the backend logs in with")
    doctor.add_argument("--password", help="Sage password (prefer the config file)")
    doctor.add_argument("--stock-code", dest="stock_codes", action="append", default=[],
                        help="a stock code to check (repeatable; the server's mapped codes are added)")
    doctor.add_argument("--nominal-code", dest="nominal_codes", action="append", default=[])
    doctor.add_argument("--tax-code", dest="tax_codes", action="append", default=[], help="e.g. T1 (repeatable)")
    doctor.add_argument("--offline", action="store_true", help="do not contact the server")

    sim = sub.add_parser("simulator", help="manage a simulated Sage 50 company file")
    simsub = sim.add_subparsers(dest="sim_command", required=True)

    def company_arg(p):
        p.add_argument("--company", required=True, help="path of the simulated company file")
        return p

    init = company_arg(simsub.add_parser("init", help="create a company file"))
    init.add_argument("--name", default="DEMO")
    init.add_argument("--data-version", default="32.0")
    init.add_argument("--sku", action="append", default=[], help="stock code to create (repeatable)")

    inspect = company_arg(simsub.add_parser("inspect", help="print what was posted"))
    inspect.add_argument("what", choices=["invoices", "credit-notes", "customers", "stock", "receipts", "refunds",
                                          "sales-orders", "logins"])
    inspect.add_argument("--json", action="store_true")

    seed = company_arg(simsub.add_parser("seed", help="create stock items for SKUs"))
    seed.add_argument("skus", nargs="*")
    seed.add_argument("--sku", action="append", default=[])
    seed.add_argument("--qty", default="10")
    seed.add_argument("--price", default="10.00")

    setstock = company_arg(simsub.add_parser("set-stock", help="change quantity / price of a stock item"))
    setstock.add_argument("stock_code")
    setstock.add_argument("--qty")
    setstock.add_argument("--price")
    setstock.add_argument("--allocated")

    lock = company_arg(simsub.add_parser("lock", help="a person opens a record for editing"))
    lock.add_argument("kind", choices=["customer", "stock"])
    lock.add_argument("key")
    lock.add_argument("--holder", default="bookkeeper")
    unlock = company_arg(simsub.add_parser("unlock", help="the person closes the record"))
    unlock.add_argument("kind", choices=["customer", "stock"])
    unlock.add_argument("key")

    exclusive = company_arg(simsub.add_parser("exclusive", help="start/stop an exclusive task (backup, year end)"))
    exclusive.add_argument("state", choices=["on", "off"])
    exclusive.add_argument("--task", default="backup")

    busy = company_arg(simsub.add_parser("busy", help="make the next N writes answer busy"))
    busy.add_argument("count", type=int)

    nominal = company_arg(simsub.add_parser("nominal", help="add or remove a nominal code of the chart"))
    nominal.add_argument("action", choices=["add", "remove"])
    nominal.add_argument("code")
    nominal.add_argument("--name", default="")
    nominal.add_argument("--bank", action="store_true", help="a bank account")

    company_arg(simsub.add_parser("clear-logins", help="remove every login (like deleting QUEUE.DTA)"))

    s100 = simsub.add_parser("sage100", help="manage a simulated Sage 100 company file")
    s100sub = s100.add_subparsers(dest="sage100_command", required=True)
    init100 = company_arg(s100sub.add_parser("init", help="create a Sage 100 company file"))
    init100.add_argument("--code", default="ABC", help="3-character company code")
    init100.add_argument("--seats", type=int, default=5, help="concurrent licence seats")
    init100.add_argument("--sku", action="append", default=[], help="item code to create (repeatable)")
    init100.add_argument("--qty", default="50", help="on hand in warehouse 000 for each --sku")
    init100.add_argument("--price", default="10.00")
    inspect100 = company_arg(s100sub.add_parser("inspect", help="print sales orders, customers, items or seats"))
    inspect100.add_argument("what", choices=["sales-orders", "customers", "items", "seats"])
    inspect100.add_argument("--json", action="store_true")
    item100 = company_arg(s100sub.add_parser("set-item", help="change an item's price, price levels or quantities"))
    item100.add_argument("item_code")
    item100.add_argument("--price")
    item100.add_argument("--level", action="append", default=[], help="LEVEL=PRICE (repeatable)")
    item100.add_argument("--qty", action="append", default=[], help="WAREHOUSE=QUANTITY on hand (repeatable)")
    lock100 = company_arg(s100sub.add_parser("lock", help="a person opens a sales order or customer"))
    lock100.add_argument("kind", choices=["sales_order", "customer"])
    lock100.add_argument("key", help="SalesOrderNo, or division-customer (01-ABF)")
    lock100.add_argument("--holder", default="bookkeeper")
    unlock100 = company_arg(s100sub.add_parser("unlock", help="the person closes it"))
    unlock100.add_argument("kind", choices=["sales_order", "customer"])
    unlock100.add_argument("key")
    seats100 = company_arg(s100sub.add_parser("seats", help="set the number of licence seats"))
    seats100.add_argument("count", type=int)
    company_arg(s100sub.add_parser("clear-seats", help="free every licence seat (sessions that were never cleaned up)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "doctor":
        return doctor_command(args)
    return simulator_command(args)


# -- run -----------------------------------------------------------------------------------------
def run_command(args) -> int:
    from agent.backends import create_backend
    from agent.client import AgentClient
    from agent.config import load_config
    from agent.errors import SageError
    from agent.journal import Journal
    from agent.logging_setup import setup_logging
    from agent.runner import Runner

    overrides = {name: getattr(args, name) for name in (
        "server", "key", "backend", "company", "journal", "log_file", "log_level", "once", "lease_wait_seconds",
        "heartbeat_seconds", "poll_changes_seconds")}
    try:
        config = load_config(args.config, overrides)
        if args.user:
            config.backend_options["user"] = args.user
        if args.password:
            config.backend_options["password"] = args.password
        config.validate()
    except (OSError, ValueError) as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 64
    setup_logging(config.log_file, config.log_level,
                  secrets=[config.key, str(config.backend_options.get("password", ""))])
    try:
        backend = create_backend(config.backend, config.company, config.backend_options)
    except SageError as exc:
        logger.error("%s", exc)
        return 69
    client = AgentClient(config.server, config.key, verify=config.verify_tls,
                         user_agent=f"ml-connector-agent/{__version__}", allow_plain_http=config.allow_plain_http)
    journal = Journal(config.journal)
    runner = Runner(config, backend, client, journal)
    signal.signal(signal.SIGINT, runner.on_signal)
    signal.signal(signal.SIGTERM, runner.on_signal)
    try:
        return runner.run()
    finally:
        journal.close()
        close = getattr(backend, "close", None)
        if close:
            close()


# -- doctor --------------------------------------------------------------------------------------
def doctor_command(args, *, out=None) -> int:
    from agent import doctor
    from agent.backends import create_backend
    from agent.config import load_config
    from agent.errors import SageError

    out = out if out is not None else sys.stdout
    overrides = {"server": args.server, "key": args.key, "backend": args.backend, "company": args.company}
    try:
        config = load_config(args.config, overrides)
        if args.user:
            config.backend_options["user"] = args.user
        if args.password:
            config.backend_options["password"] = args.password
        if not (config.backend and config.company):
            raise ValueError("missing settings: backend and company (command line or config file)")
        config.resolve_paths()
    except (OSError, ValueError) as exc:
        print(f"agent doctor: {exc}", file=sys.stderr)
        return 64
    codes = doctor.MappedCodes(
        nominal={config.sales_nominal: "sales", config.carriage_nominal: "carriage",
                 **{code: "named on the command line or in doctor_nominal_codes"
                    for code in [*config.doctor_nominal_codes, *args.nominal_codes]}},
        bank=[config.bank_nominal], tax=[*config.doctor_tax_codes, *args.tax_codes],
        stock=[*config.doctor_stock_codes, *args.stock_codes])
    client = None
    if config.server and config.key and not args.offline:
        client = _doctor_client(config)
        _add_server_codes(client, config, codes, out)
    try:
        backend = create_backend(config.backend, config.company, config.backend_options)
    except SageError as exc:
        print(f"The agent cannot use Sage on this PC: {exc}", file=out)
        return 1
    try:
        report = doctor.run(backend, codes, company=config.company)
    finally:
        close = getattr(backend, "close", None)
        if close:
            close()
    report.save(config.doctor_report)
    print(report.render(), file=out)
    if client is not None:
        _report_to_server(client, backend, config, report, out)
    return 0 if report.ok else 1


def _doctor_client(config):
    from agent.client import AgentClient

    return AgentClient(config.server, config.key, verify=config.verify_tls,
                       user_agent=f"ml-connector-agent/{__version__}")


def _add_server_codes(client, config, codes, out) -> None:
    """The integration's mappings, as the server sends them with the heartbeat's config."""
    from mlcommon.http import ApiError

    try:
        answer = client.heartbeat({"agent_version": __version__, "backend": config.backend,
                                   "company": config.company, "include_mapped_codes": True})
    except (ApiError, OSError) as exc:
        print(f"(could not read the mappings from {config.server}: {exc}; checking the local settings only)",
              file=out)
        return
    mapped = (answer.get("config") or {}).get("mapped_codes") or {}
    for code, purpose in (mapped.get("nominal") or {}).items():
        codes.nominal.setdefault(code, purpose)
    codes.bank.extend(c for c in mapped.get("bank") or [] if c not in codes.bank)
    codes.tax.extend(c for c in mapped.get("tax") or [] if c not in codes.tax)
    codes.stock.extend(c for c in mapped.get("stock") or [] if c not in codes.stock)


def _report_to_server(client, backend, config, report, out) -> None:
    from mlcommon.http import ApiError

    info = {"agent_version": __version__, "backend": backend.name, "company": config.company,
            "sage_edition": backend.edition, "doctor": report.summary()}
    try:
        info.update(backend.describe())
    except Exception:  # noqa: BLE001 - the report matters more than the version details
        logger.debug("describe failed after the doctor run", exc_info=True)
    info["company"] = info.get("company") or config.company
    try:
        client.heartbeat(info)
    except (ApiError, OSError) as exc:
        print(f"(the result could not be sent to {config.server}: {exc}; the agent sends it with its next "
              "heartbeat)", file=out)


# -- simulator -----------------------------------------------------------------------------------
def simulator_command(args) -> int:
    from agent.errors import SageError
    from agent.simulator.company import SimCompany
    from agent.simulator.inspect import render

    if args.sim_command == "sage100":
        return sage100_simulator_command(args)
    try:
        if args.sim_command == "init":
            company = SimCompany.create(args.company, name=args.name, data_version=args.data_version)
            if args.sku:
                company.seed_stock(args.sku)
            print(f"simulated Sage 50 company {args.name} at {args.company}")
            return 0
        company = SimCompany(args.company)
        cmd = args.sim_command
        if cmd == "inspect":
            print(render(company, args.what, as_json=args.json))
        elif cmd == "seed":
            skus = [*args.skus, *args.sku]
            created = company.seed_stock(skus, qty=Decimal(args.qty), price=Decimal(args.price))
            print(f"created {created} stock item(s), {len(skus) - created} already existed")
        elif cmd == "set-stock":
            company.set_stock(args.stock_code, qty=_dec(args.qty), price=_dec(args.price),
                              allocated=_dec(args.allocated))
            print(f"{args.stock_code} updated")
        elif cmd == "lock":
            company.lock_record(args.kind, args.key, args.holder)
        elif cmd == "unlock":
            company.unlock_record(args.kind, args.key)
        elif cmd == "exclusive":
            company.set_exclusive(args.task if args.state == "on" else None)
        elif cmd == "busy":
            company.set_busy(args.count)
        elif cmd == "nominal":
            if args.action == "add":
                company.add_nominal(args.code, args.name or f"Nominal {args.code}", bank=args.bank)
            else:
                company.remove_nominal(args.code)
            print(f"nominal {args.code} {'added' if args.action == 'add' else 'removed'}")
        elif cmd == "clear-logins":
            print(f"cleared {company.clear_logins()} login(s)")
        return 0
    except (SageError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1


def sage100_simulator_command(args) -> int:
    from agent.errors import SageError
    from agent.simulator.inspect import render_sage100
    from agent.simulator.sage100 import Sage100Company

    def pairs(values: list[str]) -> dict[str, str]:
        out = {}
        for value in values:
            key, sep, amount = value.partition("=")
            if not sep or not key:
                raise ValueError(f"{value!r} is not KEY=VALUE")
            out[key] = str(Decimal(amount))
        return out

    try:
        cmd = args.sage100_command
        if cmd == "init":
            company = Sage100Company.create(args.company, company_code=args.code, seats=args.seats)
            for sku in args.sku:
                company.set_item(sku, price=args.price, warehouses={"000": args.qty})
            print(f"simulated Sage 100 company {args.code} at {args.company} ({args.seats} licence seats)")
            return 0
        company = Sage100Company(args.company)
        if cmd == "inspect":
            print(render_sage100(company, args.what, as_json=args.json))
        elif cmd == "set-item":
            company.set_item(args.item_code, price=args.price, levels=pairs(args.level), warehouses=pairs(args.qty))
            print(f"{args.item_code} updated")
        elif cmd == "lock":
            company.lock_record(args.kind, args.key, args.holder)
        elif cmd == "unlock":
            company.unlock_record(args.kind, args.key)
        elif cmd == "seats":
            company.set_seats(args.count)
        elif cmd == "clear-seats":
            print(f"freed {company.clear_seats()} seat(s)")
        return 0
    except (SageError, OSError, ValueError, ArithmeticError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1


def _dec(value):
    return Decimal(value) if value is not None else None


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def dumps(value) -> str:
    return json.dumps(value, indent=2, default=_json_default)
