// Expert queue: the open cases whose Task.owner is the signed-in expert's PractitionerRole.
import { byDue, casesTable, el, fhir, matches, requireSession, showProblem } from "/app/app.js";

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
  view.replaceChildren(
    casesTable(matches(open).sort(byDue), `Assigned to me: ${open.total ?? matches(open).length} open cases, soonest due first`),
    casesTable(matches(done), `Recently completed (${done.total ?? matches(done).length})`));
}

main().catch(showProblem);
