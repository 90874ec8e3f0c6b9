"""Request and response bodies of the agent API (PROTOCOL.md). Every input is validated here;
anything malformed becomes a 400 with field errors."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connector.models import AgentJob

MAX_ITEMS_PER_CHANGES_CALL = 5000
FOUR_PLACES = Decimal("0.0001")
DB_MAX_ID = 2**63 - 1
# StockLevel quantities have 14 digits, 4 after the point: at most 10 before it. Sage 50 exports
# quantities with 5+ places, so any number of places is accepted and rounded to 4.
QUANTITY_PATTERN = r"^-?0*[0-9]{1,10}(\.[0-9]+)?$"


# DRF coerces ("10" is an integer, 5 is a string, "yes" is a boolean). These accept exactly the
# JSON types the OpenAPI schema states, so the schema is truthful in both directions.

class StrictCharField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)  # "  " must not turn into a blank the schema allows
        if not kwargs.get("allow_blank", False):
            kwargs.setdefault("min_length", 1)  # so the schema says "not blank" too (minLength: 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        integral = isinstance(data, int) or (isinstance(data, Decimal) and data.is_finite()
                                             and data == data.to_integral_value())
        if isinstance(data, bool) or not integral or abs(data) > 10**18:
            self.fail("invalid")
        return super().to_internal_value(int(data))


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


@extend_schema_field({"type": "string", "pattern": QUANTITY_PATTERN, "example": "12.5"})
class QuantityField(serializers.Field):
    """A decimal as a JSON string (PROTOCOL.md: money and quantities are strings), rounded to 4 places."""

    default_error_messages = {"invalid": "A decimal string such as \"12.5\" with at most 10 digits before the point."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(QUANTITY_PATTERN, data):
            self.fail("invalid")
        return Decimal(data).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)

    def to_representation(self, value):
        return str(value)


class ErrorSerializer(serializers.Serializer):
    detail = StrictCharField()


class DoctorResultSerializer(serializers.Serializer):
    """The summary of the agent's last `agent doctor` run (its self-check on the Sage PC)."""

    ok = StrictBooleanField()
    checked_at = serializers.DateTimeField()
    checks = StrictIntegerField(min_value=0, max_value=10_000)
    problems = serializers.ListField(child=StrictCharField(max_length=2000), max_length=50, allow_empty=True)


class HeartbeatRequestSerializer(serializers.Serializer):
    agent_version = StrictCharField(max_length=50)
    backend = StrictCharField(max_length=50)
    sage_edition = StrictCharField(max_length=50, required=False, allow_blank=True, default="")
    sage_version = StrictCharField(max_length=50, required=False, allow_blank=True, default="")
    company = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    doctor = DoctorResultSerializer(required=False)
    # `agent doctor` asks for the codes the integration's mappings name, to look them up in Sage.
    include_mapped_codes = StrictBooleanField(required=False, default=False)


class CursorsSerializer(serializers.Serializer):
    stock = StrictCharField(allow_null=True)
    price = StrictCharField(allow_null=True)
    customer = StrictCharField(allow_null=True)


class MappedCodesSerializer(serializers.Serializer):
    nominal = serializers.DictField(child=serializers.CharField(), help_text="nominal code -> what it is for")
    bank = serializers.ListField(child=serializers.CharField())
    tax = serializers.ListField(child=serializers.CharField())
    stock = serializers.ListField(child=serializers.CharField(), help_text="a sample of the mapped stock codes")


class AgentConfigSerializer(serializers.Serializer):
    lease_wait_seconds = serializers.IntegerField()
    max_jobs = serializers.IntegerField()
    poll_changes_seconds = serializers.IntegerField()
    stock_quantity = serializers.ChoiceField(choices=["available", "in_stock"])
    price_level = serializers.CharField(
        allow_blank=True, required=False,
        help_text="Sage 100: the price level the agent reads prices at for this integration; blank = the standard "
                  "price. It overrides the agent's own price_level backend option.")
    cursors = CursorsSerializer()
    mapped_codes = MappedCodesSerializer(required=False, help_text="only when the heartbeat asked for it")


class HeartbeatResponseSerializer(serializers.Serializer):
    agent_id = serializers.IntegerField()
    integration_id = serializers.IntegerField()
    server_time = serializers.DateTimeField()
    config = AgentConfigSerializer()


MAX_LEASE = 100


class LeaseRequestSerializer(serializers.Serializer):
    max = StrictIntegerField(min_value=1, max_value=MAX_LEASE, required=False, default=10)
    wait_seconds = StrictIntegerField(min_value=0, max_value=25, required=False, default=25)


class LeasedJobSerializer(serializers.ModelSerializer):
    payload = serializers.JSONField()

    class Meta:
        model = AgentJob
        fields = ["id", "op", "reference", "payload", "lease_token", "lease_expires_at", "attempts"]


class LeaseResponseSerializer(serializers.Serializer):
    jobs = LeasedJobSerializer(many=True)


class CompleteRequestSerializer(serializers.Serializer):
    lease_token = StrictCharField(max_length=200)
    result = serializers.DictField(child=serializers.JSONField(allow_null=True), required=False, default=dict)


MAX_BATCH_COMPLETE = 100


class BatchCompleteItemSerializer(CompleteRequestSerializer):
    id = StrictIntegerField(min_value=1, max_value=DB_MAX_ID)


class BatchCompleteRequestSerializer(serializers.Serializer):
    jobs = BatchCompleteItemSerializer(many=True, allow_empty=False, max_length=MAX_BATCH_COMPLETE)


class BatchCompleteAnswerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.IntegerField(help_text="What POST /jobs/{id}/complete would have answered.")
    state = serializers.ChoiceField(choices=AgentJob.State.choices, allow_null=True)
    detail = serializers.CharField(allow_blank=True)


class BatchCompleteResponseSerializer(serializers.Serializer):
    jobs = BatchCompleteAnswerSerializer(many=True)


class FailRequestSerializer(serializers.Serializer):
    lease_token = StrictCharField(max_length=200)
    code = StrictCharField(max_length=40)
    message = StrictCharField(max_length=10_000, required=False, allow_blank=True, default="")
    retryable = StrictBooleanField(required=False, default=False)


class JobStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=AgentJob.State.choices)


class StockItemSerializer(serializers.Serializer):
    stock_code = StrictCharField(max_length=255)
    in_stock = QuantityField()
    allocated = QuantityField(required=False, default=Decimal("0.0000"))
    modified_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PriceItemSerializer(serializers.Serializer):
    stock_code = StrictCharField(max_length=255)
    price = QuantityField()
    modified_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class CustomerItemSerializer(serializers.Serializer):
    account_ref = StrictCharField(max_length=100)
    email = StrictCharField(max_length=254, required=False, allow_blank=True, default="")
    name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    modified_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


ITEM_SERIALIZERS = {"stock": StockItemSerializer, "price": PriceItemSerializer, "customer": CustomerItemSerializer}


class ChangesRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(ITEM_SERIALIZERS))
    items = serializers.ListField(child=serializers.DictField(), max_length=MAX_ITEMS_PER_CHANGES_CALL)
    cursor = StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True,
                                   default=None)

    def validate(self, attrs):
        items = ITEM_SERIALIZERS[attrs["kind"]](data=attrs["items"], many=True)
        if not items.is_valid():
            raise serializers.ValidationError({"items": items.errors})
        attrs["items"] = items.validated_data
        return attrs


def _changes_body(kind: str, item_serializer):
    # One request schema per kind, so the OpenAPI document says exactly which items each kind takes.
    return type(f"{kind.title()}ChangesRequest", (serializers.Serializer,), {
        "kind": serializers.ChoiceField(choices=[kind]),
        "items": item_serializer(many=True, max_length=MAX_ITEMS_PER_CHANGES_CALL),
        "cursor": StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True),
        "Meta": type("Meta", (), {"ref_name": f"{kind.title()}ChangesRequest"}),
    })


CHANGES_BODIES = {kind: _changes_body(kind, cls) for kind, cls in ITEM_SERIALIZERS.items()}


class ChangesResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    cursor = StrictCharField(allow_null=True)
