"""Authenticity verification for second-hand luxury goods, with a verifiable provenance ledger."""

__version__ = "0.1.0"
