"""Authentication and ACL: OAuth 1.0a as Magento 2.4.8 verifies it, opt-in bearer, IMS on ACCS."""

from __future__ import annotations

import time

import requests

from sandbox.adobe.testkit import oauth_header

PAGE = {"searchCriteria[pageSize]": 5}


def _signed(adobe, url, **kw):
    i = adobe.integration
    return oauth_header("GET", url, i.consumer_key, i.consumer_secret, i.access_token, i.access_token_secret, **kw)


def test_signed_call_on_every_url_shape(adobe):
    for store in ("default", "french", "uk", "all", None):
        r = adobe.get("orders", PAGE, store=store)
        assert r.status_code == 200, (store, r.text)
        assert r.json()["total_count"] == 60


def test_query_string_is_part_of_the_signature(adobe):
    signed_for = adobe.url("orders", {"searchCriteria[pageSize]": 5})
    sent_to = adobe.url("orders", {"searchCriteria[pageSize]": 6})
    r = requests.get(sent_to, headers={"Authorization": _signed(adobe, signed_for)}, timeout=60)
    assert r.status_code == 401
    assert r.json() == {"message": "The signature is invalid. Verify and try again."}


def test_wrong_secret_is_an_invalid_signature(adobe):
    url = adobe.url("orders", PAGE)
    i = adobe.integration
    header = oauth_header("GET", url, i.consumer_key, "x" * 32, i.access_token, i.access_token_secret)
    r = requests.get(url, headers={"Authorization": header}, timeout=60)
    assert (r.status_code, r.json()["message"]) == (401, "The signature is invalid. Verify and try again.")


def test_nonce_reuse_is_refused(adobe):
    first = adobe.get("orders", PAGE, nonce="same-nonce-twice")
    again = adobe.get("orders", PAGE, nonce="same-nonce-twice")
    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json() == {"message": "The nonce is already being used by the consumer with ID %1",
                            "parameters": ["1"]}


def test_clock_ahead_is_refused_but_behind_is_not(adobe):
    ahead = adobe.get("orders", PAGE, timestamp=int(time.time()) + 601 + 5)
    assert ahead.status_code == 400
    assert ahead.json() == {"message": "Incorrect timestamp value in the oauth_timestamp parameter"}
    # Magento checks only the upper bound (Nonce\Generator: timestamp > time() + 600).
    behind = adobe.get("orders", PAGE, timestamp=int(time.time()) - 3 * 3600)
    assert behind.status_code == 200


def test_hmac_sha1_was_dropped_in_2_4_4(adobe):
    r = adobe.get("orders", PAGE, signature_method="HMAC-SHA1")
    assert r.status_code == 400
    assert r.json() == {"message": "Signature method %1 is not supported", "parameters": ["HMAC-SHA1"]}


def test_missing_protocol_parameters_are_listed(adobe):
    url = adobe.url("orders", PAGE)
    r = requests.get(url, headers={"Authorization": 'OAuth oauth_consumer_key="abc"'}, timeout=60)
    assert r.status_code == 400
    body = r.json()
    assert body["message"] == "One or more input exceptions have occurred."
    missing = {e["parameters"]["fieldName"] for e in body["errors"]}
    assert missing == {"oauth_signature", "oauth_signature_method", "oauth_nonce", "oauth_timestamp", "oauth_token"}


def test_unknown_consumer_and_bad_lengths(adobe):
    url = adobe.url("orders", PAGE)
    i = adobe.integration
    short = oauth_header("GET", url, "short", i.consumer_secret, i.access_token, i.access_token_secret)
    assert requests.get(url, headers={"Authorization": short}, timeout=60).json()["message"] == \
        "Consumer key is not the correct length"
    unknown = oauth_header("GET", url, "k" * 32, i.consumer_secret, i.access_token, i.access_token_secret)
    assert requests.get(url, headers={"Authorization": unknown}, timeout=60).json()["message"] == \
        "A consumer having the specified key does not exist"
    token = oauth_header("GET", url, i.consumer_key, i.consumer_secret, "t" * 31, i.access_token_secret)
    r = requests.get(url, headers={"Authorization": token}, timeout=60)
    assert (r.status_code, r.json()["message"]) == (400, "The token length is invalid. Check the length and try again.")


def test_plus_for_space_in_a_search_value_breaks_the_signature(adobe):
    """Magento rawurldecodes bracketed query parameters, so '+' stays '+' in its base string while
    RFC 5849 signers read it as a space. %20 works."""
    i = adobe.integration
    base = adobe.url("orders")
    key = "searchCriteria[filter_groups][0][filters][0]"
    with_plus = (f"{base}?{key}[field]=updated_at&{key}[value]=2026-01-01+00:00:00&{key}[condition_type]=gteq"
                 "&searchCriteria[pageSize]=10").replace("[", "%5B").replace("]", "%5D")
    header = oauth_header("GET", with_plus, i.consumer_key, i.consumer_secret, i.access_token, i.access_token_secret)
    r = requests.get(with_plus, headers={"Authorization": header}, timeout=60)
    assert (r.status_code, r.json()["message"]) == (401, "The signature is invalid. Verify and try again.")
    ok = adobe.get("orders", {f"{key}[field]": "updated_at", f"{key}[value]": "2026-01-01 00:00:00",
                              f"{key}[condition_type]": "gteq", "searchCriteria[pageSize]": 10})
    assert ok.status_code == 200


def test_bearer_integration_token_needs_the_store_setting(adobe):
    url = adobe.url("invoices", PAGE)
    bearer = {"Authorization": f"Bearer {adobe.integration.access_token}"}
    refused = requests.get(url, headers=bearer, timeout=60)
    assert refused.status_code == 401
    assert refused.json() == {"message": "The consumer isn't authorized to access %resources.",
                              "parameters": {"resources": "Magento_Sales::sales_invoice"}}
    assert adobe.control("POST", "/settings", {"bearer_enabled": True}).status_code == 200
    assert requests.get(url, headers=bearer, timeout=60).status_code == 200
    wrong = requests.get(url, headers={"Authorization": "Bearer " + "z" * 32}, timeout=60)
    assert wrong.status_code == 401


def test_acl_per_integration_resource(adobe):
    made = adobe.control("POST", "/integrations", {"name": "orders-only",
                                                   "resources": ["Magento_Sales::actions_view"]}).json()
    limited = next(i for i in adobe.app.integrations if i.consumer_id == made["consumer_id"])
    assert adobe.get("orders", PAGE, integration=limited).status_code == 200
    r = adobe.get("creditmemos", PAGE, integration=limited)
    assert r.status_code == 401
    assert r.json()["parameters"] == {"resources": "Magento_Sales::sales_creditmemo"}
    adobe.control("POST", f"/integrations/{limited.consumer_id}", {"revoked": True})
    revoked = adobe.get("orders", PAGE, integration=limited)
    assert (revoked.status_code, revoked.json()["message"]) == (401, "Access token has been revoked")


def test_route_is_matched_before_auth(adobe):
    assert requests.get(f"{adobe.root}/rest/nosuchstore/V1/orders", timeout=60).json() == \
        {"message": "Request does not match any route."}
    assert requests.get(f"{adobe.root}/rest/default/V1/nothing", timeout=60).status_code == 404
    anonymous = requests.get(adobe.url("orders", PAGE), timeout=60)
    assert anonymous.status_code == 401
    assert anonymous.json()["parameters"] == {"resources": "Magento_Sales::actions_view"}


def test_accs_ims_token_and_gateway_headers(adobe):
    token = adobe.ims_token()
    assert adobe.accs("GET", "orders", PAGE, token=token).status_code == 200
    french = adobe.accs("GET", "store/storeConfigs", token=token, store="french")
    assert french.status_code == 200
    assert adobe.accs("GET", "orders", PAGE, token=token, headers={"x-api-key": ""}).json()["message"] == \
        "Api Key is required"
    assert adobe.accs("GET", "orders", PAGE, token=token, headers={"x-api-key": "other"}).status_code == 403
    assert adobe.accs("GET", "orders", PAGE, token=token, headers={"x-gw-ims-org-id": "X@AdobeOrg"}).status_code \
        == 403
    assert adobe.accs("GET", "orders", PAGE, token="not-a-token").status_code == 401
    assert adobe.accs("GET", "orders", PAGE, token=token, store="nosuch").status_code == 404
    no_scope = adobe.ims_token(scope="openid,AdobeID")
    assert adobe.accs("GET", "orders", PAGE, token=no_scope).status_code == 403
    # OAuth 1.0a does not exist on ACCS.
    url = f"{adobe.root}/{adobe.app.tenant}/V1/orders?searchCriteria%5BpageSize%5D=5"
    assert requests.get(url, headers={"Authorization": _signed(adobe, url)}, timeout=60).status_code == 401


def test_ims_tokens_expire(make_adobe):
    adobe = make_adobe(orders=5, faults={"ims_token_ttl": 1})
    r = requests.post(f"{adobe.root}/ims/token/v3", data={"grant_type": "client_credentials",
                                                          "client_id": adobe.app.ims.client_id,
                                                          "client_secret": adobe.app.ims.client_secret,
                                                          "scope": "commerce.accs"}, timeout=60)
    assert r.json()["expires_in"] == 1
    token = r.json()["access_token"]
    assert adobe.accs("GET", "orders", PAGE, token=token).status_code == 200
    adobe.app.ims.clock = lambda: time.time() + 2
    assert adobe.accs("GET", "orders", PAGE, token=token).json() == {"error_code": "401013",
                                                                      "message": "Oauth token is not valid"}


def test_ims_refuses_bad_client_credentials(adobe):
    url = f"{adobe.root}/ims/token/v3"
    wrong = requests.post(url, data={"grant_type": "client_credentials", "client_id": adobe.app.ims.client_id,
                                     "client_secret": "nope", "scope": "commerce.accs"}, timeout=60)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    grant = requests.post(url, data={"grant_type": "password"}, timeout=60)
    assert grant.json()["error"] == "unsupported_grant_type"
