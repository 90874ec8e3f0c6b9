"""The accountant's morning check: a home page per tenant, the store ↔ Sage reconciliation of a
day, state in words, one-click fixes and e-mail notifications.

Reads the sync engine's tables and the store; never posts anything itself (a Re-post goes
through connector.services.records.replay like the admin action does).
"""
