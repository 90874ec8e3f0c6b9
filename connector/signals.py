"""Signal receivers of the sync engine (none yet beyond mappings' wake-up, which lives in
mappings/signals.py next to the models it watches)."""
