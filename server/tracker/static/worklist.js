// Coordinator worklist: one FHIR search per folder for its count (_summary=count), and the
// chosen folder's cases, soonest due first. Folders are data (folders.json).
import { byDue, casesTable, el, fhir, matches, requireSession, showProblem } from "/app/app.js";

export function folderQuery(config, folder, now = new Date()) {
  let q = `${config.caseTask}&${folder.query}`;
  if (folder.overdue) q += `&due=lt${now.toISOString().replace(/\.\d+Z$/, "Z")}`;
  return q;
}

async function main() {
  if (!requireSession()) return;
  const view = document.getElementById("view");
  const config = await (await fetch("/app/folders.json")).json();
  const chosen = new URLSearchParams(location.search).get("folder") || config.folders[0].id;
  const now = new Date();
  const counts = await Promise.all(config.folders.map((f) =>
    fhir(`Task?${folderQuery(config, f, now)}&_summary=count`).then((b) => b.total)));
  const list = el("ul", { class: "folders", "aria-label": "Folders" },
    config.folders.map((f, i) => el("li", {},
      el("a", { href: `?folder=${f.id}`, id: `folder-${f.id}`, "aria-current": f.id === chosen ? "true" : null },
        el("span", { class: "label" }, f.label), el("span", { class: "count", "data-count": counts[i] }, counts[i])))));
  const folder = config.folders.find((f) => f.id === chosen) || config.folders[0];
  const bundle = await fhir(`Task?${folderQuery(config, folder, now)}&_count=100`);
  const tasks = matches(bundle).sort(byDue);
  const shown = bundle.total > tasks.length ? ` (first ${tasks.length} of ${bundle.total})` : "";
  view.replaceChildren(el("nav", { "aria-label": "Worklist folders" }, list),
    casesTable(tasks, `${folder.label}: ${bundle.total ?? tasks.length} cases${shown}, soonest due first`));
}

main().catch(showProblem);
