"""Tokens, their hashes, and CSRF tokens.

API tokens are 256-bit random strings shown once; the database keeps only their SHA-256,
which is enough for tokens of this entropy (a slow password hash protects guessable
secrets, not random ones) and lets a token be looked up by its hash. The lookup is followed
by a constant-time comparison so that the check does not leak through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_PREFIX", "csrf_matches", "display_prefix", "hash_token", "new_csrf_token", "new_token", "token_matches"]

TOKEN_PREFIX = "gwb_"


def new_token() -> str:
    """A new API token, e.g. ``gwb_...`` (47 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def display_prefix(token: str) -> str:
    """What lists show of a token so that its owner can tell tokens apart."""
    return token[:10]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(sent: str | None, expected: str | None) -> bool:
    return bool(sent) and bool(expected) and hmac.compare_digest(str(sent), str(expected))
