"""Reading a ``multipart/form-data`` body that must arrive whole.

Starlette's ``Request.form()`` accepts a body cut off before its closing boundary and drops the
part it was in without a word (python-multipart's ``finalize`` does not check, as its own TODO
says): a verdict would be recorded on fewer photos than were sent. This reader is Starlette's
parser, with the same limits and errors, that also refuses such a body.
"""

from __future__ import annotations

from contextlib import aclosing

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from authenticator.errors import BadRequest


class _WholeBodyParser(MultiPartParser):
    """Starlette's parser, remembering whether the closing boundary was reached."""

    complete = False

    def on_end(self) -> None:  # python-multipart calls it on the closing boundary only
        self.complete = True


async def read_whole_form(request: Request, *, max_files: int, max_fields: int) -> FormData:
    """The form of ``request``; raises :class:`BadRequest` when the body ends before its closing
    boundary (a cut-off upload), and Starlette's 400 for the rest of what it refuses."""
    try:
        async with aclosing(request.stream()) as stream:
            parser = _WholeBodyParser(request.headers, stream, max_files=max_files, max_fields=max_fields)
            form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(status_code=400, detail=exc.message) from exc
    if not parser.complete:
        await form.close()
        raise BadRequest(
            "the multipart body ends before its closing boundary: the upload was cut off, so nothing was "
            "recorded; send it again"
        )
    return form
