"""Sage 100 eBusiness Web Services emulator (SOAP 1.1 over HTTP/HTTPS) for the demo and the tests."""

from sandbox.sage100.app import SERVICE_PATH, Company, EBusinessFaults, EBusinessSandboxApp, User
from sandbox.sage100.server import EBusinessServer

__all__ = ["SERVICE_PATH", "Company", "EBusinessFaults", "EBusinessSandboxApp", "EBusinessServer", "User"]
