"""An independent witness for the log (C2SP tlog-witness with tlog-cosignature).

A witness holds its own Ed25519 key and its own state (a SQLite file): for every log it is
configured with (by origin and log verifier key), the latest checkpoint it cosigned. It cosigns
a new checkpoint only when the log's signature verifies and a consistency proof shows the new
tree extends the one it cosigned before, so it never cosigns two views of one log that are not
one append-only history. ``authenticator witness serve`` runs it over HTTP.

:mod:`.protocol` is the request format (pure, shared with the log's client),
:mod:`.store` the state, :mod:`.witness` the checks, :mod:`.asgi` the HTTP server.
"""
