"""BigCommerce's order statuses (`GET /v2/order_statuses`): fixed ids, the same on every store.

Plain data with no Django import, so the pure Sage mappers and the sandbox store share the one
table. Stores may rename a status in their control panel (`custom_label`); the id never changes,
which is why everything here keys on ids.
"""

ORDER_STATUS_NAMES = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}
