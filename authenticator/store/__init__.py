"""Storage of the API beside the ledger: projection tables, API keys, blobs, idempotency keys.

The ledger is the system of record. Tables named in :data:`tables.PROJECTION_TABLES` are
derived from its entries (plus the blob store) and can be rebuilt at any time; the others
(keys, labs, idempotency records, the photo-reuse index, heat maps) hold what the log does not.
"""
