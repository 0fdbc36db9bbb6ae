"""Server-rendered login/consent, patient-picker and error pages (SMART App Launch
"authorize" step, RFC 6749 §4.1.1 end-user authorization).

``string.Template`` files under ``templates/``; every value inserted is escaped with
``html.escape`` here, in one place, so no user- or client-supplied text reaches the page raw.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _hidden(params: dict[str, str]) -> str:
    return "\n".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in params.items()
    )


def _scope_items(scopes: list[str]) -> str:
    return "".join(f"<li>{_e(s)}</li>" for s in scopes)


def login_page(
    *,
    action: str,
    client_name: str,
    scopes: list[str],
    params: dict[str, str],
    error: str = "",
    username: str = "",
    ask_patient: bool = False,
) -> str:
    """``ask_patient``: a standalone launch with ``launch/patient``. The id field is optional:
    left empty, the user chooses from a list of their patients once signed in."""
    picker = ""
    if ask_patient:
        picker = (
            '<label>Patient id <input name="patient" autocomplete="off"'
            ' placeholder="leave empty to choose from your patients after signing in"></label>'
        )
    return _template("login.html").substitute(
        action=_e(action),
        client_name=_e(client_name),
        scope_items=_scope_items(scopes),
        error=_e(error),
        hidden=_hidden(params),
        username=_e(username),
        patient_picker=picker,
    )


def patient_page(
    *,
    action: str,
    client_name: str,
    scopes: list[str],
    params: dict[str, str],
    username: str,
    choices: list[tuple[str, str]],
    truncated: bool = False,
) -> str:
    """The standalone-launch patient picker, shown only after a successful sign-in; ``params``
    carries the authorization request and the sign-in ticket as hidden fields."""
    options = "".join(f'<option value="{_e(pid)}">{_e(label)}</option>' for pid, label in choices)
    note = (
        f"Only the first {len(choices)} patients are listed; to choose another, sign in again"
        " and enter the patient's id."
        if truncated
        else ""
    )
    return _template("patient.html").substitute(
        action=_e(action),
        client_name=_e(client_name),
        scope_items=_scope_items(scopes),
        hidden=_hidden(params),
        username=_e(username),
        options=options,
        note=_e(note),
    )


def error_page(error: str, description: str) -> str:
    return _template("error.html").substitute(error=_e(error), description=_e(description))
