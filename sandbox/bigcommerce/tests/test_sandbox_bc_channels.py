"""Orders carry a sales channel: spread over several with `channels`, or chosen per order."""

from sandbox.bigcommerce.render import order_v2
from sandbox.bigcommerce.store import BigCommerceStore


def test_generated_orders_spread_over_the_configured_channels():
    store = BigCommerceStore(seed=5, orders=30, channels=3)
    assert {order.channel_id for order in store.orders.values()} == {1, 2, 3}
    assert {order_v2(order, "https://store.test")["channel_id"] for order in store.orders.values()} == {1, 2, 3}


def test_one_channel_by_default_and_a_shape_can_choose_it():
    store = BigCommerceStore(seed=5, orders=10)
    assert {order.channel_id for order in store.orders.values()} == {1}
    assert store.create_order({"channel_id": 7}).channel_id == 7
