"""API errors as JSON: `{"error": {"code", "message"}}`, and the middleware that makes every
failure look like that (an unexpected exception becomes a 500 with its traceback logged)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger("neuedit.server")

# codes for aiohttp's own HTTP exceptions (routing, body size, methods)
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
               414: "uri_too_long", 415: "unsupported_media_type", 431: "headers_too_large"}


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, e.headers)
    except web.HTTPException as e:
        if e.status < 400:  # redirects and the like pass through
            raise
        message = e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason
        headers = {k: v for k, v in e.headers.items() if k.lower() in ("allow", "retry-after")}
        return error_response(e.status, _HTTP_CODES.get(e.status, f"http_{e.status}"), message, headers)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error (logged on the server)")
