"""Pages a person opens in a browser: the public survey page of a link (no login, made for a
phone, in the member's language) and the follow-up case list for the client's staff.

Templates are Jinja2 with autoescaping on: a comment with a ``<script>`` in it is shown as
text everywhere. The case list renders the API's JSON with ``textContent`` for the same
reason. No asset is fetched from anywhere: the styles are in the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from memberlab.core.errors import InvalidInput, MemberLabError
from memberlab.core.i18n import Language, t
from memberlab.core.pages import APP_HEADERS, page_language, render, script_strings
from memberlab.core.web import state_of
from memberlab.experience import answers
from memberlab.experience.invitations import InvitationNotFound
from memberlab.experience.surveys import SCALES, QuestionType, SurveyDefinition

router = APIRouter(include_in_schema=False)
SCALE_ENDS = {
    "nps": ("experience.page.nps_low", "experience.page.nps_high"),
    "csat": ("experience.page.csat_low", "experience.page.csat_high"),
    "ces": ("experience.page.ces_low", "experience.page.ces_high"),
    "rating": ("experience.page.rating_low", "experience.page.rating_high"),
}


def _message(lang: Language, status: int, title_key: str, message_key: str, **params: Any):
    return render(
        "message.html",
        status,
        lang=lang,
        title=t(title_key, lang),
        message=t(message_key, lang, **params),
    )


def _questions(
    definition: SurveyDefinition,
    lang: Language,
    form: Mapping[str, list[str]],
    errors: Mapping[str, str],
) -> list[dict[str, Any]]:
    out = []
    for question in definition.questions:
        kind = question.type
        text = question.text.get(lang) if question.text else t(f"experience.q.{kind.value}", lang)
        item: dict[str, Any] = {
            "id": question.id,
            "text": text,
            "required": question.is_required,
            "given": form.get(question.id, []),
            "error": errors.get(question.id),
            "max_length": question.max_length,
        }
        if kind.value in SCALES:
            low, high = SCALES[kind.value]
            low_key, high_key = SCALE_ENDS[kind.value]
            item.update(
                kind="scale",
                steps=list(range(low, high + 1)),
                low_label=t(low_key, lang),
                high_label=t(high_key, lang),
            )
        elif kind in (QuestionType.SINGLE, QuestionType.MULTIPLE):
            item.update(
                kind=kind.value,
                options=[{"code": o.code, "text": o.text.get(lang)} for o in question.options],
            )
        else:
            item["kind"] = "text"
        out.append(item)
    return out


def _survey_page(
    link: answers.OpenLink,
    lang: Language,
    form: Mapping[str, list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    definition = link.definition
    return render(
        "answer.html",
        status,
        lang=lang,
        title=definition.title.get(lang),
        intro=definition.intro.get(lang) if definition.intro else None,
        questions=_questions(definition, lang, form or {}, errors or {}),
        errors=bool(errors),
        t={"submit": t("experience.page.submit", lang), "fix": t("experience.page.fix", lang)},
    )


def _link_problem(error: MemberLabError, lang: Language) -> HTMLResponse:
    if isinstance(error, InvitationNotFound):
        return _message(lang, 404, "experience.page.unknown_title", "experience.page.unknown")
    if isinstance(error, answers.LinkUsed):
        return _message(lang, 410, "experience.page.used_title", "experience.page.used")
    if isinstance(error, answers.LinkExpired):
        return _message(lang, 410, "experience.page.expired_title", "experience.page.expired")
    raise error


@router.get("/s/{token}", response_class=HTMLResponse)
def survey_page(token: str, request: Request) -> HTMLResponse:
    state = state_of(request)
    lang = page_language(request, None)
    try:
        tenant_id = answers.tenant_of_link(state.database, token)
        with state.database.session(tenant_id=tenant_id) as session:
            link = answers.open_link(session, token, now=state.clock())
            lang = page_language(request, link.invitation.language)
            return _survey_page(link, lang)
    except (InvitationNotFound, answers.LinkUsed, answers.LinkExpired) as error:
        return _link_problem(error, lang)


@router.post("/s/{token}", response_class=HTMLResponse)
async def answer_survey(token: str, request: Request) -> HTMLResponse:
    state = state_of(request)
    lang = page_language(request, None)
    raw = await request.form()
    form = {key: [str(v) for v in raw.getlist(key)] for key in raw}
    try:
        tenant_id = answers.tenant_of_link(state.database, token)
        with state.database.session(tenant_id=tenant_id) as session:
            link = answers.open_link(session, token, now=state.clock())
            lang = page_language(request, link.invitation.language)
            try:
                answers.submit(session, token, form, now=state.clock())
            except InvalidInput as invalid:
                session.rollback()
                messages = {e.loc: e.message(lang) for e in invalid.errors}
                return _survey_page(link, lang, form, messages, status=422)
    except (InvitationNotFound, answers.LinkUsed, answers.LinkExpired) as error:
        return _link_problem(error, lang)
    return _message(lang, 200, "experience.page.thanks_title", "experience.page.thanks")


CASE_STRINGS = (
    "key", "load", "overdue_only", "status", "all", "status_open", "status_in_progress",
    "status_closed", "member", "touchpoint", "score", "comment", "due", "action", "resolution",
    "close", "overdue", "summary",
)  # fmt: skip


@router.get("/app/cases", response_class=HTMLResponse)
def cases_page(request: Request) -> HTMLResponse:
    """The follow-up list: the page asks for an API key and reads the cases API with it."""
    lang = page_language(request, state_of(request).settings.language)
    strings = {name: t(f"experience.cases.{name}", lang) for name in CASE_STRINGS}
    strings["lang"] = lang
    return render(
        "cases.html",
        200,
        APP_HEADERS,
        lang=lang,
        main_class="wide",
        title=t("experience.cases.title", lang),
        t=strings,
        strings_json=script_strings(strings),
    )
