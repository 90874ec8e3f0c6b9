"""Contract: the eBusiness Web Services client against the emulator over real HTTPS, the emulator's
self-signed certificate uploaded on the connection (and refused without it)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal as D

import pytest

from accounts.models import SageConnection
from connector.sage100 import ebusiness
from connector.sage100.ebusiness_faults import (
    SageLogonFailed,
    SageNoAccess,
    SageUnknownReference,
    WebServicesNotEnabled,
)
from mlcommon.http import AuthError, PermanentError, RetryableError
from mlcommon.ledger import Customer, DocumentLine, LineKind, SalesOrder, ShipTo, TaxMode
from sandbox.sage100 import Company, EBusinessFaults, EBusinessSandboxApp, EBusinessServer, User
from sandbox.sage100.certs import make_self_signed

USER, PASSWORD = "WEBUSER", "s3cret-pw"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def sage(certificate):
    app = EBusinessSandboxApp(
        users={USER: User(PASSWORD), "OFFLINE": User("pw", web_services_enabled=False),
               "OTHERCO": User("pw", companies={"XYZ"})},
        companies={"ABC": Company("ABC", items={"SKU-1", "SKU-2"}), "XYZ": Company("XYZ"),
                   "OFF": Company("OFF", web_services_enabled=False)},
        faults=EBusinessFaults())
    server = EBusinessServer(app, cert_path=str(certificate.cert_path), key_path=str(certificate.key_path)).start()
    yield app, server
    server.stop()


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_DATA_DIR", str(tmp_path))


def connection(server, certificate, **fields) -> SageConnection:
    values = dict(name="Sage 100 SOAP", edition=SageConnection.Edition.SAGE100,
                  transport=SageConnection.Transport.EBUSINESS_SOAP, server_url=server.service_url, company_code="ABC",
                  username=USER, password=PASSWORD, verify_tls=True, tls_ca_pem=certificate.cert_pem)
    values.update(fields)
    return SageConnection(**values)


def order(number: str = "W001001", *, po: str = "1001", email: str = "ann@example.com", customer_no: str = "",
          address: str = "1 Main St", item: str = "SKU-1") -> SalesOrder:
    lines = [
        DocumentLine(kind=LineKind.ITEM, description="Blue, size M", quantity=D("3"), unit_net=D("3.3333"),
                     net=D("10.00"), tax=D("0.80"), tax_code="NT", stock_code=item),
        DocumentLine(kind=LineKind.ITEM, description="", quantity=D("2"), unit_net=D("9.99"), net=D("19.98"),
                     tax=D("1.60"), tax_code="NT", stock_code="SKU-2"),
        DocumentLine(kind=LineKind.SERVICE, description="Sales tax (as the store charged it)", quantity=D("1"),
                     unit_net=D("2.40"), net=D("2.40"), tax=D("0"), tax_code="NT", stock_code="/TAX"),
    ]
    buyer = Customer(email=email, name="Ann Smith", address_lines=[address], city="Austin", region="TX",
                     postcode="78701", country="US", phone="555-0100")
    return SalesOrder(
        reference=f"BC-{po}", date=dt.date(2026, 12, 1), currency="USD", lines=lines, customer=buyer, order_id=po,
        store_total=D("37.38"), notes=f"Order #{po}", sales_order_no=number, ar_division_no="01",
        customer_no=customer_no, customer_po_no=po,
        ship_to=ShipTo(name="Ann Smith", address_lines=[address, "Suite 4"], city="Austin", region="TX",
                       postcode="78701", country="US"),
        ship_via="UPS GROUND", warehouse_code="000", freight=D("5.00"), discount=D("0.00"),
        tax_mode=TaxMode.STORE_TAX_LINE, tax_schedule="NONTAX", store_tax=D("2.40"),
        comments=[f"Order #{po}", "Paid by Credit Card"], customer_numbering="W")


def test_post_creates_the_order_and_its_customer_then_finds_them(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    document = order()
    first = ebusiness.post_sales_order(conn, document)
    assert (first.sales_order_no, first.existed, first.customer_created) == ("W001001", False, True)
    assert first.order_total == document.order_total == D("37.38")
    assert first.sales_tax == D("0.00")
    again = ebusiness.post_sales_order(conn, document)
    assert again.existed and not again.customer_created and again.customer_ref == first.customer_ref
    company = app.companies["ABC"]
    assert company.created_sales_orders == 1 and company.created_customers == 1
    held = company.sales_orders["W001001"]
    assert held["CustomerPONo"] == "1001" and held["ShipVia"] == "UPS GROUND" and held["ShipToAddress2"] == "Suite 4"
    assert held["ARDivisionNo"] == "01" and held["CustomerNo"] == first.customer_no
    lines = held["Lines"]["SalesOrderLine"]
    assert [line["ItemCode"] for line in lines] == ["SKU-1", "SKU-2", "/TAX", "/C", "/C"]
    assert lines[0]["ExtensionAmt"] == D("10.00")  # 3 × unit price, to the cent
    assert lines[0]["CommentText"] == "Blue, size M" and lines[3]["CommentText"] == "Order #1001"
    customer = company.customers[("01", first.customer_no)]
    assert customer["EmailAddress"] == "ann@example.com" and customer["City"] == "Austin"


def test_a_create_whose_reply_was_lost_is_found_by_the_next_try(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    ebusiness.ensure_customer(conn, order().customer, division="01", numbering="W")
    app.faults.lost_reply_rate = 1.0  # Sage applies the create; the client sees a 502
    with pytest.raises(RetryableError, match="502"):
        ebusiness.post_sales_order(conn, order())
    app.faults.lost_reply_rate = 0.0
    result = ebusiness.post_sales_order(conn, order())
    assert result.existed
    assert app.companies["ABC"].created_sales_orders == 1


def test_a_create_whose_connection_dropped_is_found_by_the_next_try(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    ebusiness.ensure_customer(conn, order().customer, division="01", numbering="W")
    app.faults.drop_reply_rate = 1.0  # Sage applies the create; the TLS connection closes with no answer
    with pytest.raises(RetryableError) as raised:
        ebusiness.post_sales_order(conn, order())
    assert not isinstance(raised.value, PermanentError)
    app.faults.drop_reply_rate = 0.0
    result = ebusiness.post_sales_order(conn, order())
    assert result.existed
    assert app.companies["ABC"].created_sales_orders == 1
    assert app.operations["(answer dropped)"] == 1


def test_a_create_answered_after_the_timeout_is_found_by_the_next_try(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    client = ebusiness.EBusinessClient.for_connection(conn, timeout=0.5)
    ebusiness.ensure_customer(conn, order().customer, division="01", numbering="W", client=client)
    app.faults.slow_reply_rate, app.faults.slow_reply_s = 1.0, 1.5
    with pytest.raises(RetryableError, match="Timeout"):
        ebusiness.post_sales_order(conn, order(), client=client)
    app.faults.slow_reply_rate = 0.0
    result = ebusiness.post_sales_order(conn, order(), client=client)
    assert result.existed
    assert app.companies["ABC"].created_sales_orders == 1


def test_workers_posting_the_same_order_at_once_make_one(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    results, errors = [], []

    def post():
        try:
            results.append(ebusiness.post_sales_order(conn, order()))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sum(not r.existed for r in results) == 1 and len(results) == 6
    assert len({r.customer_ref for r in results}) == 1
    company = app.companies["ABC"]
    assert len(company.sales_orders) == 1 and len(company.customers) == 1


def test_concurrent_orders_from_one_email_make_one_customer(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    documents = [order(f"W00{2000 + n}", po=str(2000 + n), email="Bob@Example.com") for n in range(8)]
    results = []
    threads = [threading.Thread(target=lambda d=d: results.append(ebusiness.post_sales_order(conn, d)))
               for d in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8 and all(not r.existed for r in results)
    assert len({r.customer_ref for r in results}) == 1
    assert sum(r.customer_created for r in results) <= 1
    assert len(app.companies["ABC"].customers) == 1


def test_a_customer_number_held_by_another_email_moves_to_the_next_candidate(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    taken = ebusiness.customer_no_for_email("carol@example.com", prefix="W")
    app.companies["ABC"].customers[("01", taken)] = {"ARDivisionNo": "01", "CustomerNo": taken,
                                                     "EmailAddress": "someone.else@example.com"}
    ref = ebusiness.ensure_customer(conn, order(email="carol@example.com").customer, division="01", numbering="W")
    assert ref.customer_no == ebusiness.customer_no_for_email("carol@example.com", prefix="W", attempt=1)
    assert not ref.existed and len(ref.customer_no) == 7


def test_a_changed_address_updates_the_customer(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    first = ebusiness.ensure_customer(conn, order().customer, division="01", numbering="W")
    moved = order(address="9 New Road").customer
    moved.name = "Ann Smith-Jones, Buyer At A Very Long Company Name"  # longer than Sage's 30 characters
    again = ebusiness.ensure_customer(conn, moved, division="01", numbering="W")
    assert again.existed and again.customer_no == first.customer_no
    held = app.companies["ABC"].customers[("01", first.customer_no)]
    assert held["AddressLine1"] == "9 New Road" and held["CustomerName"] == moved.name[:30]
    assert app.operations["UpdateCustomer"] == 1


def test_a_linked_customer_is_used_and_an_unknown_one_is_refused_clearly(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    app.companies["ABC"].customers[("01", "WEBSALE")] = {"ARDivisionNo": "01", "CustomerNo": "WEBSALE"}
    posted = ebusiness.post_sales_order(conn, order(customer_no="WEBSALE"))
    assert posted.customer_ref == "01-WEBSALE" and not posted.customer_created
    with pytest.raises(SageUnknownReference, match="CI_NOF.*01-NOBODY"):
        ebusiness.post_sales_order(conn, order("W003001", po="3001", customer_no="NOBODY"))


def test_an_unknown_item_is_ci_nof_and_permanent(sage, certificate):
    _, server = sage
    with pytest.raises(SageUnknownReference, match="Item code NOPE") as caught:
        ebusiness.post_sales_order(connection(server, certificate), order(item="NOPE"))
    assert not caught.value.retryable and "map it" in str(caught.value)


def test_a_number_held_by_another_store_order_is_refused(sage, certificate):
    app, server = sage
    conn = connection(server, certificate)
    ebusiness.post_sales_order(conn, order("W004001", po="4001"))
    with pytest.raises(PermanentError, match="customer PO '4001'"):
        ebusiness.post_sales_order(conn, order("W004001", po="9999"))


@pytest.mark.parametrize(("fields", "error", "says"), [
    ({"password": "wrong"}, SageLogonFailed, "user name and password"),
    ({"username": "OFFLINE", "password": "pw"}, WebServicesNotEnabled, "User Maintenance"),
    ({"company_code": "OFF"}, WebServicesNotEnabled, "company OFF"),
    ({"username": "OTHERCO", "password": "pw"}, SageNoAccess, "Role Maintenance"),
])
def test_logon_is_checked_on_every_call(sage, certificate, fields, error, says):
    _, server = sage
    with pytest.raises(error, match=says) as caught:
        ebusiness.post_sales_order(connection(server, certificate, **fields), order())
    assert isinstance(caught.value, AuthError) and not caught.value.retryable


def test_iis_5xx_is_retryable_and_nothing_is_created(sage, certificate):
    app, server = sage
    client = ebusiness.EBusinessClient.for_connection(connection(server, certificate))
    client.backoff_base = 0.01
    client.contract_information()  # the WSDL is loaded
    app.faults.error_rate = 1.0
    with pytest.raises(RetryableError, match="503"):
        ebusiness.post_sales_order(None, order(), client=client)
    assert client.calls == 1 + client.read_attempts  # the look-up was retried in-process, then given up
    app.faults.error_rate = 0.0
    assert not app.companies["ABC"].sales_orders


def test_a_slow_server_times_out_as_retryable(sage, certificate):
    app, server = sage
    client = ebusiness.EBusinessClient.for_connection(connection(server, certificate), timeout=0.5)
    client.read_attempts = 1
    assert client.get_sales_order("W000001") is None  # the WSDL is loaded while the server is quick
    app.faults.latency_ms = 1500
    with pytest.raises(RetryableError, match="Timeout"):
        client.get_sales_order("W000001")
    app.faults.latency_ms = 0


def test_refused_without_the_uploaded_certificate(sage, certificate, tmp_path):
    _, server = sage
    with pytest.raises(PermanentError, match="upload that certificate") as caught:
        ebusiness.post_sales_order(connection(server, certificate, tls_ca_pem=""), order())
    assert not caught.value.retryable
    stranger = make_self_signed(tmp_path / "other").cert_pem  # a different self-signed certificate
    with pytest.raises(PermanentError, match="certificate"):
        ebusiness.post_sales_order(connection(server, certificate, tls_ca_pem=stranger), order())


def test_verification_off_is_possible_but_explicit(sage, certificate):
    app, server = sage
    result = ebusiness.post_sales_order(connection(server, certificate, tls_ca_pem="", verify_tls=False), order())
    assert not result.existed and "W001001" in app.companies["ABC"].sales_orders


def test_plain_http_works_too():
    app = EBusinessSandboxApp(users={USER: User(PASSWORD)}, companies={"ABC": Company("ABC")})
    server = EBusinessServer(app).start()
    try:
        conn = SageConnection(name="plain", edition="sage100", transport="ebusiness_soap",
                              server_url=server.service_url, company_code="abc", username=USER, password=PASSWORD)
        assert ebusiness.post_sales_order(conn, order()).sales_order_no == "W001001"
        assert "logon as 'WEBUSER' to company ABC works" in ebusiness.check_connection(conn)
    finally:
        server.stop()


@pytest.mark.parametrize(("fields", "says"), [
    ({"server_url": ""}, "no server URL"),
    ({"company_code": "ABCD"}, "3 characters"),
    ({"username": ""}, "no user name"),
    ({"tls_ca_pem": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"}, "certificate is unusable"),
])
def test_an_incomplete_connection_is_refused_before_any_call(fields, says, certificate):
    conn = SageConnection(name="x", edition="sage100", transport="ebusiness_soap", server_url="https://sage.example/svc",
                          company_code="ABC", username=USER, password=PASSWORD)
    for name, value in fields.items():
        setattr(conn, name, value)
    with pytest.raises(PermanentError, match=says):
        ebusiness.post_sales_order(conn, order())


def test_the_password_never_shows_in_a_repr_or_an_error(sage, certificate):
    _, server = sage
    client = ebusiness.EBusinessClient.for_connection(connection(server, certificate, password="wrong-but-secret"))
    assert "wrong-but-secret" not in repr(client.settings) and "wrong-but-secret" not in repr(client)
    with pytest.raises(SageLogonFailed) as caught:
        client.get_sales_order("W000001")
    assert "wrong-but-secret" not in str(caught.value)
