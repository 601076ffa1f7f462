"""JSON text for the store's JSON columns: orjson, with the standard library where it refuses.

A purchase writes four JSON values (the entry's explanation, the order's record, the
member's bonus counts, the stored answer): 14.6 µs with the standard library's ``json``,
2.4 µs with orjson. The bulk import already wrote these columns with orjson, so the live
engine now writes the same compact text. (Reading stays with ``json.loads``: orjson reads
an integer beyond 64 bits as a float, and telling such texts apart cost more than it saved.)

What orjson does not take (an integer beyond 64 bits, a key other than a string) goes to
the standard library, so that nothing the store took before is refused now, and what the
standard library refused (a datetime, a Decimal, a dataclass, a set) is still refused.
Differences remain for values none of our JSON columns or answers holds: a float NaN or
infinity is written as ``null`` by orjson (JSON has no such numbers: PostgreSQL refused the
standard library's ``NaN``, and Starlette's response raised) but as ``NaN`` when the value
also needs the standard library; and a plain ``Enum`` or a ``UUID`` is written (as its
value, as its text), where the standard library refused it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# datetimes and dataclasses go to ``default``, which refuses them, as ``json.dumps`` does;
# keys other than strings make orjson refuse, so the standard library writes them as before
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8 (characters as they are, not escaped)."""
    try:
        return orjson.dumps(value, default=_refuse, option=_OPTIONS)
    except TypeError:
        # what orjson leaves out (big integers); the standard library refuses the rest
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps(value: Any) -> str:
    """``value`` as compact JSON text: ``encode``'s, as a string."""
    return encode(value).decode()
