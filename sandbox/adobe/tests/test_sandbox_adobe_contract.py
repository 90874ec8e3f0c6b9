"""Every response the sandbox serves — a sweep over all emulated endpoints, both URL shapes, and
the error answers — validates against the shipped Adobe Commerce schemas (admin schema 2.4.9 for
PaaS, the ACCS schema for the Cloud Service), up to the deviations listed in sandbox/specs.py."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from sandbox.specs import adobe_query_name, adobe_specs

F = "searchCriteria[filter_groups][0][filters][0]"


def _sweep(adobe) -> list[tuple[str, str, dict | None, object]]:
    store = adobe.app.store
    order = next(o for o in store.orders.values() if o.invoices and o.creditmemos)
    memo = order.creditmemos[0]
    # A full stock item, as a client that read it first sends it back (the schema requires every field).
    stock_item = {k: v for k, v in adobe.get("stockItems/24-MB02").json().items() if v is not None}
    stock_item.update({"qty": 4, "is_in_stock": True, "low_stock_date": ""})
    calls = [
        ("GET", "orders", {"searchCriteria[pageSize]": 300, "searchCriteria[sortOrders][0][field]": "entity_id",
                           "searchCriteria[sortOrders][0][direction]": "ASC"}, None),
        ("GET", "orders", {f"{F}[field]": "updated_at", f"{F}[value]": "2026-01-01 00:00:00",
                           f"{F}[condition_type]": "gteq", "searchCriteria[pageSize]": 50,
                           "searchCriteria[currentPage]": 99}, None),
        ("GET", "orders", {"searchCriteria[pageSize]": 20, "fields": "items[entity_id,updated_at],total_count"},
         None),
        ("GET", "invoices", {"searchCriteria[pageSize]": 300}, None),
        ("GET", "creditmemos", {"searchCriteria[pageSize]": 300}, None),
        ("GET", f"orders/{order.entity_id}/comments", None, None),
        ("GET", f"invoices/{order.invoices[0].entity_id}", None, None),
        ("GET", f"creditmemo/{memo.entity_id}", None, None),
        ("GET", "customers/search", {"searchCriteria[pageSize]": 10}, None),
        ("GET", "customers/1", None, None),
        ("GET", "inventory/source-items", {"searchCriteria[pageSize]": 300}, None),
        ("GET", "products", {"searchCriteria[pageSize]": 300}, None),
        ("GET", "products", {f"{F}[field]": "sku", f"{F}[value]": "24-MB01,24-MB02,NOT-A-SKU",
                             f"{F}[condition_type]": "in", "searchCriteria[pageSize]": 300,
                             "fields": "items[sku],total_count"}, None),
        ("GET", "stockItems/24-MB01", None, None),
        ("GET", "store/storeViews", None, None),
        ("GET", "store/websites", None, None),
        ("GET", "store/storeGroups", None, None),
        ("GET", "store/storeConfigs", None, None),
        ("POST", f"orders/{order.entity_id}/comments", None, {"statusHistory": {
            "comment": "Sage 50 invoice 10001", "is_customer_notified": 0, "is_visible_on_front": 0,
            "parent_id": order.entity_id}}),
        ("POST", "inventory/source-items", None, {"sourceItems": [
            {"sku": "24-MB01", "source_code": "default", "quantity": 3, "status": 1}]}),
        ("PUT", "products/24-MB02/stockItems/2", None, {"stockItem": stock_item}),
        # error answers are part of the contract too
        ("GET", "orders", {"searchCriteria[pageSize]": 301}, None),
        ("GET", "orders", None, None),
        ("GET", "orders/999999", None, None),
    ]
    calls += [("GET", f"orders/{o.entity_id}", None, None) for o in store.orders.values()]
    calls += [("GET", f"invoices/{i}", None, None) for i in store.invoices]
    calls += [("GET", f"creditmemo/{c}", None, None) for c in store.creditmemos]
    return calls


def test_paas_and_accs_sweeps_have_zero_violations(make_adobe):
    adobe = make_adobe(orders=120, validate=True)
    calls = _sweep(adobe)
    placed = adobe.control("POST", "/orders", {"store": "french", "payment_method": "braintree",
                                               "lines": [{"sku": "24-MB04", "qty": 2}]}).json()
    calls.append(("POST", f"order/{placed['entity_id']}/invoice", None, {"capture": True, "items": [
        {"order_item_id": placed["items"][0]["item_id"], "qty": 1}]}))
    calls.append(("POST", f"order/{placed['entity_id']}/refund", None, {"items": [
        {"order_item_id": placed["items"][0]["item_id"], "qty": 1}], "arguments": {"shipping_amount": 0}}))
    statuses = {}
    for method, path, params, body in calls:
        r = adobe.call(method, path, params, body=body)
        statuses[(method, path)] = r.status_code
        assert r.status_code < 500, (path, r.text[:300])
    token = adobe.ims_token()
    for method, path, params, body in calls[:16]:
        r = adobe.accs(method, path, params, body=body, token=token, store="french")
        assert r.status_code == 200, (path, r.text[:300])
    # Auth failures validate as error-response bodies too.
    requests.get(adobe.url("orders", {"searchCriteria[pageSize]": 5}), timeout=60)
    adobe.get("orders", {"searchCriteria[pageSize]": 5}, signature_method="HMAC-SHA1")
    assert statuses[("GET", "orders")] in (200, 400)
    assert adobe.control("GET", "/violations").json() == {"count": 0, "violations": []}
    checked = sum(adobe.app.counters.values())
    assert checked >= len(calls) + 16


def test_the_validator_catches_a_wrong_response():
    specs = adobe_specs("paas")
    assert specs.validate_response("GET", "/V1/orders/5", 200, {"entity_id": 5}) != []
    bad_type = specs.validate_response("GET", "/V1/invoices", 200, {"items": [], "search_criteria": {
        "filter_groups": []}, "total_count": "7"})
    assert [v.where for v in bad_type] == ["body/total_count"]
    assert specs.validate_request("GET", "/V1/orders", {"searchCriteria[sort_orders][3][field]": ["x"],
                                                        "fields": ["items[entity_id]"]}) == []
    assert specs.validate_request("GET", "/V1/orders", {"nonsense": ["1"]}) != []
    assert adobe_query_name("searchCriteria[filter_groups][2][filters][5][condition_type]") == \
        "searchCriteria[filterGroups][0][filters][0][conditionType]"
    accs = adobe_specs("accs")
    assert accs.find_operation("GET", "/V1/creditmemos") is not None


def test_faults_429_with_retry_after_5xx_and_latency(adobe):
    adobe.control("POST", "/faults", {"throttle_rate": 1.0, "retry_after": 7})
    r = adobe.get("orders", {"searchCriteria[pageSize]": 1})
    assert (r.status_code, r.headers["Retry-After"]) == (429, "7")
    adobe.control("POST", "/faults", {"throttle_rate": 0.0, "error_rate": 1.0})
    assert adobe.get("orders", {"searchCriteria[pageSize]": 1}).status_code == 503
    adobe.control("POST", "/faults", {"error_rate": 0.0, "latency_ms": 300})
    started = time.monotonic()
    assert adobe.get("orders", {"searchCriteria[pageSize]": 1}).status_code == 200
    assert time.monotonic() - started >= 0.3
    adobe.control("POST", "/faults", {"latency_ms": 0, "throttle_storm": 30})
    assert adobe.accs("GET", "orders", {"searchCriteria[pageSize]": 1}).status_code == 429
    assert adobe.control("GET", "/counters").json()["endpoints"]["429"] >= 2


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "sandbox.adobe", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    assert "--orders" in out.stdout and "--seed" in out.stdout and "--bearer" in out.stdout


def test_cli_serves_a_signed_call_as_a_real_process():
    """``python -m sandbox.adobe`` as `make run` would start it: prints its credentials, answers a
    call signed with them."""
    import re

    from sandbox.adobe.testkit import oauth_header

    proc = subprocess.Popen([sys.executable, "-m", "sandbox.adobe", "--port", "0", "--orders", "12", "--seed", "4"],
                            stdout=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        creds_line = proc.stdout.readline()
        root = re.search(r"(http://[\d.]+:\d+)/rest/default/V1/", banner).group(1)
        creds = dict(part.split("=", 1) for part in creds_line.split(": ", 1)[1].split())
        url = f"{root}/rest/default/V1/orders?searchCriteria%5BpageSize%5D=5"
        header = oauth_header("GET", url, creds["consumer_key"], creds["consumer_secret"], creds["access_token"],
                              creds["access_token_secret"])
        r = requests.get(url, headers={"Authorization": header}, timeout=60)
        assert r.status_code == 200 and r.json()["total_count"] == 12
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
