// Expert queue: the open cases whose Task.owner is the signed-in expert's PractitionerRole.
// "Claiming" a case is accepting the one the engine offered: the case is matched to an expert
// at submission (and re-matched on decline or reassign), and the expert takes it by starting the
// review — the first $case-bundle pull (docs/tracker.md "Submitting and claiming" says why
// there is no open pool of unassigned cases). Decline stays on the case page.
import { Problem, byDue, caseLabel, casesTable, due, el, fhir, formatDate, matches, refId, requireSession, showProblem, timeLeft } from "/app/app.js";

/** Take an offered case: the first pull of its case file starts the review (the server moves it). */
async function accept(task, button, box) {
  button.disabled = true;
  box.hidden = true;
  try {
    await fhir(`ServiceRequest/${encodeURIComponent(refId(task.focus))}/$case-bundle`);
    location.assign(`/app/case.html?task=${encodeURIComponent(task.id)}`);
  } catch (err) {
    const issues = err instanceof Problem ? err.issues : [];
    box.replaceChildren(...[el("p", {}, `Refused${err.status ? ` (${err.status})` : ""}: ${err.message}`),
      issues.length > 1 ? el("ul", {}, issues.map((i) => el("li", {}, `${i.severity}: ${i.diagnostics || i.code}`))) : null,
      [403, 404, 422].includes(err.status) ? el("p", {}, "The case may have been given to another expert or have moved on. ",
        el("a", { href: "/app/queue.html" }, "Reload the queue")) : null].filter(Boolean));
    box.hidden = false;
    box.focus();
    button.disabled = false;
  }
}

function offeredTable(tasks) {
  const box = el("div", { id: "offer-problem", class: "result result-error", role: "alert", tabindex: "-1", hidden: true });
  const rows = tasks.map((t) => {
    const left = timeLeft(t);
    const button = el("button", { type: "button", class: "accept", "data-task": t.id, "aria-label": `Accept ${caseLabel(t)} and start the review` }, "Accept and start the review");
    button.addEventListener("click", () => accept(t, button, box));
    return el("tr", { "data-task": t.id },
      el("td", {}, el("a", { href: `/app/case.html?task=${encodeURIComponent(t.id)}` }, caseLabel(t))),
      el("td", {}, t.priority || "routine"),
      el("td", { "data-due": due(t) || "" }, formatDate(due(t))),
      el("td", { class: left.overdue ? "overdue" : "" }, left.text),
      el("td", {}, button, " ", el("a", { href: `/app/case.html?task=${encodeURIComponent(t.id)}#decline-form` }, "Decline on the case page")));
  });
  return el("section", { id: "offered", "aria-labelledby": "offered-h" },
    el("h2", { id: "offered-h" }, "Offered to me"),
    el("p", { class: "muted" }, "The service matched these cases to you. Accepting opens the case file and starts the review; declining hands the case to the next expert."),
    box,
    el("table", { class: "cases" },
      el("caption", {}, `Offered to me: ${tasks.length} cases awaiting your answer, soonest due first`),
      el("thead", {}, el("tr", {}, ["Case", "Priority", "Due", "Time left", "Take it"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "5" }, "No case is waiting for you.")))));
}

async function main() {
  const s = requireSession();
  if (!s) return;
  const view = document.getElementById("view");
  const role = s.claims.prole || (s.claims.fhirUser || "").split("/").pop();
  if (!role) {
    view.replaceChildren(el("p", {}, "Your account acts for no PractitionerRole, so no case can be assigned to you."));
    return;
  }
  const config = await (await fetch("/app/folders.json")).json();
  const base = `Task?${config.caseTask}&owner=PractitionerRole/${encodeURIComponent(role)}`;
  const [open, done] = await Promise.all([
    fhir(`${base}&status=accepted,in-progress,on-hold&_count=100`),
    fhir(`${base}&status=completed&_count=20`),
  ]);
  const tasks = matches(open).sort(byDue);
  view.replaceChildren(
    casesTable(tasks, `Assigned to me: ${open.total ?? tasks.length} open cases, soonest due first`),
    offeredTable(tasks.filter((t) => t.status === "accepted")),
    casesTable(matches(done), `Recently completed (${done.total ?? matches(done).length})`));
}

main().catch(showProblem);
