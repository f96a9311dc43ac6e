"""Services of the API: each use case appends to the ledger, then reads back from projections.

Endpoints (``api/``) stay thin and call these functions with a :class:`~.context.ServiceContext`
(the ledger, the projection tables, the blob store and the model, opened once per process).
Web pages call the same functions, server-side, to render items, listings and traces.
"""
