"""Test helpers shared by every test folder: model factories (``factories``), the in-process
sandbox store and Redis probes (``bigcommerce``), and the real-process system fixture (``stack``).
Imported by tests only; product code never imports from here."""
