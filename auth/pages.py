"""Server-rendered login/consent and error pages (SMART App Launch "authorize" step).

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


def login_page(
    *,
    action: str,
    client_name: str,
    scopes: list[str],
    params: dict[str, str],
    error: str = "",
    username: str = "",
    patients: list[tuple[str, str]] | None = None,
) -> str:
    hidden = "\n".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in params.items()
    )
    picker = ""
    if patients is not None and not patients:
        picker = '<label>Patient id <input name="patient" required></label>'
    elif patients is not None:
        options = "".join(
            f'<option value="{_e(pid)}">{_e(label)}</option>' for pid, label in patients
        )
        picker = f'<label>Patient <select name="patient" required>{options}</select></label>'
    return _template("login.html").substitute(
        action=_e(action),
        client_name=_e(client_name),
        scope_items="".join(f"<li>{_e(s)}</li>" for s in scopes),
        error=_e(error),
        hidden=hidden,
        username=_e(username),
        patient_picker=picker,
    )


def error_page(error: str, description: str) -> str:
    return _template("error.html").substitute(error=_e(error), description=_e(description))
