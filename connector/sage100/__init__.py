"""Sage 100 ledger: the eBusiness Web Services (SOAP) transport lives in ``ebusiness.py``."""
