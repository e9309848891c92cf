"""Reading request bodies: JSON objects (strictly, ``core.strictjson``), form posts, and the
attachments either carries. Every cap is checked before the body is read past it, and
every refusal is a 4xx with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from hotline.core import strictjson
from hotline.core.model import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from hotline.web.auth import caller

MAX_JSON_BODY = 1024 * 1024
# A JSON send carries attachments in base64: room for one at the full 16 MiB. More go as multipart.
MAX_JSON_SEND_BODY = 32 * 1024 * 1024
MAX_REQUEST_BODY = MAX_ATTACHMENTS * MAX_ATTACHMENT_BYTES + MAX_JSON_BODY
LOGIN_FORM_MAX = 64 * 1024


async def read_json(request: Request, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    too_big = HTTPException(413, f"a JSON body here may have at most {limit} bytes; send files as multipart")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_big
    body = b"".join(chunks)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(415, f"send the body as application/json, not {content_type[:60]}")
    if len(body) > 64 * 1024:  # a message with attachments: parsed off the loop, which keeps the link beating
        return await asyncio.to_thread(parse_json_object, body)
    return parse_json_object(body)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body as one JSON object, strictly: no NaN or Infinity, no repeated key (which
    would silently win), no text that is not Unicode (a lone surrogate), no nesting so deep it
    exhausts the parser. Each is a 400 with the reason; none reaches the journal."""
    try:
        value = strictjson.loads(body or b"{}")
    except strictjson.LoneSurrogate:
        raise HTTPException(400, "the body holds text that is not valid Unicode (a lone surrogate)") from None
    except strictjson.TooDeep:
        raise HTTPException(400, "the body is nested too deeply") from None
    except ValueError as e:  # malformed, not UTF-8, or refused by strictjson
        raise HTTPException(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return value


async def read_form(request: Request, *, login: bool = False) -> Any:
    """A form post. Only a caller with a bearer token or a session gets its body read (the CSRF
    token may travel inside the form, so that check follows); the login form itself is small."""
    if not login:
        caller(request)  # 401 before a byte of the body is read
    limit = LOGIN_FORM_MAX if login else MAX_REQUEST_BODY
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise HTTPException(413, "the login form is too large" if login else "the request is larger than 16 "
                            "attachments of 16 MiB")  # fmt: skip
    try:
        if login:
            return await request.form(max_files=0, max_fields=10, max_part_size=LOGIN_FORM_MAX)
        return await request.form(max_files=MAX_ATTACHMENTS, max_fields=50, max_part_size=MAX_ATTACHMENT_BYTES + 1024)
    except HTTPException:
        raise
    except Exception as e:  # python-multipart reports a malformed body in several types
        raise HTTPException(400, f"malformed form: {e}") from None


async def form_attachments(form: Any) -> list[list[Any]]:
    out: list[list[Any]] = []
    for item in form.getlist("attachment"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read(MAX_ATTACHMENT_BYTES + 1)
            if len(data) > MAX_ATTACHMENT_BYTES:  # only the first 16 MiB + 1 were read: say the limit
                raise HTTPException(400, f"attachment {item.filename[:80]!r} is larger than the 16 MiB limit")
            out.append([item.filename, data])
    return out


def json_attachments(raw: Any) -> list[list[Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise HTTPException(400, f"'attachments' must be a list of at most {MAX_ATTACHMENTS} {{name, data}} objects")
    out: list[list[Any]] = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("data"), str)):
            raise HTTPException(400, 'each attachment must be {"name": text, "data": base64 text}')
        try:
            out.append([item["name"], base64.b64decode(item["data"], validate=True)])
        except (binascii.Error, ValueError):
            raise HTTPException(400, f"attachment {item['name']!r} is not valid base64") from None
    return out
