"""Personal data at rest: encryption, keyed lookup and masking.

With a secret key configured (``MEMBERLAB_SECRET_KEY``), personal fields are stored as
Fernet tokens (AES-128-CBC + HMAC-SHA256) prefixed ``enc1:``, and mobile numbers are
found through a keyed HMAC index, so the database alone reveals neither. Without a key
the values are stored as they are (the embedded demo), and the index is a plain hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PREFIX = "enc1:"


class PersonalDataKeyMissing(RuntimeError):
    """Encrypted data found but no secret key configured to read it."""


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"memberlab", info=purpose).derive(
        secret.encode()
    )


class PersonalDataVault:
    """Encrypts, decrypts and indexes personal fields with keys derived from one secret."""

    def __init__(self, secret: str | None) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(_derive(secret, b"encrypt"))) if secret else None
        )
        self._index_key = _derive(secret, b"index") if secret else b"memberlab-unkeyed-index"

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str | None) -> str | None:
        if value is None:
            return None
        if self._fernet is None:
            return value
        return _PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(_PREFIX):
            return stored
        if self._fernet is None:
            raise PersonalDataKeyMissing("personal data is encrypted; set MEMBERLAB_SECRET_KEY")
        try:
            return self._fernet.decrypt(stored[len(_PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise PersonalDataKeyMissing("personal data was encrypted with another key") from exc

    def index(self, value: str) -> str:
        """A stable lookup token for ``value`` that does not reveal it (keyed when possible)."""
        return hmac.new(self._index_key, value.encode(), hashlib.sha256).hexdigest()


def mask_mobile(e164: str | None) -> str | None:
    """``+8613812345678`` -> ``138****5678``; other numbers keep their first and last digits."""
    if not e164:
        return e164
    if e164.startswith("+86") and len(e164) == 14:
        national = e164[3:]
        return f"{national[:3]}****{national[-4:]}"
    digits = e164.lstrip("+")
    if len(digits) <= 6:
        return "*" * len(digits)
    return f"+{digits[:4]}****{digits[-4:]}"


def mask_name(name: str | None) -> str | None:
    """``张小明`` -> ``张**``; ``Alice Smith`` -> ``A**********``."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)
