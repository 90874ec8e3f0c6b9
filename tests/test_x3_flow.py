"""The BigCommerce → Sage X3 GL flow (connector/flows/x3.py) against an in-process BigCommerce
sandbox and an in-process X3 sandbox, both over real loopback HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
import requests
from django.db import connection
from django.utils import timezone

from accounts.models import Integration, SageConnection
from connector.bigcommerce.formats import jsonable
from connector.flows import x3 as x3_flow
from connector.models import SyncRecord
from connector.services.pipeline import run_record
from connector.services.records import replay, upsert_record
from mappings.models import AccountMapping, RecordLink
from sandbox.bigcommerce import render
from sandbox.bigcommerce.app import build_app
from sandbox.httpserver import SandboxServer
from sandbox.x3 import X3SandboxApp
from tests.support.factories import IntegrationFactory, make_integration

pytestmark = pytest.mark.django_db

BC_TOKEN, X3_USER, X3_PASSWORD = "bc-test-token", "WEBAPI", "x3-pw"
X3_CLIENT_ID, X3_SECRET = "x3-client", "x3-client-secret"
State = SyncRecord.State
CHANNEL_OF: dict[int, int] = {}  # order id -> sales channel (the sandbox store knows channel 1 only)


def with_channels(original, channel_of):
    """Wrap the sandbox's v2 order renderer so orders belong to several sales channels."""

    def order_v2(order, *args, **kwargs):
        return {**original(order, *args, **kwargs), "channel_id": channel_of(order.id)}

    return order_v2


@pytest.fixture(scope="module")
def servers():
    original = render.order_v2
    render.order_v2 = with_channels(original, lambda order_id: CHANNEL_OF.get(order_id, 1))
    bc = SandboxServer(build_app(store_hash="x3flow", token=BC_TOKEN, orders=0, seed=7)).start()
    x3 = SandboxServer(X3SandboxApp(user=X3_USER, password=X3_PASSWORD, client_id=X3_CLIENT_ID,
                                    client_secret=X3_SECRET, folder="SEED")).start()
    yield bc, x3
    bc.stop()
    x3.stop()
    render.order_v2 = original


@pytest.fixture
def bc(servers):
    return servers[0]


@pytest.fixture
def x3(servers):
    servers[1].app.reset()
    return servers[1]


def x3_integration(bc, x3, **sage_fields) -> Integration:
    integration = make_integration(
        edition=SageConnection.Edition.SAGEX3, sage__transport=SageConnection.Transport.X3_REST,
        sage__x3_auth=SageConnection.X3Auth.BASIC, sage__server_url=x3.url, sage__folder="SEED",
        sage__username=X3_USER, sage__password=X3_PASSWORD, sage__company_path="",
        store__api_base_url=bc.url, store__store_hash="x3flow", store__access_token=BC_TOKEN,
        post_gl_entries=True, x3_entry_type="ODIV", x3_journal="VEN", x3_site="FR011", x3_company="FR10",
    )
    SageConnection.objects.filter(pk=integration.sage_id).update(**sage_fields)
    integration.refresh_from_db()
    return integration


def map_accounts(integration, channel_id, **accounts):
    for purpose, code in accounts.items():
        AccountMapping.objects.update_or_create(integration=integration, channel_id=channel_id, purpose=purpose,
                                                defaults={"account_code": code, "channel_name": f"Channel {channel_id}"})


def map_every_channel(integration):
    map_accounts(integration, 0, receivable="411000", business_partner="WEB001", revenue="707000", tax="445710", shipping="708500",
                 discount="709000")


def new_order(bc, channel=1, **shape):
    # Tax-exclusive: tax-inclusive sandbox orders can be a cent off (see the e2e test and the report).
    shape = {"status_id": 11, "coupon": False, "gift_certificate": False, "tax_inclusive": False, **shape}
    order = bc.app.store.create_order(shape)
    CHANNEL_OF[order.id] = channel
    return order


def order_record(integration, order_id, payload=None) -> SyncRecord:
    record, _ = upsert_record(integration.pk, SyncRecord.Kind.ORDER, str(order_id), SyncRecord.Action.POST_JOURNAL,
                              payload=payload, reason="test")
    return record


def run(record) -> SyncRecord:
    run_record(record.pk)
    record.refresh_from_db()
    return record


def entries(x3) -> list[dict]:
    return requests.get(f"{x3.url}/__sandbox__/entries", timeout=5).json()["entries"]


def lines_of(entry) -> list[tuple[str, int, D]]:
    return [(line["ACC"], line["SNS"], D(str(line["AMTCUR"]))) for line in entry["lines"]]


def fetched_order(bc, order_id) -> dict:
    response = requests.get(f"{bc.url}/stores/x3flow/v2/orders/{order_id}", headers={"X-Auth-Token": BC_TOKEN},
                            timeout=5)
    return response.json()


# -- orders ------------------------------------------------------------------------------------------


def test_order_posts_one_balanced_entry_on_the_channel_accounts(bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    map_accounts(integration, 2, revenue="706000")  # channel 2's own revenue account wins over channel 0
    order = new_order(bc, channel=2)
    store_order = fetched_order(bc, order.id)

    record = run(order_record(integration, order.id))

    assert record.state == State.POSTED, record.message
    stored = entries(x3)
    assert len(stored) == 1
    entry = stored[0]
    assert record.message == f"Posted as X3 entry {entry['NUM']}"
    assert record.sage_id == entry["NUM"] and record.sage_reference == f"BC-{order.id}"
    assert entry["REF"] == f"BC-{order.id}" and entry["FCY"] == "FR011" and entry["TYP"] == "ODIV"
    debit = sum((amount for _, sense, amount in lines_of(entry) if sense == 1), D(0))
    credit = sum((amount for _, sense, amount in lines_of(entry) if sense == -1), D(0))
    assert debit == credit == D(store_order["total_inc_tax"]).quantize(D("0.01"))
    accounts = {acc: sense for acc, sense, _ in lines_of(entry)}
    assert accounts["411000"] == 1 and accounts["706000"] == -1 and "707000" not in accounts
    if D(store_order["total_tax"]):
        assert accounts["445710"] == -1
    link = RecordLink.objects.get(integration=integration, kind=RecordLink.Kind.JOURNAL_ENTRY)
    assert (link.external_id, link.sage_id, link.reference) == (str(order.id), entry["NUM"], f"BC-{order.id}")
    steps = list(record.audit.values_list("step", flat=True))
    assert steps.index("mapped") < steps.index("x3_exchange") < steps.index("posted")
    exchange = record.audit.get(step="x3_exchange").data
    assert exchange["method"] == "POST" and exchange["status"] in (200, 201)
    assert exchange["request_body"]["REF"] == f"BC-{order.id}"
    assert X3_PASSWORD not in str(list(record.audit.values_list("data", flat=True)))


def test_running_or_replaying_again_posts_nothing_new(bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    order = new_order(bc)
    record = run(order_record(integration, order.id))
    number = record.sage_id
    assert record.state == State.POSTED

    run(record)  # a posted record is not re-run
    assert replay([record]) == 0  # nor replayed
    # A worker that died after X3 created the entry but before the record was marked: the retry
    # finds the entry by its reference instead of posting it again.
    RecordLink.objects.filter(integration=integration).delete()
    SyncRecord.objects.filter(pk=record.pk).update(state=State.FAILED, sage_id="")
    assert replay([SyncRecord.objects.get(pk=record.pk)]) == 1
    record = run(record)

    assert record.state == State.POSTED and record.sage_id == number
    assert [e["REF"] for e in entries(x3)] == [f"BC-{order.id}"]
    assert RecordLink.objects.get(integration=integration).sage_id == number
    assert record.audit.filter(step="posted").last().data["existed"] is True


def test_unmapped_channel_waits_then_posts_once_after_mapping(bc, x3):
    integration = x3_integration(bc, x3)
    map_accounts(integration, 0, receivable="411000", business_partner="WEB001", tax="445710", shipping="708500")
    order = new_order(bc, channel=3)

    record = run(order_record(integration, order.id))

    assert record.state == State.WAITING_MAPPING
    assert "sales channel 3" in record.message and "revenue" in record.message
    assert "account:3:revenue" in record.waiting_for
    assert entries(x3) == []

    map_accounts(integration, 3, revenue="707000")
    assert replay([record]) == 1
    record = run(record)
    assert record.state == State.POSTED, record.message
    record = run(record)
    assert len(entries(x3)) == 1 and entries(x3)[0]["REF"] == f"BC-{order.id}"
    assert "707000" in {acc for acc, _, _ in lines_of(entries(x3)[0])}


def test_unbalanced_order_is_held_with_the_difference(bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    order = new_order(bc)
    edited = fetched_order(bc, order.id)
    edited["total_inc_tax"] = str(D(edited["total_inc_tax"]) + D("0.05"))  # a hand-edited order

    record = run(order_record(integration, order.id, payload=edited))

    assert record.state == State.HELD
    assert "does not balance" in record.message and "difference 0.05" in record.message
    assert entries(x3) == []


def test_order_not_in_a_posting_status_is_skipped(bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    order = new_order(bc, status_id=1)  # Pending: not paid yet

    record = run(order_record(integration, order.id))

    assert record.state == State.SKIPPED and "not a posting status" in record.message
    assert entries(x3) == []


# -- refunds -----------------------------------------------------------------------------------------


def refund_record(integration, refund, with_payload=True) -> SyncRecord:
    payload = {"refund": jsonable(render.refund_v3(refund)), "order_id": refund.order_id} if with_payload else None
    record, _ = upsert_record(integration.pk, SyncRecord.Kind.REFUND, str(refund.id), SyncRecord.Action.POST_JOURNAL,
                              payload=payload, reason="test")
    return record


def test_refund_posts_a_reversal_before_its_order_and_refetches_after_a_replay(bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    order = new_order(bc, channel=2)
    refund = bc.app.store.create_refund(order.id, kind="full")

    record = run(refund_record(integration, refund))

    assert record.state == State.POSTED, record.message
    [entry] = entries(x3)
    assert entry["REF"] == f"BC-{order.id}-R{refund.id}"
    lines = lines_of(entry)
    assert all(amount < 0 for _, _, amount in lines)  # "negative" style: same senses, red amounts
    assert sum(a for _, s, a in lines if s == 1) == sum(a for _, s, a in lines if s == -1) == -refund.total_amount
    assert RecordLink.objects.get(integration=integration, external_id=str(refund.id)).sage_id == entry["NUM"]

    # A refund whose record lost its payload (a replay from the store) is read again by its id.
    order2 = new_order(bc)
    refund2 = bc.app.store.create_refund(order2.id, kind="item")
    record2 = refund_record(integration, refund2, with_payload=False)
    record2 = run(record2)
    assert record2.state == State.POSTED, record2.message
    assert [e["REF"] for e in entries(x3)][-1] == f"BC-{order2.id}-R{refund2.id}"


def test_swapped_refund_style_posts_positive_amounts(bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    Integration.objects.filter(pk=integration.pk).update(x3_refund_style=Integration.RefundStyle.SWAPPED)
    order = new_order(bc)
    refund = bc.app.store.create_refund(order.id, kind="item")
    record = run(refund_record(integration, refund))
    assert record.state == State.POSTED, record.message
    [entry] = entries(x3)
    assert all(amount > 0 for _, _, amount in lines_of(entry))
    assert ("411000", -1, refund.total_amount) in lines_of(entry)  # receivable credited back


# -- GraphQL with OAuth2: token rotation saved encrypted -------------------------------------------


def paired_graphql_integration(bc, x3) -> Integration:
    integration = x3_integration(
        bc, x3, transport=SageConnection.Transport.X3_GRAPHQL, x3_auth=SageConnection.X3Auth.OAUTH,
        oauth_client_id=X3_CLIENT_ID, oauth_token_url=f"{x3.url}/v1/token", x3_graphql_endpoint="SEED")
    sage = integration.sage
    sage.oauth_client_secret = X3_SECRET
    sage.save()
    code = requests.post(f"{x3.url}/__sandbox__/authorization_codes", timeout=5).json()["code"]
    tokens = x3_flow.StoredOAuth2Tokens(sage.pk, sage.oauth_token_url, X3_CLIENT_ID, X3_SECRET,
                                        on_tokens=x3_flow.save_tokens(sage.pk))
    tokens.exchange_code(code, "https://connector.example/x3/callback")
    map_every_channel(integration)
    return Integration.objects.select_related("sage").get(pk=integration.pk)


def raw_column(model, pk, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_graphql_posts_and_saves_rotated_tokens_encrypted(bc, x3):
    integration = paired_graphql_integration(bc, x3)
    first_refresh = SageConnection.objects.get(pk=integration.sage_id).refresh_token
    order = new_order(bc)
    assert run(order_record(integration, order.id)).state == State.POSTED

    requests.post(f"{x3.url}/__sandbox__/faults", json={"expire_tokens_now": True}, timeout=5)
    order2 = new_order(bc)
    record = run(order_record(integration, order2.id))

    assert record.state == State.POSTED, record.message
    assert [e["REF"] for e in entries(x3)] == [f"BC-{order.id}", f"BC-{order2.id}"]
    sage = SageConnection.objects.get(pk=integration.sage_id)
    assert sage.refresh_token and sage.refresh_token != first_refresh  # rotated and saved
    assert sage.refresh_token not in raw_column(SageConnection, sage.pk, "refresh_token")
    assert sage.access_token not in raw_column(SageConnection, sage.pk, "access_token")
    assert dt.timedelta(days=29) < sage.refresh_token_expires_at - timezone.now() <= dt.timedelta(days=30)
    grants = requests.get(f"{x3.url}/__sandbox__/tokens", timeout=5).json()["grants"]
    assert grants == ["authorization_code", "refresh_token"]


def test_a_second_worker_adopts_tokens_another_one_rotated(bc, x3):
    integration = paired_graphql_integration(bc, x3)
    sage = SageConnection.objects.get(pk=integration.sage_id)
    worker_a = x3_flow.x3_client(sage).tokens
    worker_b = x3_flow.x3_client(SageConnection.objects.get(pk=sage.pk)).tokens
    requests.post(f"{x3.url}/__sandbox__/faults", json={"expire_tokens_now": True}, timeout=5)

    worker_a.on_unauthorized(worker_a.access_token)  # A refreshes: the stored refresh token rotates
    worker_b.on_unauthorized(worker_b.access_token)  # B must adopt A's pair, not spend the dead one

    assert worker_b.access_token == worker_a.access_token
    grants = requests.get(f"{x3.url}/__sandbox__/tokens", timeout=5).json()["grants"]
    assert grants.count("refresh_token") == 1


def test_wrong_x3_password_fails_with_what_to_fix(bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    sage = integration.sage
    sage.password = "wrong"
    sage.save()
    record = run(order_record(integration, new_order(bc).id))
    assert record.state == State.FAILED
    assert "password" in record.message and entries(x3) == []


# -- admin ---------------------------------------------------------------------------------------------


def accountant_of(integration):
    from tests.support.factories import MembershipFactory

    return MembershipFactory(tenant=integration.tenant, role="accountant").user


def test_admin_preview_shows_the_entry_without_posting(client, bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    order = new_order(bc, channel=2)
    refund = bc.app.store.create_refund(order.id, kind="item")
    client.force_login(accountant_of(integration))

    html = client.get(f"/admin/accounts/integration/{integration.pk}/x3-preview/",
                      {"order_id": order.id}).content.decode()

    assert f"BC-{order.id}" in html and f"BC-{order.id}-R{refund.id}" in html
    assert "411000" in html and "707000" in html and html.count(">balanced<") == 2
    assert entries(x3) == [] and not SyncRecord.objects.exists()  # nothing posted, no record made


def test_admin_preview_says_what_to_map(client, bc, x3):
    integration = x3_integration(bc, x3)
    map_accounts(integration, 0, receivable="411000", business_partner="WEB001", tax="445710", shipping="708500")
    order = new_order(bc, channel=3)
    client.force_login(accountant_of(integration))
    html = client.get(f"/admin/accounts/integration/{integration.pk}/x3-preview/",
                      {"order_id": order.id}).content.decode()
    assert "Map GL accounts for sales channel 3" in html and "revenue" in html


def test_admin_preview_and_inline_are_tenant_scoped(client, bc, x3):
    integration = x3_integration(bc, x3)
    map_every_channel(integration)
    other = IntegrationFactory()
    client.force_login(accountant_of(other))
    response = client.get(f"/admin/accounts/integration/{integration.pk}/x3-preview/", {"order_id": 1})
    assert response.status_code == 404

    client.force_login(accountant_of(integration))
    html = client.get(f"/admin/accounts/integration/{integration.pk}/change/").content.decode()
    assert 'name="account_mappings-0-account_code"' in html and "709000" in html


def test_admin_warns_when_the_refresh_token_lapses_within_five_days(client, bc, x3):
    integration = x3_integration(bc, x3, transport=SageConnection.Transport.X3_GRAPHQL,
                                   x3_auth=SageConnection.X3Auth.OAUTH)
    soon = timezone.now() + dt.timedelta(days=3, hours=1)
    x3_flow.save_tokens(integration.sage_id)("access", "refresh", timezone.now(), soon)
    from tests.support.factories import MembershipFactory

    client.force_login(MembershipFactory(tenant=integration.tenant, role="owner").user)
    html = client.get("/admin/accounts/sageconnection/").content.decode()
    assert "expires in 3 days: re-authorise" in html

    x3_flow.save_tokens(integration.sage_id)("access", "refresh", timezone.now(), soon + dt.timedelta(days=20))
    html = client.get("/admin/accounts/sageconnection/").content.decode()
    assert "re-authorise" not in html and "valid 23 more days" in html


def test_admin_action_opens_the_preview_of_one_integration(admin_client, bc, x3):
    integration = x3_integration(bc, x3)
    response = admin_client.post("/admin/accounts/integration/", {
        "action": "preview_posting", "_selected_action": [integration.pk]})
    assert response.status_code == 302
    assert response["Location"] == f"/admin/morning/preview/{integration.pk}/"


def test_collective_receivable_without_business_partner_is_never_sent(bc, x3):
    integration = x3_integration(bc, x3)
    map_accounts(integration, 0, receivable="411000", revenue="707000", tax="445710", shipping="708500",
                 discount="709000")
    order = new_order(bc, channel=1)

    record = run(order_record(integration, order.id))

    assert record.state == State.WAITING_MAPPING, record.message
    assert "business partner" in record.message
    assert "account:1:business_partner" in record.waiting_for
    assert entries(x3) == []

    map_accounts(integration, 0, business_partner="WEB001")
    assert replay([record]) == 1
    record = run(record)
    assert record.state == State.POSTED, record.message
    (entry,) = entries(x3)
    assert [line["BPR"] for line in entry["lines"] if line["ACC"] == "411000"] == ["WEB001"]
