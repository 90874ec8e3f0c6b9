"""Sage X3 emulator (REST api1 + GraphQL + OAuth2 gateway) for the demo and the tests."""

from sandbox.x3.app import X3Faults, X3SandboxApp

__all__ = ["X3Faults", "X3SandboxApp"]
