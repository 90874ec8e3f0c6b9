"""A saved mapping wakes the records that were waiting for one.

Records parked as 'waiting for a mapping' are simply re-run for the integration: mapping is a
pure function, so a record still missing something parks again with an updated message.
The wake-up is enqueued on commit, so the worker sees the new mapping.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from mappings.models import AccountMapping, ItemMapping, PaymentMethodMapping, TaxMapping, WebSalesAccount


def resume_waiting_records_for(integration_id: int) -> None:
    from connector.tasks import resume_waiting_records

    transaction.on_commit(lambda: resume_waiting_records.delay(integration_id))


@receiver(post_save, sender=ItemMapping)
@receiver(post_save, sender=TaxMapping)
@receiver(post_save, sender=AccountMapping)
@receiver(post_save, sender=PaymentMethodMapping)
@receiver(post_save, sender=WebSalesAccount)
def mapping_saved(sender, instance, **kwargs):
    resume_waiting_records_for(instance.integration_id)
