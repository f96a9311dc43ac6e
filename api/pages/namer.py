"""The names behind the ids a log entry refers to (platforms, labs, listing titles), looked up once each."""

from __future__ import annotations

import hashlib

from authenticator.contracts.labs import Lab
from authenticator.errors import AuthenticatorError
from authenticator.i18n import ENGLISH, Translator
from authenticator.services import labs, listings, names
from authenticator.services.context import ServiceContext


class Namer:
    """Looks up what the log only refers to by id (platform and lab names, listing titles), once each."""

    def __init__(self, ctx: ServiceContext, tr: Translator = ENGLISH) -> None:
        self.ctx = ctx
        self.tr = tr  # the page's language: the words of every description
        self._labs: dict[str, Lab | None] = {}
        self._platforms: dict[str, str] = {}

    def _lab_record(self, lab_id: str) -> Lab | None:
        if lab_id not in self._labs:
            try:
                self._labs[lab_id] = labs.get_lab(self.ctx, lab_id)
            except AuthenticatorError:
                self._labs[lab_id] = None
        return self._labs[lab_id]

    def lab(self, lab_id: str) -> str:
        """The lab's registered name."""
        record = self._lab_record(lab_id)
        return record.name if record else self.tr("a lab that is no longer registered")

    def lab_accredited(self, lab_id: str) -> str:
        """``Name (accreditation)``."""
        record = self._lab_record(lab_id)
        if not record:
            return self.lab(lab_id)
        return f"{record.name} ({record.accreditation})"

    def platform(self, principal_id: str) -> str:
        """The platform's display name, as the operator registered it."""
        if principal_id not in self._platforms:
            found = names.display_names(self.ctx, [principal_id]).get(principal_id)
            self._platforms[principal_id] = found or self.tr("a platform that is no longer registered")
        return self._platforms[principal_id]

    def listing_title(self, listing_id: str, title_sha256: str) -> str | None:
        """The title, only when its SHA-256 is the one in the log entry."""
        try:
            title = listings.get_listing(self.ctx, listing_id).title
        except AuthenticatorError:
            return None
        if title is None:
            return None
        return title if hashlib.sha256(title.encode("utf-8")).hexdigest() == title_sha256 else None
