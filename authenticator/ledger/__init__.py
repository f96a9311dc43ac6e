"""The append-only, tamper-evident provenance ledger (RFC 9162 Merkle log, C2SP checkpoints)."""
