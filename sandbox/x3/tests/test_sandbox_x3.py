"""The Sage X3 sandbox over raw HTTP: auth, entries, errors, tokens and fault knobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest
import requests

from sandbox.httpserver import SandboxServer
from sandbox.x3 import X3SandboxApp

REPO = Path(__file__).resolve().parents[3]
CLOCK = [1_700_000_000.0]
COLLECTION = "/api1/x3/erp/SEED/GACCENTRY"


@pytest.fixture(scope="module")
def server():
    app = X3SandboxApp(user="U", password="P", client_id="cid", client_secret="csecret", folder="SEED",
                       accounts=["411000", "707000", "445710"], access_token_ttl=60, jwt_audience="x3",
                       page_size=2, clock=lambda: CLOCK[0])
    srv = SandboxServer(app).start()
    yield srv
    srv.stop()


@pytest.fixture
def x3(server):
    server.app.reset()
    CLOCK[0] = 1_700_000_000.0
    return server


def api1(x3, method, query, body=None, auth=("U", "P"), path=COLLECTION):
    data = json.dumps(body).encode() if body is not None else None
    return requests.request(method, f"{x3.url}{path}?{query}", data=data, auth=auth, timeout=5,
                            headers={"Content-Type": "application/json"})


def entry_body(ref="BC-1", credit="100.00", acc="707000", **header):
    body = {"TYP": "ODIV", "FCY": "FR011", "ACCDAT": "2024-03-05", "JOU": "ODIV", "DESVCR": "BigCommerce order 1",
            "CUR": "EUR", "REF": ref,
            "GACCENTRYD": [{"ACC": "411000", "SNS": 1, "AMTCUR": 120.00, "BPR": "WEB", "DES": "receivable"},
                           {"ACC": acc, "SNS": -1, "AMTCUR": float(credit), "DES": "revenue"},
                           {"ACC": "445710", "SNS": -1, "AMTCUR": 20.00, "DES": "tax"}]}
    body.update(header)
    return body


def diag(response) -> str:
    body = response.json()
    assert body["$diagnoses"][0]["$severity"] == "error"
    return body["$diagnoses"][0]["$message"]


def jwt(claims: dict, secret: str = "csecret") -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(signature)}"


def graphql(x3, token, query, variables, endpoint="SEED"):
    return requests.post(f"{x3.url}/xtrem/api", json={"query": query, "variables": variables}, timeout=5,
                         headers={"Authorization": f"Bearer {token}", "x-xtrem-endpoint": endpoint})


def good_jwt(**over) -> str:
    claims = {"iss": "cid", "sub": "U", "aud": "x3", "iat": int(CLOCK[0]), "exp": int(CLOCK[0]) + 60}
    claims.update(over)
    return jwt(claims)


# -- api1 ------------------------------------------------------------------------------------------


def test_api1_requires_basic_auth(x3):
    for auth in (None, ("U", "wrong"), ("other", "P")):
        response = api1(x3, "GET", "representation=GACCENTRY.$query", auth=auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert "invalid user or password" in diag(response)


def test_api1_create_numbers_entries_and_answers_location(x3):
    first = api1(x3, "POST", "representation=GACCENTRY.$create", entry_body("BC-1"))
    second = api1(x3, "POST", "representation=GACCENTRY.$create", entry_body("BC-2"))
    assert first.status_code == second.status_code == 201
    body = json.loads(first.text, parse_float=D)
    assert body["NUM"] == "ODIV24000001" and second.json()["NUM"] == "ODIV24000002"
    assert body["GACCENTRYD"][0] == {"LIN": 1, "ACC": "411000", "SNS": 1, "AMTCUR": D("120.0"), "BPR": "WEB",
                                     "DES": "receivable"}
    assert first.headers["Location"].endswith("GACCENTRY('ODIV~ODIV24000001')?representation=GACCENTRY.$details")
    details = requests.get(x3.url + first.headers["Location"], auth=("U", "P"), timeout=5)
    assert details.status_code == 200 and details.json()["REF"] == "BC-1"
    listed = requests.get(f"{x3.url}/__sandbox__/entries", timeout=5).json()
    assert listed["count"] == 2 and [e["REF"] for e in listed["entries"]] == ["BC-1", "BC-2"]


def test_api1_refuses_unbalanced_entries_like_x3(x3):
    response = api1(x3, "POST", "representation=GACCENTRY.$create", entry_body(credit="99.99"))
    assert response.status_code == 400
    assert diag(response) == "Unbalanced entry: debit 120.0 credit 119.99 (difference 0.01)"
    assert x3.app.entries == []


def test_api1_refuses_unknown_accounts_and_missing_fields(x3):
    response = api1(x3, "POST", "representation=GACCENTRY.$create", entry_body(acc="999999"))
    assert response.status_code == 400 and "account 999999 does not exist" in diag(response)
    response = api1(x3, "POST", "representation=GACCENTRY.$create", entry_body(FCY="", CUR=""))
    assert response.status_code == 400 and diag(response) == "FCY, CUR: mandatory field"
    response = api1(x3, "POST", "representation=GACCENTRY.$create", entry_body(ACCDAT="05/03/2024"))
    assert response.status_code == 400 and "ACCDAT" in diag(response)


def test_api1_accepts_a_negative_amount_reversal(x3):
    body = entry_body()
    for line in body["GACCENTRYD"]:
        line["AMTCUR"] = -line["AMTCUR"]
    assert api1(x3, "POST", "representation=GACCENTRY.$create", body).status_code == 201


def test_api1_unpublished_class_or_representation_is_404(x3):
    assert api1(x3, "GET", "representation=GAS.$query").status_code == 404
    assert api1(x3, "GET", "representation=GACCENTRY.$query", path="/api1/x3/erp/SEED/SORDER").status_code == 404
    assert api1(x3, "GET", "representation=GACCENTRY.$query", path="/api1/x3/erp/PROD/GACCENTRY").status_code == 404


def test_api1_query_filters_by_reference_and_pages(x3):
    for n in range(5):
        api1(x3, "POST", "representation=GACCENTRY.$create", entry_body(f"BC-{n}"))
    hit = api1(x3, "GET", "representation=GACCENTRY.$query&where=REF eq 'BC-3'").json()
    assert [r["REF"] for r in hit["$resources"]] == ["BC-3"] and "$next" not in hit["$links"]
    refs, url = [], f"{x3.url}{COLLECTION}?representation=GACCENTRY.$query"
    while url:
        page = requests.get(url, auth=("U", "P"), timeout=5).json()
        refs += [r["REF"] for r in page["$resources"]]
        url = page["$links"].get("$next", {}).get("$url")
    assert refs == [f"BC-{n}" for n in range(5)]
    bad = api1(x3, "GET", "representation=GACCENTRY.$query&where=REF like 'BC%'")
    assert bad.status_code == 400 and "Unsupported where" in diag(bad)


# -- OAuth2 gateway --------------------------------------------------------------------------------


def token(x3, **form):
    return requests.post(f"{x3.url}/v1/token", json={"client_id": "cid", "client_secret": "csecret", **form},
                         timeout=5)


def test_authorise_redirects_with_a_code_that_works_once(x3):
    response = requests.get(f"{x3.url}/v1/token/authorise", allow_redirects=False, timeout=5,
                            params={"client_id": "cid", "redirect_uri": "https://app/cb", "state": "xyz",
                                    "scope": "api.graphQL"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://app/cb?code=") and location.endswith("&state=xyz")
    code = location.split("code=")[1].split("&")[0]
    first = token(x3, grant_type="authorization_code", code=code)
    assert first.status_code == 200
    body = first.json()
    assert body["expires_in"] == 60 and body["refresh_token_expires_in"] == 30 * 86400
    again = token(x3, grant_type="authorization_code", code=code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_tokens_rotate_and_old_ones_are_refused(x3):
    code = requests.post(f"{x3.url}/__sandbox__/authorization_codes", timeout=5).json()["code"]
    first = token(x3, grant_type="authorization_code", code=code).json()
    second = token(x3, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    reused = token(x3, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and "used" in reused.json()["error_description"]
    assert token(x3, grant_type="refresh_token", refresh_token=second.json()["refresh_token"]).status_code == 200


def test_token_endpoint_checks_client_and_grant(x3):
    bad = requests.post(f"{x3.url}/token", data={"client_id": "cid", "client_secret": "x",
                                                 "grant_type": "refresh_token"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert token(x3, grant_type="client_credentials").json()["error"] == "unsupported_grant_type"


def test_access_tokens_expire_and_can_be_expired_on_demand(x3):
    code = requests.post(f"{x3.url}/__sandbox__/authorization_codes", timeout=5).json()["code"]
    access = token(x3, grant_type="authorization_code", code=code).json()["access_token"]
    query = "query { x3Finance { journalEntry { query { edges { node { reference } } } } } }"
    assert graphql(x3, access, query, {}).status_code == 200
    CLOCK[0] += 61
    expired = graphql(x3, access, query, {})
    assert expired.status_code == 401 and "expired" in expired.json()["errors"][0]["message"]
    CLOCK[0] -= 61
    assert graphql(x3, access, query, {}).status_code == 200
    faults = requests.post(f"{x3.url}/__sandbox__/faults", json={"expire_tokens_now": True}, timeout=5).json()
    assert faults["expire_tokens_now"] is False  # a one-shot action, not a state
    assert graphql(x3, access, query, {}).status_code == 401


# -- connected-application JWT ----------------------------------------------------------------------


@pytest.mark.parametrize("claims, secret, reason", [
    ({}, "wrong", "signature"),
    ({"iss": "someone"}, "csecret", "issuer"),
    ({"sub": "intruder"}, "csecret", "subject"),
    ({"aud": "other"}, "csecret", "audience"),
    ({"exp": 1_600_000_000}, "csecret", "expired"),
])
def test_jwt_is_verified(x3, claims, secret, reason):
    base = {"iss": "cid", "sub": "U", "aud": "x3", "iat": int(CLOCK[0]), "exp": int(CLOCK[0]) + 60}
    response = graphql(x3, jwt({**base, **claims}, secret), "query { x }", {})
    assert response.status_code == 401
    assert reason in response.json()["errors"][0]["message"]


# -- GraphQL -----------------------------------------------------------------------------------------


def gql_data(ref="BC-9", amount=120):
    return {"journalEntryType": "ODIV", "site": "FR011", "journal": "ODIV", "accountingDate": "2024-03-05",
            "description": "BigCommerce order 9", "transactionCurrency": "EUR", "reference": ref,
            "journalEntryLines": [
                {"lineNumber": 1, "account": "411000", "sign": 1, "transactionAmount": amount, "businessPartner": "WEB"},
                {"lineNumber": 2, "account": "707000", "sign": -1, "transactionAmount": 120}]}


def test_graphql_create_and_lookup(x3):
    created = graphql(x3, good_jwt(), "mutation m($data: JournalEntry_Input!) { x }", {"data": gql_data()})
    node = created.json()["data"]["x3Finance"]["journalEntry"]["create"]
    assert node["journalEntryNumber"] == "ODIV24000001" and node["reference"] == "BC-9"
    found = graphql(x3, good_jwt(), "query q { x }", {"filter": json.dumps({"reference": "BC-9"})}).json()
    edges = found["data"]["x3Finance"]["journalEntry"]["query"]["edges"]
    assert [e["node"]["journalEntryNumber"] for e in edges] == ["ODIV24000001"]
    none = graphql(x3, good_jwt(), "query q { x }", {"filter": json.dumps({"reference": "BC-0"})}).json()
    assert none["data"]["x3Finance"]["journalEntry"]["query"]["edges"] == []


def test_graphql_business_errors_and_endpoint_header(x3):
    unbalanced = graphql(x3, good_jwt(), "mutation m { x }", {"data": gql_data(amount=121)}).json()
    assert unbalanced["data"] is None
    assert unbalanced["errors"][0]["message"].startswith("Unbalanced entry")
    wrong = graphql(x3, good_jwt(), "query q { x }", {}, endpoint="PROD")
    assert wrong.status_code == 400


def test_shared_fault_knobs_still_work(x3):
    requests.post(f"{x3.url}/__sandbox__/faults", json={"error_rate": 1.0}, timeout=5)
    assert api1(x3, "GET", "representation=GACCENTRY.$query").status_code == 503
    requests.post(f"{x3.url}/__sandbox__/faults", json={"error_rate": 0.0, "latency_ms": 1}, timeout=5)
    assert api1(x3, "GET", "representation=GACCENTRY.$query").status_code == 200
    assert requests.get(f"{x3.url}/__sandbox__/faults", timeout=5).json() == {
        "latency_ms": 1, "error_rate": 0.0, "expire_tokens_now": False}


def test_command_line_server_starts_and_answers():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.x3", "--port", "0", "--user", "U", "--password", "P",
         "--accounts", "411000,706000"], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        line = process.stdout.readline()
        url = line.split(" on ")[1].split(" ")[0]
        response = requests.get(f"{url}{COLLECTION}?representation=GACCENTRY.$query", auth=("U", "P"), timeout=5)
        assert response.status_code == 200 and response.json()["$resources"] == []
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_collective_account_line_without_business_partner_is_refused(x3):
    from sandbox.x3.app import X3Error

    lines = [{"ACC": "411000", "SNS": 1, "AMTCUR": "10.00"}, {"ACC": "707000", "SNS": -1, "AMTCUR": "10.00"}]
    with pytest.raises(X3Error, match="411000 is a collective account: business partner mandatory"):
        x3.app.create_entry({"TYP": "ODIV", "FCY": "FR011", "ACCDAT": "2024-03-05", "JOU": "VEN", "CUR": "EUR"}, lines)


def test_a_foreign_entry_needs_its_rate_and_balanced_company_amounts(x3):
    from sandbox.x3.app import X3Error

    header = {"TYP": "ODIV", "FCY": "FR011", "ACCDAT": "2024-03-05", "JOU": "VEN", "CUR": "USD"}
    lines = [{"ACC": "411000", "SNS": 1, "AMTCUR": "10.00", "BPR": "WEB"}, {"ACC": "707000", "SNS": -1, "AMTCUR": "10.00"}]
    x3.app.company_currency = "EUR"
    try:
        with pytest.raises(X3Error, match="No exchange rate from USD to EUR"):
            x3.app.create_entry(dict(header), [dict(line) for line in lines])
        with pytest.raises(X3Error, match="Lines 1, 2: amount in company currency EUR"):
            x3.app.create_entry({**header, "RATMLT": "0.91"}, [dict(line) for line in lines])
        with pytest.raises(X3Error, match="Unbalanced entry in company currency EUR"):
            x3.app.create_entry({**header, "RATMLT": "0.91"}, [{**lines[0], "AMTLED": "9.10"},
                                                               {**lines[1], "AMTLED": "9.11"}])
        with pytest.raises(X3Error, match="the company currency is EUR, not GBP"):
            x3.app.create_entry({**header, "CURLED": "GBP", "RATMLT": "0.91"},
                                [{**line, "AMTLED": "9.10"} for line in lines])
        record = x3.app.create_entry({**header, "RATMLT": "0.91"}, [{**line, "AMTLED": "9.10"} for line in lines])
        assert (record["CURLED"], record["RATMLT"], record["RATDIV"]) == ("EUR", D("0.91"), D(1))
        # The company's own currency needs no rate.
        assert x3.app.create_entry({**header, "CUR": "EUR"}, [dict(line) for line in lines])["NUM"]
    finally:
        x3.app.company_currency = ""


def test_graphql_refuses_a_foreign_entry_without_its_rate(x3):
    x3.app.company_currency = "USD"
    try:
        refused = graphql(x3, good_jwt(), "mutation m { x }", {"data": gql_data()}).json()
        assert refused["data"] is None and "No exchange rate from EUR to USD" in refused["errors"][0]["message"]
        data = {**gql_data(), "ledgerCurrency": "USD", "rateMultiplier": "1.1", "rateDivisor": "1"}
        data["journalEntryLines"] = [{**line, "ledgerAmount": "132.00"} for line in data["journalEntryLines"]]
        created = graphql(x3, good_jwt(), "mutation m { x }", {"data": data}).json()
        assert created["data"]["x3Finance"]["journalEntry"]["create"]["journalEntryNumber"]
    finally:
        x3.app.company_currency = ""
