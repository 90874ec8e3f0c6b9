"""The "backfill → Sage 100" bench row: Sage 100 calls counted per order and held to their targets."""

from __future__ import annotations

from bench import sage100


def test_calls_are_counted_between_two_readings(tmp_path):
    log = sage100.call_log(tmp_path)
    log.write_text("find_sales_order\nfind_customer_by_email\n")
    before = sage100.sage_calls(tmp_path)
    log.write_text(log.read_text() + "find_sales_order\nmissing_item_codes\nfind_customer_by_email\n"
                   "create_customer\ncreate_sales_order\nfind_sales_order\nmissing_item_codes\nfind_customer\n"
                   "create_sales_order\n")
    result = sage100.measured(before, sage100.sage_calls(tmp_path), postable=2)
    assert result["sage_calls"] == {"create_customer": 1, "create_sales_order": 2, "find_customer": 1,
                                    "find_customer_by_email": 1, "find_sales_order": 2, "missing_item_codes": 2}
    assert (result["sage_calls_total"], result["sage_calls_per_order"]) == (9, 4.5)


def _result(**overrides):
    return {"orders": 500, "postable_orders": 300, "orders_per_s": 25.0, "sage_calls_per_order": 4.6,
            "agent_round_trips_per_order": 0.1, "settled": True, **overrides}


def test_the_row_is_met_only_when_fast_frugal_and_settled():
    [(name, _, measured, target, mark)] = sage100.rows(_result())
    assert name == "backfill → Sage 100" and mark == "ok"
    assert "4.6 Sage 100 calls/order" in measured and "≤ 5 Sage 100 calls/order" in target
    assert sage100.rows(_result(sage_calls_per_order=5.2))[0][-1] == "MISSED"
    assert sage100.rows(_result(orders_per_s=sage100.TARGET_ORDERS_PER_S - 1))[0][-1] == "MISSED"
    assert sage100.rows(_result(settled=False))[0][-1] == "MISSED"
    assert sage100.rows({"error": "RuntimeError: boom"})[0][2].startswith("RuntimeError")
