// "My cases" for clinics and insurers: every case Task the server lets this user see (the party
// rules narrow the search: a clinic's own patients; an insurer's members, status only).
import { byDue, casesTable, fhir, matches, requireSession, showProblem } from "/app/app.js";

async function main() {
  if (!requireSession()) return;
  const config = await (await fetch("/app/folders.json")).json();
  const open = await fhir(`Task?${config.caseTask}&status=requested,received,accepted,in-progress,on-hold&_count=100`);
  const closed = await fhir(`Task?${config.caseTask}&status=completed,rejected,cancelled,failed&_count=100`);
  document.getElementById("view").replaceChildren(
    casesTable(matches(open).sort(byDue), `Open: ${open.total ?? matches(open).length} cases, soonest due first`),
    casesTable(matches(closed), `Closed: ${closed.total ?? matches(closed).length} cases`));
}

main().catch(showProblem);
