"""The eBusiness Web Services emulator itself: its WSDL loads in zeep over HTTPS (self-signed
certificate trusted explicitly), raw SOAP in and out, faults, control endpoints and the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import zeep
from zeep.transports import Transport

from sandbox.sage100 import SERVICE_PATH, Company, EBusinessSandboxApp, EBusinessServer, User
from sandbox.sage100.certs import make_self_signed

NS = "http://sage100.sandbox.ml-connector/eBusinessWebServices"
OPERATIONS = {"GetContractInformation", "GetDiagnosticInformation", "GetSalesOrder", "GetNextSalesOrderNo",
              "CreateSalesOrder", "GetCustomer", "GetNextCustomerNo", "CreateCustomer", "UpdateCustomer"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pair = make_self_signed(tmp_path_factory.mktemp("tls"))
    app = EBusinessSandboxApp(users={"U": User("P")}, companies={"ABC": Company("ABC")})
    server = EBusinessServer(app, cert_path=str(pair.cert_path), key_path=str(pair.key_path)).start()
    yield app, server, pair
    server.stop()


def trusted_session(pair) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the environment's CA bundle must not replace the pinned certificate
    session.verify = str(pair.cert_path)
    return session


def soap_call(operation: str, inner: str) -> bytes:
    return (f'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            f'<{operation} xmlns="{NS}"><logon><Username>U</Username><Password>P</Password></logon>{inner}'
            f'</{operation}></s:Body></s:Envelope>').encode()


def test_the_wsdl_loads_in_zeep_over_https(served):
    app, server, pair = served
    client = zeep.Client(server.service_url + "?wsdl", transport=Transport(session=trusted_session(pair)))
    [service] = client.wsdl.services.values()
    [port] = service.ports.values()
    assert port.binding_options["address"] == server.service_url  # the address it was asked on
    assert set(port.binding._operations) == OPERATIONS
    assert client.service.GetContractInformation(logon={"Username": "U", "Password": "P"}).startswith("Sage 100")
    assert client.service.GetNextSalesOrderNo(logon={"Username": "U", "Password": "P"}, companyCode="ABC") == "0000001"


def test_https_refuses_a_client_that_does_not_trust_the_certificate(served):
    _, server, _ = served
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(server.service_url + "?wsdl", timeout=5)


def test_raw_soap_fault_for_a_missing_record_and_a_malformed_call(served):
    _, server, pair = served
    http = trusted_session(pair)
    missing = http.post(server.service_url, data=soap_call("GetSalesOrder", "<companyCode>ABC</companyCode>"
                                                           "<salesOrderNo>NOPE</salesOrderNo>"),
                        headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=5)
    assert missing.status_code == 500 and b"<faultcode>s:Server</faultcode>" in missing.content
    assert b"CI_NoKey" in missing.content
    for body in (b"not xml", b"<a/>", soap_call("GetSalesOrder", "<surprise>1</surprise>"),
                 soap_call("DropDatabase", "")):
        answer = http.post(server.service_url, data=body, timeout=5)
        assert answer.status_code == 500 and b"<faultcode>s:Client</faultcode>" in answer.content, body


def test_control_endpoints_toggle_flags_and_list_what_was_created(served):
    app, server, pair = served
    http = trusted_session(pair)
    base = server.url
    assert http.post(base + "/__sandbox__/sage100/users/U", json={"web_services_enabled": False},
                     timeout=5).json()["web_services_enabled"] is False
    refused = http.post(server.service_url, data=soap_call("GetContractInformation", ""), timeout=5)
    assert b"not enabled for web services" in refused.content
    http.post(base + "/__sandbox__/sage100/users/U", json={"web_services_enabled": True}, timeout=5)
    http.post(base + "/__sandbox__/sage100/companies/ABC", json={"customers": [
        {"ARDivisionNo": "01", "CustomerNo": "WEBSALE", "CustomerName": "Web"}]}, timeout=5)
    customers = http.get(base + "/__sandbox__/sage100/companies/ABC/customers", timeout=5).json()
    assert [c["CustomerNo"] for c in customers] == ["WEBSALE"]
    assert http.get(base + "/__sandbox__/sage100/companies", timeout=5).json()[0]["customers"] == 1


def test_cli_help_and_inspect(served):
    _, server, pair = served
    helped = subprocess.run([sys.executable, "-m", "sandbox.sage100", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "serve" in helped.stdout and "inspect" in helped.stdout
    shown = subprocess.run([sys.executable, "-m", "sandbox.sage100", "inspect", "--url", server.url, "--cafile",
                            str(pair.cert_path), "companies"], capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin"})
    assert shown.returncode == 0, shown.stderr
    assert '"code": "ABC"' in shown.stdout


def test_plain_http_serves_the_wsdl_with_an_http_address():
    app = EBusinessSandboxApp()
    server = EBusinessServer(app).start()
    try:
        wsdl = requests.get(server.url + SERVICE_PATH + "?wsdl", timeout=5).text
        assert f'location="{server.url}{SERVICE_PATH}"' in wsdl
    finally:
        server.stop()
