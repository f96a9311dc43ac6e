"""The web pages served by the API app: the buyer's trace, the listing view and the seller's upload.

Server-rendered Jinja2 templates plus small plain-JavaScript files under ``api/static``; no
build step and nothing from a CDN. The trace page does not ask the buyer to trust this server:
its script fetches the same ``/v1/items/{id}/trace`` JSON that ``authenticator trace verify``
checks and verifies it in the browser (WebCrypto SHA-256 and Ed25519) against the log key
printed on the page. The words that describe each event are rendered here from the entry
bytes and handed to the script keyed by leaf hash, so a description is only ever shown next
to the exact bytes it describes.

One module per concern:

- :mod:`api.pages.routes`: the page routes and :func:`~api.pages.routes.install`;
- :mod:`api.pages.contexts`: what each page's template is given;
- :mod:`api.pages.entry_words`: each log entry of a trace in plain words;
- :mod:`api.pages.standing_words`: what is known about the item, in plain words;
- :mod:`api.pages.plain_words`: dates, scores, reasons and decisions as a buyer reads them;
- :mod:`api.pages.namer`: the names behind the ids the log refers to;
- :mod:`api.pages.addresses`: the addresses that leave the page, and the QR code;
- :mod:`api.pages.rendering`: a template rendered in the page's language;
- :mod:`api.pages.headers`: the security headers every page and static file carries.
"""
