"""The X3 clients and the poster against the real X3 sandbox over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest
import requests

from connector.sagex3.auth import ConnectedAppJWT, OAuth2Tokens, refresh_token_expires_soon, sign_hs256
from connector.sagex3.client import X3GraphQLClient, X3RestClient, x3_json
from connector.sagex3.poster import post_journal_entry
from mlcommon.http import AuthError, PermanentError, RetryableError
from mlcommon.ledger import JournalEntry, JournalLine
from sandbox.httpserver import SandboxServer
from sandbox.x3 import X3SandboxApp

CLIENT_ID, SECRET = "bc-connector", "s3cret-value"


@pytest.fixture(scope="module")
def x3_server():
    app = X3SandboxApp(user="WEBAPI", password="pw", client_id=CLIENT_ID, client_secret=SECRET,
                       folder="SEED", page_size=2)
    server = SandboxServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def x3(x3_server):
    x3_server.app.reset()
    return x3_server


def entry(reference="BC-1001", amount="120.00", account="707000", sense_check=True) -> JournalEntry:
    credit = D(amount) if sense_check else D(amount) - D("0.01")
    return JournalEntry(
        reference=reference, date=dt.date(2024, 3, 5), description=f"BigCommerce order {reference[3:]}",
        currency="USD", entry_type="ODIV", journal="ODIV", site="FR011", company="FR10",
        lines=[JournalLine("411000", 1, D(amount), "receivable", "WEBSALES"),
               JournalLine(account, -1, credit, "revenue")],
    )


def entries_in(server) -> list[dict]:
    return requests.get(f"{server.url}/__sandbox__/entries", timeout=5).json()["entries"]


def rest(server, **kwargs) -> X3RestClient:
    client = X3RestClient(server.url, "SEED", kwargs.pop("user", "WEBAPI"), kwargs.pop("password", "pw"), **kwargs)
    client.backoff_base = 0.0
    return client


def oauth_client(server, on_tokens=None, **kwargs) -> tuple[X3GraphQLClient, OAuth2Tokens]:
    code = requests.post(f"{server.url}/__sandbox__/authorization_codes", timeout=5).json()["code"]
    tokens = OAuth2Tokens(f"{server.url}/v1/token", CLIENT_ID, SECRET, on_tokens=on_tokens, **kwargs)
    tokens.exchange_code(code, "https://connector.example/x3/callback")
    return X3GraphQLClient(server.url, "SEED", tokens), tokens


# -- REST api1 ---------------------------------------------------------------------------------------


def test_rest_create_then_lookup_by_reference(x3):
    client = rest(x3)
    number, existed = post_journal_entry(client, entry())
    assert existed is False and number
    found = client.find_entry_by_reference("BC-1001")
    assert found.number == number and found.entry_type == "ODIV"
    stored = entries_in(x3)
    assert len(stored) == 1
    assert stored[0]["REF"] == "BC-1001" and stored[0]["FCY"] == "FR011" and stored[0]["CPY"] == "FR10"
    assert [(line["ACC"], line["SNS"], D(str(line["AMTCUR"]))) for line in stored[0]["lines"]] == [
        ("411000", 1, D("120.00")), ("707000", -1, D("120.00"))]
    assert stored[0]["lines"][0]["BPR"] == "WEBSALES"


def test_rest_repost_is_idempotent(x3):
    client = rest(x3)
    first = post_journal_entry(client, entry())
    second = post_journal_entry(client, entry())
    assert second == (first[0], True)
    assert len(entries_in(x3)) == 1


def test_rest_lookup_follows_next_links_across_pages(x3):
    client = rest(x3, page_size=1)
    for n in range(1, 4):
        post_journal_entry(client, entry(f"BC-{n}"))
    before = client.request_count
    assert client.find_entry_by_reference("BC-3") is not None
    assert client.request_count - before == 1  # the where filter narrows it to one page
    # A publication that ignores ``where``: every page then holds one other entry.
    urls = []
    original_get = client.get

    def without_filter(url, **kwargs):
        urls.append(url)
        return original_get(url.split("&where=")[0], **kwargs)

    client.get = without_filter
    found = client.find_entry_by_reference("BC-3")
    assert found is not None and found.reference == "BC-3" and found.number
    assert len(urls) == 3 and "startIndex=3" in urls[-1]
    urls.clear()
    assert client.find_entry_by_reference("BC-404") is None
    assert len(urls) == 3


def test_rest_unbalanced_entry_is_permanent_with_the_x3_message(x3):
    with pytest.raises(PermanentError) as info:
        rest(x3).create_entry(entry(sense_check=False))
    assert info.value.status == 400
    assert "Unbalanced entry" in str(info.value) and "0.01" in str(info.value)
    assert not isinstance(info.value, RetryableError)
    assert entries_in(x3) == []


def test_poster_refuses_an_unbalanced_entry_before_calling_x3(x3):
    client = rest(x3)
    with pytest.raises(PermanentError) as info:
        client.create_entry(entry(account="999999"))
    assert "account 999999 does not exist" in str(info.value)
    from connector.sagex3.journal import Unbalanced

    with pytest.raises(Unbalanced):
        post_journal_entry(client, entry(sense_check=False))


def test_rest_bad_password_is_auth_error(x3):
    with pytest.raises(AuthError) as info:
        post_journal_entry(rest(x3, password="wrong"), entry())
    assert info.value.status == 401
    assert "invalid user or password" in str(info.value)


def test_rest_retries_lookups_on_injected_5xx_but_not_creates(x3):
    client = rest(x3)
    requests.post(f"{x3.url}/__sandbox__/faults", json={"error_rate": 1.0}, timeout=5)
    before = client.request_count
    with pytest.raises(RetryableError):
        client.find_entry_by_reference("BC-1")
    assert client.request_count - before == client.max_attempts
    before = client.request_count
    with pytest.raises(RetryableError):
        client.create_entry(entry())
    assert client.request_count - before == 1


def test_rest_tls_verification_is_on_unless_turned_off(x3):
    assert rest(x3).session.verify is True
    assert rest(x3, verify=False).session.verify is False


def test_x3_json_writes_exact_numbers():
    assert x3_json({"AMTCUR": D("0.10"), "SNS": -1, "DES": "a\"b"}) == '{"AMTCUR":0.10,"SNS":-1,"DES":"a\\"b"}'


# -- GraphQL + OAuth2 ------------------------------------------------------------------------------


def test_graphql_oauth_create_lookup_and_repost(x3):
    stored_tokens = []
    client, tokens = oauth_client(x3, on_tokens=lambda *args: stored_tokens.append(args))
    assert len(stored_tokens) == 1
    access, refresh, expires_at, refresh_expires_at = stored_tokens[0]
    assert access and refresh and expires_at.tzinfo is not None
    assert dt.timedelta(days=29) < refresh_expires_at - expires_at <= dt.timedelta(days=30)
    number, existed = post_journal_entry(client, entry("BC-2001"))
    assert existed is False
    assert post_journal_entry(client, entry("BC-2001")) == (number, True)
    assert client.find_entry_by_reference("BC-2001").number == number
    assert [e["REF"] for e in entries_in(x3)] == ["BC-2001"]


def test_graphql_lookup_pages_through_cursors(x3):
    client, _ = oauth_client(x3)
    for n in range(5):
        post_journal_entry(client, entry(f"BC-30{n}"))
    # Ask for everything (no filter) to force the cursor paging: the sandbox pages by 2.
    client.mapping = type(client.mapping)(reference_field="journalEntryNumber")
    last_number = entries_in(x3)[-1]["NUM"]
    found = client.find_entry_by_reference(last_number)
    assert found is not None and found.number == last_number


def test_graphql_business_errors_are_permanent_with_the_x3_message(x3):
    client, _ = oauth_client(x3)
    with pytest.raises(PermanentError, match="Unbalanced entry"):
        client.create_entry(entry("BC-4001", sense_check=False))
    with pytest.raises(PermanentError, match="account 999999 does not exist"):
        client.create_entry(entry("BC-4002", account="999999"))
    assert entries_in(x3) == []


def test_forced_token_expiry_mid_run_refreshes_and_continues(x3):
    stored_tokens = []
    client, tokens = oauth_client(x3, on_tokens=lambda *args: stored_tokens.append(args))
    post_journal_entry(client, entry("BC-5001"))
    first_refresh = tokens.refresh_token
    requests.post(f"{x3.url}/__sandbox__/faults", json={"expire_tokens_now": True}, timeout=5)
    number, existed = post_journal_entry(client, entry("BC-5002"))
    assert existed is False and number
    assert tokens.refresh_count == 1
    # The rotated refresh token reached the callback, and the old one is dead at the gateway.
    assert stored_tokens[-1][1] == tokens.refresh_token != first_refresh
    stale = OAuth2Tokens(f"{x3.url}/v1/token", CLIENT_ID, SECRET, refresh_token=first_refresh)
    with pytest.raises(AuthError, match="invalid, expired or used"):
        stale.refresh()
    assert [e["REF"] for e in entries_in(x3)] == ["BC-5001", "BC-5002"]


def test_access_token_is_refreshed_before_it_expires(x3):
    clock = [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]
    client, tokens = oauth_client(x3, now=lambda: clock[0])
    post_journal_entry(client, entry("BC-6001"))
    assert tokens.refresh_count == 0
    clock[0] += dt.timedelta(seconds=45)  # the sandbox's 60 s token is within the 30 s margin
    post_journal_entry(client, entry("BC-6002"))
    assert tokens.refresh_count == 1
    grants = requests.get(f"{x3.url}/__sandbox__/tokens", timeout=5).json()["grants"]
    assert grants == ["authorization_code", "refresh_token"]


def test_form_encoded_token_requests_work_too(x3):
    client, tokens = oauth_client(x3, body_format="form")
    tokens.refresh()
    assert post_journal_entry(client, entry("BC-6101"))[1] is False


def test_bad_client_secret_at_the_token_endpoint_is_auth_error(x3):
    code = requests.post(f"{x3.url}/__sandbox__/authorization_codes", timeout=5).json()["code"]
    tokens = OAuth2Tokens(f"{x3.url}/v1/token", CLIENT_ID, "nope")
    with pytest.raises(AuthError, match="bad client credentials"):
        tokens.exchange_code(code, "https://connector.example/cb")


def test_refresh_token_expiry_warning():
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert refresh_token_expires_soon(now + dt.timedelta(days=4), now=now) is True
    assert refresh_token_expires_soon(now + dt.timedelta(days=6), now=now) is False
    assert refresh_token_expires_soon(now + dt.timedelta(days=6), days=7, now=now) is True
    assert refresh_token_expires_soon(None, now=now) is True
    tokens = OAuth2Tokens("http://127.0.0.1:9/v1/token", "c", "s", refresh_expires_at=now + dt.timedelta(days=20),
                          now=lambda: now)
    assert tokens.refresh_token_expires_soon() is False
    assert "s" not in repr(tokens).replace("OAuth2Tokens", "").replace("expires", "")


# -- GraphQL + connected-application JWT ------------------------------------------------------------


def test_connected_app_jwt_posts_and_looks_up(x3):
    client = X3GraphQLClient(x3.url, "SEED", ConnectedAppJWT(CLIENT_ID, SECRET, "WEBAPI"))
    number, existed = post_journal_entry(client, entry("BC-7001"))
    assert existed is False
    assert post_journal_entry(client, entry("BC-7001")) == (number, True)


def test_connected_app_jwt_with_wrong_secret_is_auth_error_after_one_retry(x3):
    client = X3GraphQLClient(x3.url, "SEED", ConnectedAppJWT(CLIENT_ID, "wrong", "WEBAPI"))
    with pytest.raises(AuthError) as info:
        client.find_entry_by_reference("BC-1")
    assert info.value.status == 401 and "signature" in str(info.value)
    assert client.request_count == 2


def test_expired_jwt_is_renewed_by_the_provider():
    clock = [1_700_000_000.0]
    provider = ConnectedAppJWT(CLIENT_ID, SECRET, "WEBAPI", lifetime=60, clock=lambda: clock[0])
    first = provider.bearer()
    assert provider.bearer() == first
    clock[0] += 55
    assert provider.bearer() != first


def test_jwt_signature_matches_a_known_vector():
    # HS256 of {"sub":"1234567890"} with key "secret", computed independently of this module.
    token = sign_hs256({"sub": "1234567890"}, "secret")
    assert token == ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                     + token.rsplit(".", 1)[1])
    import base64
    import hashlib
    import hmac

    signing_input = token.rsplit(".", 1)[0].encode()
    expected = base64.urlsafe_b64encode(hmac.new(b"secret", signing_input, hashlib.sha256).digest()).rstrip(b"=")
    assert token.rsplit(".", 1)[1] == expected.decode()


def test_graphql_requires_the_endpoint_header(x3):
    client = X3GraphQLClient(x3.url, "OTHER", ConnectedAppJWT(CLIENT_ID, SECRET, "WEBAPI"))
    with pytest.raises(PermanentError, match="x-xtrem-endpoint"):
        client.find_entry_by_reference("BC-1")


def test_audit_exchange_keeps_the_payload_but_no_secrets(x3):
    client = rest(x3)
    client.create_entry(entry("BC-8001"))
    audit = client.last_exchange.as_dict()
    assert audit["status"] == 201
    assert audit["request"]["REF"] == "BC-8001" and audit["request"]["GACCENTRYD"][0]["ACC"] == "411000"
    assert "pw" not in json.dumps(audit, default=str)
    graph, tokens = oauth_client(x3)
    token_audit = tokens.endpoint.last_exchange.as_dict()
    assert token_audit["request"]["client_secret"] == "***"
    assert token_audit["response"]["access_token"] == "***" and token_audit["response"]["refresh_token"] == "***"
    graph.create_entry(entry("BC-8002"))
    gql_audit = graph.last_exchange.as_dict()
    assert gql_audit["request"]["variables"]["data"]["reference"] == "BC-8002"
    assert tokens.access_token not in json.dumps(gql_audit, default=str)


# -- foreign currency: the rate and company-currency amounts on both paths (issue 17) -----------------


@pytest.fixture
def x3_usd():
    """An X3 company whose currency is USD: an entry in another currency needs its rate."""
    app = X3SandboxApp(user="WEBAPI", password="pw", client_id=CLIENT_ID, client_secret=SECRET,
                       folder="SEED", company_currency="USD")
    server = SandboxServer(app).start()
    yield server
    server.stop()


def eur_entry(reference="BC-2001", *, with_rate=True) -> JournalEntry:
    made = entry(reference)
    made.currency = "EUR"
    if with_rate:
        made.ledger_currency, made.exchange_rate = "USD", D("1.098901")
        made.lines[0].ledger_amount = made.lines[1].ledger_amount = D("131.87")
    return made


def test_rest_sends_the_rate_and_company_amounts_of_a_eur_entry(x3_usd):
    client = rest(x3_usd)
    payload = client.payload(eur_entry())
    assert (payload["CUR"], payload["CURLED"], payload["RATMLT"], payload["RATDIV"]) == ("EUR", "USD", D("1.098901"), 1)
    assert [line["AMTLED"] for line in payload["GACCENTRYD"]] == [D("131.87"), D("131.87")]
    number, _ = post_journal_entry(client, eur_entry())
    stored = entries_in(x3_usd)[0]
    assert number and (stored["CURLED"], D(str(stored["RATMLT"]))) == ("USD", D("1.098901"))
    assert [D(str(line["AMTLED"])) for line in stored["lines"]] == [D("131.87"), D("131.87")]


def test_graphql_sends_the_rate_and_company_amounts_of_a_eur_entry(x3_usd):
    client, _ = oauth_client(x3_usd)
    data = client.variables_for(eur_entry())["data"]
    assert (data["ledgerCurrency"], data["rateMultiplier"], data["rateDivisor"]) == ("USD", D("1.098901"), 1)
    assert [(line["ledgerCurrency"], line["ledgerAmount"]) for line in data["journalEntryLines"]] == [
        ("USD", D("131.87")), ("USD", D("131.87"))]
    number, _ = post_journal_entry(client, eur_entry())
    assert number and entries_in(x3_usd)[0]["CURLED"] == "USD"
    # An entry in the company's own currency carries none of it.
    plain = client.variables_for(entry("BC-2002"))["data"]
    assert "rateMultiplier" not in plain and "ledgerAmount" not in plain["journalEntryLines"][0]


@pytest.mark.parametrize("transport", ["rest", "graphql"])
def test_a_eur_entry_without_its_rate_is_refused_on_both_paths(x3_usd, transport):
    client = rest(x3_usd) if transport == "rest" else oauth_client(x3_usd)[0]
    with pytest.raises(PermanentError, match="No exchange rate from EUR to USD"):
        client.create_entry(eur_entry(with_rate=False))
    assert entries_in(x3_usd) == []
