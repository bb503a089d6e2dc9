"""API keys: the ``X-API-Key`` header, checked in constant time against every configured key.

Two scopes: ``api`` (the /v1 endpoints) and ``admin`` (/admin; admin keys also hold the api
scope). Keys are compared as SHA-256 digests with ``hmac.compare_digest`` and every configured
key is compared on every request, so timing reveals neither which key nor how much of it
matched. ``NEXTBEST_AUTH_DISABLED=true`` (explicit, for a local demo) grants every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from serving.settings import Settings

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key from NEXTBEST_API_KEYS (or NEXTBEST_ADMIN_KEYS for /admin).",
)


class Scope(StrEnum):
    API = "api"
    ADMIN = "admin"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _matches(candidate: bytes, digests: Iterable[bytes]) -> bool:
    found = False
    for digest in digests:  # no early exit: always compare against every key
        found |= hmac.compare_digest(candidate, digest)
    return found


@dataclass(frozen=True)
class KeyRing:
    """The configured keys, kept only as digests."""

    api: tuple[bytes, ...]
    admin: tuple[bytes, ...]
    disabled: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        if settings.auth_disabled:
            logger.warning("authentication is DISABLED (NEXTBEST_AUTH_DISABLED): demo use only")
        return cls(
            api=tuple(_digest(k.get_secret_value()) for k in settings.api_keys),
            admin=tuple(_digest(k.get_secret_value()) for k in settings.admin_keys),
            disabled=settings.auth_disabled,
        )

    def scopes(self, key: str | None) -> frozenset[Scope]:
        """The scopes a presented key grants (empty for a missing or unknown key)."""
        if self.disabled:
            return frozenset(Scope)
        if not key:
            return frozenset()
        candidate = _digest(key)
        is_admin = _matches(candidate, self.admin)
        is_api = _matches(candidate, self.api)
        if is_admin:
            return frozenset(Scope)
        return frozenset({Scope.API}) if is_api else frozenset()


def _authenticate(request: Request, key: str | None, needed: Scope) -> Scope:
    keys: KeyRing = request.app.state.keys
    granted = keys.scopes(key)
    if needed in granted:
        return needed
    if not granted:
        detail = f"missing {API_KEY_HEADER} header" if not key else f"invalid {API_KEY_HEADER}"
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "ApiKey"}
        )
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this API key lacks the admin scope")


async def require_api_key(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> Scope:
    return _authenticate(request, key, Scope.API)


async def require_admin_key(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> Scope:
    return _authenticate(request, key, Scope.ADMIN)


ApiScope = Annotated[Scope, Depends(require_api_key)]
AdminScope = Annotated[Scope, Depends(require_admin_key)]
