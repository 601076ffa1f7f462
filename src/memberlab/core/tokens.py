"""Single-use link tokens (survey links ``/s/<token>``, questionnaire links ``/q/<token>``).

A token is 128 random bits, shown once in the link; only its SHA-256 is stored, so the store
alone cannot answer for anybody.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(16)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
