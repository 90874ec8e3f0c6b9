"""Sage X3: the GL journal mapper over the neutral commerce model (``journal``), the api1 and GraphQL clients
(``client``), their tokens (``auth``) and the look-up-then-create poster (``poster``).
Django-free: the pipeline passes in plain dicts, dataclasses and callbacks."""
