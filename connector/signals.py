"""Signal receivers of the sync engine (beyond mappings' wake-up, which lives in mappings/signals.py
next to the models it watches)."""

from django.db.models.signals import pre_save
from django.dispatch import receiver

from accounts.models import Integration


@receiver(pre_save, sender=Integration, dispatch_uid="connector.poll_interval_shortened")
def poll_interval_shortened(sender, instance: Integration, raw=False, **kwargs) -> None:
    """A poll interval shortened in the admin applies from now, not after the old, longer wait."""
    if raw or instance.pk is None or instance.next_poll_at is None:
        return
    from connector.services.scheduling import clamp_next_poll

    previous = Integration.objects.filter(pk=instance.pk).values_list("poll_interval_seconds", flat=True).first()
    clamp_next_poll(instance, previous)
