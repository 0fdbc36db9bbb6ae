"""Reports and documents on the case page (docs/tracker.md "Coordination, amendments, tokens,
dashboard"): the assigned expert amends a filed final report (status amended, a new version,
a coded finding from the guide's value set), checked by ``$validate`` first; the clinic sees
the documents it sent and the report's PDF; the insurer sees the status and no clinical text.
Seed: ``task-tremblay`` is completed with a final report by ``expert.oncology`` (Lakeshore's
``dr.patel``); ``task-hughes`` is St Brigid's (``dr.walsh``), insured by Albion Health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, admin_headers, open_as, shot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = BROWSER_MARKS
REPORT = "so-report-tremblay"
AMENDED = "Invasive ductal carcinoma confirmed; amended after the second pathology review."


def get(server: Server, credentials: dict[str, Any], path: str) -> dict[str, Any]:
    r = httpx.get(f"{server.base}/fhir/{path}", headers=admin_headers(credentials))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_expert_amends_a_final_report_with_a_coded_finding(
    browser: Browser, page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    before = get(server, credentials, f"DiagnosticReport/{REPORT}")
    open_as(page, server, credentials, "expert.oncology", "/app/case.html?task=task-tremblay")
    form = page.locator("#report-form[data-mode=amend]")
    form.wait_for()
    # Prefilled from the filed report.
    assert page.get_by_label("Conclusion").input_value() == before["conclusion"]
    assert page.locator("#outcome-alternative-treatment").is_checked()
    # Without an outcome, $validate (mode update) lists the error and nothing is filed.
    page.locator("#outcome-alternative-treatment").uncheck()
    page.get_by_role("button", name="Check and file the amendment").click()
    page.locator("#report-issues li").first.wait_for()
    assert "error" in page.locator("#report-issues").inner_text()
    assert (
        get(server, credentials, f"DiagnosticReport/{REPORT}")["meta"]["versionId"]
        == before["meta"]["versionId"]
    )

    page.locator("#outcome-confirm-diagnosis").check()
    page.get_by_label("Conclusion").fill(AMENDED)
    page.get_by_label("Findings (one per line)").fill("ER positive\nHER2 negative")
    options = page.locator("#report-condition option").evaluate_all(
        "o => o.map(x => x.value).filter(Boolean)"
    )
    assert options, "the coded finding offers the covered serious conditions"
    page.get_by_label("Coded finding: diagnosis").select_option(options[0])
    # The page reloads itself 600 ms after "filed" (actions.js): wait for the reloaded page,
    # which shows the amended report, before the screenshot (a capture racing the reload hung).
    with page.expect_navigation():
        page.get_by_role("button", name="Check and file the amendment").click()
        page.get_by_text("Amendment filed (amended").wait_for()
    page.locator("#report-form[data-mode=amend]").wait_for()
    assert page.get_by_label("Conclusion").input_value() == AMENDED
    shot(page, "report-amended")

    after = get(server, credentials, f"DiagnosticReport/{REPORT}")
    assert after["status"] == "amended"
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert after["conclusion"] == AMENDED
    assert [c["coding"][0]["code"] for c in after["conclusionCode"]] == ["confirm-diagnosis"]
    coded = [o for o in after["contained"] if "valueCodeableConcept" in o]
    assert coded[0]["code"]["coding"][0]["code"] == "29308-4"
    assert coded[0]["valueCodeableConcept"]["coding"][0]["code"] == options[0]
    assert [o["valueString"] for o in after["contained"] if "valueString" in o] == [
        "ER positive",
        "HER2 negative",
    ]
    assert len(after["result"]) == 3
    assert any(a.get("contentType") == "application/pdf" for a in after.get("presentedForm", []))
    history = get(server, credentials, f"DiagnosticReport/{REPORT}/_history")
    assert len(history["entry"]) >= 2
    assert get(server, credentials, "Task/task-tremblay")["status"] == "completed"

    # The clinic reads the amended report and downloads its new PDF.
    clinic = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    open_as(clinic, server, credentials, "dr.patel", "/app/case.html?task=task-tremblay")
    clinic.locator("#report article").first.wait_for()
    assert "amended" in clinic.locator("#report h3").first.inner_text()
    assert AMENDED in clinic.locator("#report").inner_text()
    assert clinic.locator("#report-form").count() == 0
    with clinic.expect_download() as info:
        clinic.locator("#report a[download]").first.click()
    with open(info.value.path(), "rb") as fh:
        assert fh.read(4) == b"%PDF"


def test_clinic_sees_the_documents_it_sent(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    open_as(page, server, credentials, "dr.walsh", "/app/case.html?task=task-hughes")
    page.locator("#documents-list li").first.wait_for()
    refs = page.locator("#documents-list li").evaluate_all("l => l.map(x => x.dataset.ref)")
    sr = get(server, credentials, "ServiceRequest/sr-hughes")
    expected = [
        r["reference"] for r in sr.get("reasonReference", []) + sr.get("supportingInfo", [])
    ]
    assert refs == expected
    assert page.locator("#documents-list li.muted").count() == 0  # every one readable by its clinic
    doc = get(server, credentials, "DocumentReference/docref-hughes")
    title = doc.get("description") or doc["content"][0]["attachment"].get("title")
    assert title in page.locator("#documents").inner_text()
    shot(page, "case-documents-clinic")


def test_insurer_sees_status_only_and_no_clinical_text(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    open_as(page, server, credentials, "insurer.albion", "/app/case.html?task=task-hughes")
    page.locator("#documents-withheld").wait_for()
    page.locator("#case-status").wait_for()
    page.locator("#timeline, #questions, #report").first.wait_for()
    text = page.locator("main").inner_text()
    assert page.locator("#case-status").inner_text().startswith("accepted")
    clinical: list[str | None] = []
    sr = get(server, credentials, "ServiceRequest/sr-hughes")
    for ref in [
        r["reference"] for r in sr.get("reasonReference", []) + sr.get("supportingInfo", [])
    ]:
        res = get(server, credentials, ref)
        clinical += [
            res.get("description"),
            res.get("conclusion"),
            (res.get("code") or {}).get("text"),
        ]
        clinical += [c.get("display") for c in (res.get("code") or {}).get("coding", [])]
    clinical += [c.get("text") for c in sr.get("reasonCode", [])] + [
        sr.get("note", [{}])[0].get("text")
    ]
    phrases = [c for c in clinical if c and len(c) > 3]
    assert phrases, "the case has clinical text to withhold"
    for phrase in phrases:
        assert phrase not in text, phrase
    assert page.locator("#documents-list").count() == 0
    shot(page, "case-documents-insurer")


def test_dashboard_histogram_equals_the_turnaround_bands_and_the_csv_its_figures(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    import csv
    import io
    import json
    from datetime import UTC, datetime

    open_as(page, server, credentials, "coord.silva", "/app/dashboard.html")
    page.locator("#chart-turnaround-distribution td").first.wait_for()
    token = json.loads(page.evaluate("sessionStorage.getItem('consilium.tracker.session')"))[
        "token"
    ]
    year = datetime.now(UTC).year
    report = httpx.get(
        f"{server.base}/fhir/$second-opinion-stats?period={year}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    median = next(
        g for g in report["group"] if g["code"]["coding"][0]["code"] == "turnaround-median"
    )
    strata = median["stratifier"][0]["stratum"]
    expected = [
        (s["value"]["coding"][0]["display"], str(s["population"][0]["count"])) for s in strata
    ]
    rows = page.locator("#chart-turnaround-distribution tbody tr")
    shown = [(r.locator("th").inner_text(), r.locator("td").inner_text()) for r in rows.all()]
    assert shown == expected
    assert sum(int(n) for _, n in shown) == median["population"][0]["count"]
    assert page.locator("#chart-turnaround-distribution svg rect").count() == len(strata)
    assert page.locator("#chart-sla tbody tr").count() == 12  # breaches per month of the year

    with page.expect_download() as info:
        page.locator("#csv-download").click()
    assert info.value.suggested_filename == f"consilium-stats-{year}.csv"
    with open(info.value.path(), encoding="utf-8") as fh:
        table = list(csv.reader(io.StringIO(fh.read())))
    assert table[0] == ["period", "figure", "category", "value"]
    bands = [(r[2], r[3]) for r in table if r[1] == "Turnaround distribution (business days)"]
    assert bands == expected
    cases = next(r for r in table if r[1] == "Cases submitted")
    assert cases[3] == page.locator("#fig-cases").inner_text()
    months = [r for r in table if r[1] == "SLA breaches per month"]
    assert [r[2] for r in months] == [f"{year}-{m:02d}" for m in range(1, 13)]
    shot(page, "dashboard-histogram")


def test_the_insurers_csv_keeps_masked_cells_masked(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    open_as(page, server, credentials, "insurer.maple", "/app/dashboard.html")
    page.locator("#csv-download").wait_for()
    masked_on_page = page.locator("td[data-value=masked]").count()
    with page.expect_download() as info:
        page.locator("#csv-download").click()
    with open(info.value.path(), encoding="utf-8") as fh:
        text = fh.read()
    assert text.count("fewer than 5") == masked_on_page
