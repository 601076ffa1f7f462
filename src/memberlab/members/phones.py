"""Mobile numbers: parsed and validated with Google's libphonenumber, stored as E.164."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalise_mobile(raw: str, default_region: str = "CN") -> str | None:
    """``138 1234 5678`` -> ``+8613812345678``; ``None`` if it is not a valid mobile number.

    Numbers without a country code are read as mainland China (or ``default_region``);
    full-width digits and separators are accepted.
    """
    text = raw.strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
