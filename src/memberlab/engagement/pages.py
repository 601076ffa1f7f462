"""The engagement page for the consultancy's staff: where a contract stands (instalments,
deliverables, breaches), read from the API with the staff member's key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from memberlab.core.i18n import t
from memberlab.core.pages import APP_HEADERS, page_language, render, script_strings
from memberlab.core.web import state_of

router = APIRouter(include_in_schema=False)

STRINGS = (
    "key", "number", "as_of", "load", "payments", "instalment", "due", "payable", "paid", "state",
    "deliverables", "deliverable", "late_days", "breaches", "owed", "state_paid",
    "state_overdue", "state_due", "state_awaiting_trigger", "state_not_due", "state_paid_late",
    "state_pending", "state_submitted",
    "state_accepted", "state_deemed_accepted", "state_rejected",
)  # fmt: skip


@router.get("/app/engagements", response_class=HTMLResponse)
def engagement_page(request: Request) -> HTMLResponse:
    lang = page_language(request, state_of(request).settings.language)
    strings = {name: t(f"engagement.page.{name}", lang) for name in STRINGS}
    strings["lang"] = lang
    return render(
        "engagement.html",
        200,
        APP_HEADERS,
        lang=lang,
        main_class="wide",
        title=t("engagement.page.title", lang),
        t=strings,
        strings_json=script_strings(strings),
    )
