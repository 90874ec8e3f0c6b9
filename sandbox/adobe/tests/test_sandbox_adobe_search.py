"""searchCriteria semantics and fields= trimming, against the seeded store."""

from __future__ import annotations

import pytest

F = "searchCriteria[filter_groups][{g}][filters][{f}][{part}]"


def flt(g: int, f: int, field: str, value, condition: str | None = None) -> dict:
    out = {F.format(g=g, f=f, part="field"): field, F.format(g=g, f=f, part="value"): value}
    if condition:
        out[F.format(g=g, f=f, part="condition_type")] = condition
    return out


def ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["entity_id"] for row in response.json()["items"]]


@pytest.fixture(scope="module")
def store():
    from sandbox.adobe.testkit import Adobe

    adobe = Adobe(orders=80)
    yield adobe
    adobe.close()


def orders(store):
    return sorted(store.app.store.orders.values(), key=lambda o: o.entity_id)


def test_or_within_a_group_and_across_groups(store):
    all_orders = orders(store)
    both = {**flt(0, 0, "store_id", 2), **flt(0, 1, "store_id", 3), "searchCriteria[pageSize]": 300}
    assert ids(store.get("orders", both)) == [o.entity_id for o in all_orders if o.store.id in (2, 3)]
    anded = {**flt(0, 0, "store_id", 2), **flt(0, 1, "store_id", 3), **flt(1, 0, "customer_is_guest", 1),
             "searchCriteria[pageSize]": 300}
    assert ids(store.get("orders", anded)) == [o.entity_id for o in all_orders if o.store.id in (2, 3) and o.is_guest]


def test_condition_types(store):
    all_orders = orders(store)
    pick = [o.entity_id for o in all_orders[:3]]
    q = {**flt(0, 0, "entity_id", ",".join(map(str, pick)), "in"), "searchCriteria[pageSize]": 300}
    assert ids(store.get("orders", q)) == pick
    q = {**flt(0, 0, "entity_id", ",".join(map(str, pick)), "nin"), "searchCriteria[pageSize]": 300}
    assert len(ids(store.get("orders", q))) == len(all_orders) - 3
    q = {**flt(0, 0, "customer_email", "%EXAMPLE.NET", "like"), "searchCriteria[pageSize]": 300}
    assert ids(store.get("orders", q)) == [o.entity_id for o in all_orders if o.customer_email.endswith(".net")]
    q = {**flt(0, 0, "grand_total", "100", "gteq"), **flt(1, 0, "grand_total", "200", "lt"),
         "searchCriteria[pageSize]": 300}
    assert ids(store.get("orders", q)) == [o.entity_id for o in all_orders
                                           if 100 <= o.totals.grand_total.order < 200]
    q = {**flt(0, 0, "customer_id", "", "null"), "searchCriteria[pageSize]": 300}
    assert ids(store.get("orders", q)) == [o.entity_id for o in all_orders if o.customer_id is None]
    q = {**flt(0, 0, "state", "complete", "neq"), "searchCriteria[pageSize]": 300}
    assert ids(store.get("orders", q)) == [o.entity_id for o in all_orders if o.state != "complete"]
    default_eq = {**flt(0, 0, "state", "COMPLETE"), "searchCriteria[pageSize]": 300}  # eq, case-insensitive
    assert ids(store.get("orders", default_eq)) == [o.entity_id for o in all_orders if o.state == "complete"]


def test_from_and_to_in_one_group_are_an_or(store):
    """A classic trap: a date range needs two groups; in one group it matches everything."""
    one_group = {**flt(0, 0, "created_at", "2026-02-01 00:00:00", "from"),
                 **flt(0, 1, "created_at", "2026-02-10 00:00:00", "to"), "searchCriteria[pageSize]": 300}
    two_groups = {**flt(0, 0, "created_at", "2026-02-01 00:00:00", "from"),
                  **flt(1, 0, "created_at", "2026-02-10 00:00:00", "to"), "searchCriteria[pageSize]": 300}
    assert len(ids(store.get("orders", one_group))) == 80
    window = [o.entity_id for o in orders(store) if "2026-02-01" <= o.created_at.strftime("%Y-%m-%d %H:%M:%S")
              <= "2026-02-10 00:00:00"]
    assert ids(store.get("orders", two_groups)) == window


def test_camel_and_snake_case_are_the_same(store):
    snake = {**flt(0, 0, "grand_total", "50", "gt"), "searchCriteria[page_size]": 7,
             "searchCriteria[current_page]": 2, "searchCriteria[sort_orders][0][field]": "grand_total",
             "searchCriteria[sort_orders][0][direction]": "ASC"}
    camel = {"searchCriteria[filterGroups][0][filters][0][field]": "grand_total",
             "searchCriteria[filterGroups][0][filters][0][value]": "50",
             "searchCriteria[filterGroups][0][filters][0][conditionType]": "gt", "searchCriteria[pageSize]": 7,
             "searchCriteria[currentPage]": 2, "searchCriteria[sortOrders][0][field]": "grand_total",
             "searchCriteria[sortOrders][0][direction]": "ASC"}
    assert store.get("orders", snake).json() == store.get("orders", camel).json()


def test_sort_without_direction_is_desc_and_no_sort_is_primary_key(store):
    desc = ids(store.get("orders", {"searchCriteria[sortOrders][0][field]": "entity_id", "searchCriteria[pageSize]": 5}))
    assert desc == sorted(desc, reverse=True) and desc[0] == orders(store)[-1].entity_id
    plain = ids(store.get("orders", {"searchCriteria[pageSize]": 5}))
    assert plain == [o.entity_id for o in orders(store)[:5]]
    r = store.get("orders", {"searchCriteria[sortOrders][0][field]": "entity_id",
                             "searchCriteria[sortOrders][0][direction]": "sideways"})
    assert r.status_code == 400


def test_page_size_cap_and_defaults(make_adobe, store):
    r = store.get("orders", {"searchCriteria[pageSize]": 301})
    assert r.status_code == 400
    assert r.json() == {"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 300}}
    limited = store.get("orders", {"searchCriteria": ""})
    assert len(limited.json()["items"]) == 20 and limited.json()["total_count"] == 80
    assert "page_size" not in limited.json()["search_criteria"]  # not echoed when not sent (2.4.4+)
    open_store = make_adobe(orders=30, input_limits=False)
    everything = open_store.get("orders", {"searchCriteria": ""})
    assert len(everything.json()["items"]) == 30
    assert open_store.get("orders", {"searchCriteria[pageSize]": 1000}).status_code == 200


def test_past_the_last_page(make_adobe, store):
    r = store.get("orders", {"searchCriteria[pageSize]": 50, "searchCriteria[currentPage]": 3})
    assert r.json()["items"] == [] and r.json()["total_count"] == 80  # 2.4.x REST
    old = make_adobe(orders=30, past_last_page="last")  # 2.3.x clamps to the last page
    last = old.get("orders", {"searchCriteria[pageSize]": 20, "searchCriteria[currentPage]": 2})
    again = old.get("orders", {"searchCriteria[pageSize]": 20, "searchCriteria[currentPage]": 9})
    assert ids(again) == ids(last) and len(ids(last)) == 10


def test_errors_a_real_store_gives(store):
    missing = store.get("orders")
    assert missing.status_code == 400
    assert missing.json() == {"message": '"%fieldName" is required. Enter and try again.',
                              "parameters": {"fieldName": "searchCriteria"}}
    unknown_column = store.get("orders", {**flt(0, 0, "no_such_column", "1"), "searchCriteria[pageSize]": 5})
    assert unknown_column.status_code == 500
    assert unknown_column.json()["message"].startswith("Internal Error. Details are available in Magento log file.")


def test_fields_trimming(store):
    r = store.get("orders", {"searchCriteria[pageSize]": 3, "fields": "items[entity_id,increment_id,updated_at],"
                                                                        "total_count"})
    body = r.json()
    assert set(body) == {"items", "total_count"}
    assert all(set(row) == {"entity_id", "increment_id", "updated_at"} for row in body["items"])
    nested = store.get("orders", {"searchCriteria[pageSize]": 2, "fields": "items[entity_id,billing_address[city]]"})
    assert all(set(row["billing_address"]) == {"city"} for row in nested.json()["items"])
    bare = store.get("orders", {"searchCriteria[pageSize]": 2, "fields": "billing_address"})
    assert bare.json() == {}  # magento2#23609: needs the items[...] wrapper
    one = store.get(f"orders/{orders(store)[0].entity_id}", {"fields": "entity_id,grand_total"})
    assert set(one.json()) == {"entity_id", "grand_total"}


def test_invoices_and_credit_memos_search_by_order_and_updated_at(store):
    memos = sorted(store.app.store.creditmemos.values(), key=lambda c: c.entity_id)
    offline = [c.entity_id for c in memos if c.invoice_id is None]
    q = {**flt(0, 0, "invoice_id", "", "null"), "searchCriteria[pageSize]": 300}
    assert ids(store.get("creditmemos", q)) == offline and offline
    invoices = sorted(store.app.store.invoices.values(), key=lambda i: i.entity_id)
    order_id = next(i.order_id for i in invoices if len(store.app.store.orders[i.order_id].invoices) > 1)
    q = {**flt(0, 0, "order_id", order_id), "searchCriteria[pageSize]": 300}
    assert len(ids(store.get("invoices", q))) == len(store.app.store.orders[order_id].invoices)


def test_column_lists_match_the_schema():
    from sandbox.adobe.columns import COLUMNS
    from sandbox.specs import adobe_specs

    schemas = adobe_specs("paas").docs["admin-schema-2.4.9.yaml"]["components"]["schemas"]
    for name, columns in COLUMNS.items():
        scalar = {n for n, s in schemas[name]["properties"].items() if s.get("type") not in ("array", "object", None)}
        assert columns == scalar, name
