"""``core.web``'s response for the hot routes sends what ``JSONResponse`` would."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from memberlab.core.web import CompactJSONResponse


def test_the_compact_response_sends_the_bytes_of_a_json_response() -> None:
    answer = {
        "order_id": "订单-1",
        "points": 58,
        "explanation": [{"rule": "base", "points": 58}, {"rule": "cap:per_day", "points": -8}],
        "pending": True,
        "coupon": None,
    }
    compact = CompactJSONResponse(answer, status_code=201, headers={"Idempotent-Replayed": "true"})
    plain = JSONResponse(answer, status_code=201, headers={"Idempotent-Replayed": "true"})
    assert compact.body == plain.body
    assert compact.headers == plain.headers  # content length and type included
