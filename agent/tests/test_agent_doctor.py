"""``agent doctor`` against the surface-built fakes of both SDKs and against the simulator."""

from __future__ import annotations

import io
import json

from agent import doctor
from agent.backends.sage50us import Sage50UsBackend
from agent.backends.sdo import SdoBackend
from agent.backends.simulator import SimulatorBackend
from agent.cli import main
from agent.tests.conftest import AGENT_KEY
from agent.tests.fake_sage50us import FakeSdk
from agent.tests.fake_sdo import FakeSdo


def uk_codes(**changes) -> doctor.MappedCodes:
    values = {"nominal": {"4000": "sales", "4905": "carriage"}, "bank": ["1200"], "tax": ["T1", "T9"],
              "stock": ["SKU-1"], **changes}
    return doctor.MappedCodes(**values)


def us_codes(**changes) -> doctor.MappedCodes:
    values = {"nominal": {"40000": "sales"}, "bank": ["10200"], "tax": [], "stock": ["SKU-1"], **changes}
    return doctor.MappedCodes(**values)


def problems(report, check=None) -> list[str]:
    return [f.message for f in report.findings if not f.ok and (check is None or f.check == check)]


# -- Sage 50 UK (SDO) ------------------------------------------------------------------------------
def sdo_backend(fake, **options):
    return SdoBackend("C:\\Data\\ACCDATA", dispatch=fake, user="WEBSYNC", password="pw", **options)


def test_sdo_all_in_order(capsys):
    fake = FakeSdo()
    report = doctor.run(sdo_backend(fake), uk_codes(), company="Demo", os_user="anna")
    assert report.ok, report.render()
    assert {f.check for f in report.findings} >= {"user", "version", "members", "nominal", "bank", "tax", "stock"}
    assert ("Workspace.Disconnect",) in fake.log
    # read-only: nothing was posted or saved
    assert not [e for e in fake.log if e[0].endswith(".Update")]


def test_sdo_finds_a_removed_member():
    report = doctor.run(sdo_backend(FakeSdo(drop=("InvoicePost.Type",))), uk_codes(), os_user="anna")
    assert not report.ok
    [message] = problems(report, "members")
    assert "InvoicePost has no property Type" in message and "install the SDO that ships with" in message


def test_sdo_finds_a_removed_field_and_names_the_setting():
    report = doctor.run(sdo_backend(FakeSdo(drop=("InvoiceRecord.CUST_ORDER_NUMBER",))), uk_codes(), os_user="a")
    [message] = problems(report, "members")
    assert "InvoiceRecord has no field CUST_ORDER_NUMBER" in message and "`reference_field`" in message


def test_sdo_finds_a_wrong_sdk_year():
    fake = FakeSdo(data_version="32.0")
    report = doctor.run(sdo_backend(fake, sdo_version="31"), uk_codes(), os_user="anna")
    [message] = problems(report)
    assert "does not match" in message and "install the SDO that ships with the installed Sage 50" in message
    assert [f.check for f in report.findings if not f.ok] == ["version"]


def test_sdo_finds_a_missing_nominal_code_and_an_unmapped_stock_code():
    codes = uk_codes(nominal={"4000": "sales", "4906": "carriage"}, stock=["SKU-1", "SKU-404"], bank=["1210"])
    report = doctor.run(sdo_backend(FakeSdo()), codes, os_user="anna")
    assert problems(report, "nominal") == [
        "Nominal code 4906 (carriage) is not in this company's chart of accounts. Create it in Sage, or change the "
        "mapping in ml-connector (or the agent's config) to a code that exists."]
    [stock] = problems(report, "stock")
    assert stock.startswith("Stock code SKU-404 is mapped to a store product but is not in this Sage company.")
    [bank] = problems(report, "bank")
    assert "Bank account 1210" in bank


def test_sdo_refuses_the_administrator_and_a_persons_own_user():
    report = doctor.run(SdoBackend("C:\\Data\\ACCDATA", dispatch=FakeSdo()), uk_codes(), os_user="anna")
    [message] = problems(report, "user")
    assert "MANAGER, Sage's administrator" in message and "create a user just for the agent" in message
    report = doctor.run(SdoBackend("C:\\Data\\ACCDATA", dispatch=FakeSdo(), user="Anna"), uk_codes(),
                        os_user="anna")
    assert "same name as the Windows user" in problems(report, "user")[0]


def test_sdo_user_already_logged_in_is_explained():
    fake = FakeSdo()
    fake.logged_in.add("WEBSYNC")
    report = doctor.run(sdo_backend(fake), uk_codes(), os_user="anna")
    assert "logged in already" in problems(report, "user")[0]


# -- Sage 50 US (.NET SDK) -------------------------------------------------------------------------
def us_backend(sdk, **options):
    return Sage50UsBackend("Bellwether Garden Supply", api=sdk.api, **options)


def test_us_all_in_order():
    sdk = FakeSdk()
    report = doctor.run(us_backend(sdk), us_codes())
    assert report.ok, report.render()
    assert "granted this program SDK access" in report.render()
    # read-only: nothing created or saved, and the session was closed
    assert not [e for e in sdk.log if e[0].endswith((".Save", "Factory.Create"))]
    assert sdk.log[-2:] == [("Session.Close", True), ("Session.End",)]


def test_us_finds_a_removed_member():
    report = doctor.run(us_backend(FakeSdk(drop=("Receipt.ApplyToInvoiceLines",))), us_codes())
    [message] = problems(report, "members")
    assert message.startswith("Sage 50 US SDK: Receipt has no property ApplyToInvoiceLines, which the agent uses.")


def test_us_names_the_setting_of_an_unverified_member():
    report = doctor.run(us_backend(FakeSdk(drop=("InventoryItem.QuantityOnHand",))), us_codes())
    [message] = problems(report, "members")
    assert "InventoryItem has no property QuantityOnHand" in message and "`stock_quantity_property`" in message


def test_us_finds_a_wrong_type():
    sdk = FakeSdk()
    sdk.surface.objects["SalesInvoice"]["members"]["AmountDue"]["type"] = "Nullable`1"
    report = doctor.run(us_backend(sdk), us_codes())
    assert "Sage 50 US SDK: SalesInvoice.AmountDue is of type Nullable`1 here, the agent expects Decimal." \
        in problems(report)


def test_us_finds_a_wrong_sdk_year():
    report = doctor.run(us_backend(FakeSdk(year=2025, schema_version="2026.0")), us_codes())
    [message] = problems(report)
    assert "SDK on this PC is from Sage 50 2025" in message and "data is from Sage 50 2026" in message


def test_us_finds_a_missing_nominal_code_and_an_unmapped_stock_code():
    report = doctor.run(us_backend(FakeSdk()), us_codes(nominal={"40001": "sales"}, stock=["SKU-404"]))
    assert "Nominal code 40001 (sales)" in problems(report, "nominal")[0]
    assert "Stock code SKU-404" in problems(report, "stock")[0]


def test_us_access_not_yet_granted():
    report = doctor.run(us_backend(FakeSdk(auth="Pending")), us_codes())
    [message] = problems(report, "access")
    assert "allow the application" in message


# -- the simulator -------------------------------------------------------------------------------
def test_simulator_all_in_order(company_path):
    report = doctor.run(SimulatorBackend(str(company_path)), uk_codes(stock=["SKU-1", "SKU-2"]), os_user="anna")
    assert report.ok, report.render()


def test_simulator_finds_wrong_year_missing_nominal_and_unmapped_stock(company_path, company):
    report = doctor.run(SimulatorBackend(str(company_path), sdo_version="31"), uk_codes(), os_user="anna")
    assert "different version" in problems(report, "version")[0]
    company.remove_nominal("4905")
    report = doctor.run(SimulatorBackend(str(company_path)), uk_codes(stock=["SKU-404"]), os_user="anna")
    assert "Nominal code 4905 (carriage)" in problems(report, "nominal")[0]
    assert "Stock code SKU-404" in problems(report, "stock")[0]


def test_simulator_bank_must_be_a_bank_account(company_path):
    report = doctor.run(SimulatorBackend(str(company_path)), uk_codes(bank=["4000"]), os_user="anna")
    assert "Bank account 4000 is not a bank account" in problems(report, "bank")[0]


# -- the command, the saved report and the heartbeat ------------------------------------------------
def write_config(tmp_path, company_path, **extra) -> str:
    lines = ['backend = "simulator"', f'company = "{company_path}"', f'journal = "{tmp_path / "journal.sqlite3"}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_command_prints_a_plain_report_and_exits_non_zero_on_a_problem(tmp_path, company_path, capsys):
    config = write_config(tmp_path, company_path)
    assert main(["doctor", "--config", config, "--offline", "--stock-code", "SKU-1"]) == 0
    assert "Everything checked is in order" in capsys.readouterr().out
    assert main(["doctor", "--config", config, "--offline", "--stock-code", "SKU-404"]) == 1
    out = capsys.readouterr().out
    assert "[PROBLEM] Stock code SKU-404" in out and "1 problem(s) found" in out
    saved = json.loads((tmp_path / f"doctor-{company_path.name.replace('.', '_')}.json").read_text())
    assert saved["summary"]["ok"] is False and "SKU-404" in saved["summary"]["problems"][0]


def test_command_reads_the_servers_mapped_codes_and_reports_the_result(tmp_path, company_path, fake_api, capsys):
    fake_api.config["mapped_codes"] = {"nominal": {"4001": "sales for channel Web"}, "bank": ["1200"],
                                       "tax": ["T1"], "stock": ["SKU-2", "SKU-9"]}
    config = write_config(tmp_path, company_path, server=fake_api.url, key=AGENT_KEY)
    assert main(["doctor", "--config", config]) == 1
    out = capsys.readouterr().out
    assert "Nominal code 4001 (sales for channel Web)" in out and "Stock code SKU-9" in out
    sent = fake_api.heartbeats[-1]["doctor"]
    assert sent["ok"] is False and len(sent["problems"]) == 2


def test_runner_heartbeat_carries_the_last_result(tmp_path, company_path, fake_api):
    from agent.tests.test_agent_runner import close, make_runner

    report_path = tmp_path / "doctor.json"
    runner = make_runner(fake_api, company_path, tmp_path, doctor_report=str(report_path))
    try:
        runner.heartbeat()
        assert "doctor" not in fake_api.heartbeats[-1]
        report = doctor.DoctorReport(backend="simulator", company="x", checked_at="2026-12-05T21:00:00+00:00")
        report.add("stock", False, "Stock code SKU-9 is missing")
        report.save(report_path)
        runner.heartbeat()
        assert fake_api.heartbeats[-1]["doctor"] == {"ok": False, "checked_at": "2026-12-05T21:00:00+00:00",
                                                     "checks": 1, "problems": ["Stock code SKU-9 is missing"]}
    finally:
        close(runner)


def test_render_is_plain_words():
    report = doctor.DoctorReport(backend="sdo", company="C:\\Data", checked_at="now")
    report.add("nominal", True, "Nominal codes found: 4000.")
    text = report.render()
    assert "[OK] Nominal codes found: 4000." in text and "{" not in text
    assert io.StringIO(text).readline().startswith("Sage self-check for C:\\Data")


def test_simulator_command_removes_a_nominal_and_the_doctor_finds_it(tmp_path, company_path, capsys):
    config = write_config(tmp_path, company_path)
    assert main(["simulator", "nominal", "remove", "--company", str(company_path), "4000"]) == 0
    assert main(["doctor", "--config", config, "--offline"]) == 1
    assert "Nominal code 4000 (sales) is not in this company's chart of accounts" in capsys.readouterr().out


def test_sdo_finds_a_missing_currency_code_field_and_names_its_setting():
    # CurrencyData.CODE has only a low-trust public source: a setting the doctor checks on the live SDO.
    report = doctor.run(sdo_backend(FakeSdo(drop=("CurrencyData.CODE",))), uk_codes(), os_user="a")
    [message] = problems(report, "members")
    assert "CurrencyData has no field CODE" in message and "`currency_code_field`" in message
