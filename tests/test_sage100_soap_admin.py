"""Admin for a Sage 100 eBusiness Web Services connection: the certificate uploaded as a file (and
refused when it is not one), the note that prices and stock need the agent, and the connection test
against the emulator over HTTPS."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import SageConnection
from sandbox.sage100 import Company, EBusinessSandboxApp, EBusinessServer, User
from sandbox.sage100.certs import make_self_signed
from tests.support.factories import MembershipFactory, make_integration, make_sage

CHANGE = "/admin/accounts/sageconnection/{}/change/"


@pytest.fixture
def owner(db, client):
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    return membership


@pytest.fixture
def emulator(tmp_path):
    pair = make_self_signed(tmp_path / "tls")
    app = EBusinessSandboxApp(users={"WEBUSER": User("pw"), "OFFLINE": User("pw", web_services_enabled=False)},
                              companies={"ABC": Company("ABC")})
    server = EBusinessServer(app, cert_path=str(pair.cert_path), key_path=str(pair.key_path)).start()
    yield server, pair
    server.stop()


def soap_connection(owner, server, pair, **fields) -> SageConnection:
    values = dict(transport=SageConnection.Transport.EBUSINESS_SOAP, server_url=server.service_url,
                  company_code="ABC", username="WEBUSER", password="pw", tls_ca_pem=pair.cert_pem)
    values.update(fields)
    return make_sage(owner.tenant, SageConnection.Edition.SAGE100, **values)


def form_data(connection: SageConnection, **changes) -> dict:
    data = {name: getattr(connection, name) for name in (
        "name", "edition", "transport", "company_path", "company_code", "server_url", "folder", "username",
        "x3_rest_class", "x3_rest_representation", "x3_graphql_endpoint", "x3_graphql_mutation", "tls_ca_pem")}
    data.update(tenant=connection.tenant_id, verify_tls="on", x3_auth="", oauth_client_id="", oauth_token_url="")
    data.update(changes)
    return data


def test_the_page_says_prices_and_stock_need_the_agent(owner, client, emulator):
    connection = soap_connection(owner, *emulator)
    page = client.get(CHANGE.format(connection.pk)).content.decode()
    assert "no items, prices or inventory" in page and "through the agent (BOI)" in page
    assert "only the uploaded certificate is trusted" in page and "sage100-sandbox" in page


def test_a_certificate_file_is_uploaded_onto_the_connection(owner, client, emulator, tmp_path):
    server, pair = emulator
    connection = soap_connection(owner, server, pair, tls_ca_pem="")
    upload = SimpleUploadedFile("server.cer", pair.cert_path.read_bytes(), content_type="application/x-x509-ca-cert")
    answer = client.post(CHANGE.format(connection.pk), form_data(connection, tls_ca_pem="", tls_certificate_file=upload))
    assert answer.status_code == 302, answer.content.decode()[:2000]
    connection.refresh_from_db()
    assert connection.tls_ca_pem.strip() == pair.cert_pem.strip()
    assert connection.password == "pw"  # the secret left blank in the form is kept


@pytest.mark.parametrize(("content", "says"), [
    (b"\x30\x82\x01\x0a\x02\x82\x01\x01\x00\xff", "binary (DER)"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "private key"),
])
def test_what_is_not_a_certificate_is_refused_in_the_form(owner, client, emulator, content, says):
    server, pair = emulator
    connection = soap_connection(owner, server, pair, tls_ca_pem="")
    upload = SimpleUploadedFile("server.cer", content)
    answer = client.post(CHANGE.format(connection.pk), form_data(connection, tls_certificate_file=upload))
    assert answer.status_code == 200 and says in answer.content.decode()
    connection.refresh_from_db()
    assert connection.tls_ca_pem == ""


def test_a_pasted_non_certificate_is_refused(owner, client, emulator):
    server, pair = emulator
    connection = soap_connection(owner, server, pair)
    answer = client.post(CHANGE.format(connection.pk), form_data(connection, tls_ca_pem="hello"))
    assert answer.status_code == 200 and "not a PEM certificate" in answer.content.decode()


def test_the_connection_test_action_reports_success_and_sage_refusals(owner, client, emulator):
    server, pair = emulator
    good = soap_connection(owner, server, pair, name="good")
    offline = soap_connection(owner, server, pair, name="offline", username="OFFLINE")
    untrusted = soap_connection(owner, server, pair, name="untrusted", tls_ca_pem="")
    answer = client.post("/admin/accounts/sageconnection/", {
        "action": "test_sage100_ebusiness", "_selected_action": [good.pk, offline.pk, untrusted.pk]}, follow=True)
    text = answer.content.decode()
    assert text.count('<li class="success">') == 1 and text.count('<li class="error">') == 2
    assert "logon as &#x27;WEBUSER&#x27; to company ABC works" in text
    assert "user &#x27;OFFLINE&#x27; (User Maintenance)" in text  # enable web services for that user
    assert "upload that certificate" in text


def test_saving_a_soap_integration_that_pushes_stock_warns(owner, client, emulator):
    server, pair = emulator
    integration = make_integration(None, SageConnection.Edition.SAGE100, tenant=owner.tenant, push_stock=True,
                                   sage__transport=SageConnection.Transport.EBUSINESS_SOAP,
                                   sage__server_url=server.service_url, sage__company_code="ABC")
    from connector.flows.sage100_soap_admin import product_data_warning

    assert "through the agent (BOI)" in product_data_warning(integration)
    integration.push_stock = False
    assert product_data_warning(integration) is None


def test_a_price_level_with_a_boi_agent_warns_that_only_standard_prices_are_read(owner):
    from connector.flows.sage100_soap_admin import product_data_warning
    from tests.support.factories import AgentFactory

    integration = make_integration(None, SageConnection.Edition.SAGE100, tenant=owner.tenant,
                                   sage100_price_level="2")
    agent = AgentFactory(tenant=owner.tenant, integration=integration, backend="sage100sim")
    assert product_data_warning(integration) is None  # the simulator reads price levels
    agent.backend = "boi"
    agent.save(update_fields=["backend"])
    assert "standard price only" in product_data_warning(integration)
    integration.sage100_price_level = ""
    assert product_data_warning(integration) is None
