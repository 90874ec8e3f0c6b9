"""Record links: which Sage record a store record became."""

from __future__ import annotations

from mappings.models import RecordLink


def save_links(integration_id: int, *links: tuple[str, str, str, str]) -> None:
    """Remember (kind, external id, Sage id, reference) for each link, once. The unique constraint
    (integration, kind, external id) settles repeats: a replayed job, or the agent finding the
    document by its reference after a crash, inserts nothing. One INSERT … ON CONFLICT DO NOTHING
    for all of them: no savepoint round trips on the job-completion path, which the agent waits on."""
    RecordLink.objects.bulk_create(
        [RecordLink(integration_id=integration_id, kind=kind, external_id=str(external_id), sage_id=str(sage_id),
                    reference=reference) for kind, external_id, sage_id, reference in links],
        ignore_conflicts=True)
