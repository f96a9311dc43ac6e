"""Hostile input and attackers: fuzzing, hostile uploads, security, the server edge, log redaction, hardening."""
