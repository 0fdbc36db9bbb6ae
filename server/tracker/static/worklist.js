// Coordinator worklist: one FHIR search per folder for its count (_summary=count), and the
// chosen folder's cases, soonest due first. Folders are data (folders.json).
// Filters (docs/tracker.md): expert is a server search (Task owner); insurer and condition are
// filtered here on the folder's page (Task has no search parameter reaching the Coverage's payor
// or the request's covered condition), from the ServiceRequests brought by _include=Task:focus.
// Each row has a Reassign button: Task/{id}/$reassign with a reason and an optional expert.
import { byDue, casesTable, codeText, el, fhir, included, matches, refId, requireSession, showProblem } from "/app/app.js";

const CONDITIONS = "https://consilium.health/fhir/CodeSystem/covered-serious-conditions";
const EXPERT = "https://consilium.health/fhir/StructureDefinition/second-opinion-expert";

export function folderQuery(config, folder, now = new Date()) {
  let q = `${config.caseTask}&${folder.query}`;
  if (folder.overdue) q += `&due=lt${now.toISOString().replace(/\.\d+Z$/, "Z")}`;
  return q;
}

/** The request's covered condition code (reasonCode in covered-serious-conditions), or "". */
export const conditionOf = (sr) => ((sr && sr.reasonCode) || []).flatMap((c) => c.coding || []).find((c) => c.system === CONDITIONS)?.code || "";

async function experts() {
  const b = await fhir(`PractitionerRole?_profile=${encodeURIComponent(EXPERT)}&active=true&_include=PractitionerRole:practitioner&_count=500`);
  const people = Object.fromEntries(included(b).map((p) => [p.id, p]));
  const name = (r) => {
    const n = ((people[refId(r.practitioner)] || {}).name || [])[0];
    const who = n ? (n.text || [...(n.prefix || []), ...(n.given || []), n.family].filter(Boolean).join(" ")) : r.id;
    return `${who} · ${(r.specialty || []).map(codeText).join(", ") || "no specialty"}`;
  };
  return matches(b).map((r) => ({ id: r.id, label: name(r) })).sort((a, b) => a.label.localeCompare(b.label));
}

function reassignDialog(task, expertList, onDone) {
  const reason = el("textarea", { id: "reassign-reason", name: "reason", required: true, rows: "3" });
  const expert = el("select", { id: "reassign-expert", name: "expert" },
    el("option", { value: "" }, "Next match (the server chooses)"),
    expertList.map((e) => el("option", { value: e.id }, e.label)));
  const error = el("div", { id: "reassign-error", role: "alert", class: "problem-inline" });
  const dialog = el("dialog", { id: "reassign-dialog", "aria-labelledby": "reassign-title" });
  const form = el("form", { method: "dialog" },
    el("h2", { id: "reassign-title" }, `Reassign ${((task.identifier || [])[0] || {}).value || task.id}`),
    el("p", {}, el("label", { for: "reassign-reason" }, "Reason (required)"), el("br"), reason),
    el("p", {}, el("label", { for: "reassign-expert" }, "New expert"), el("br"), expert),
    error,
    el("p", {}, el("button", { type: "submit", id: "reassign-submit" }, "Reassign"), " ",
      el("button", { type: "button", onclick: () => dialog.close() }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.replaceChildren();
    const parameter = [{ name: "reason", valueString: reason.value }];
    if (expert.value) parameter.push({ name: "expert", valueReference: { reference: `PractitionerRole/${expert.value}` } });
    try {
      await fhir(`Task/${encodeURIComponent(task.id)}/$reassign`, {
        method: "POST", headers: { "Content-Type": "application/fhir+json" },
        body: JSON.stringify({ resourceType: "Parameters", parameter }),
      });
      dialog.close();
      onDone();
    } catch (err) {
      error.replaceChildren(el("p", {}, `The server refused (${err.status}): ${err.message}`));
    }
  });
  dialog.append(form);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  reason.focus();
}

async function main() {
  if (!requireSession()) return;
  const view = document.getElementById("view");
  const config = await (await fetch("/app/folders.json")).json();
  const params = new URLSearchParams(location.search);
  const chosen = params.get("folder") || config.folders[0].id;
  const want = { expert: params.get("expert") || "", insurer: params.get("insurer") || "", condition: params.get("condition") || "" };
  const now = new Date();
  const counts = await Promise.all(config.folders.map((f) =>
    fhir(`Task?${folderQuery(config, f, now)}&_summary=count`).then((b) => b.total)));
  const list = el("ul", { class: "folders", "aria-label": "Folders" },
    config.folders.map((f, i) => el("li", {},
      el("a", { href: `?folder=${f.id}`, id: `folder-${f.id}`, "aria-current": f.id === chosen ? "true" : null },
        el("span", { class: "label" }, f.label), el("span", { class: "count", "data-count": counts[i] }, counts[i])))));
  const folder = config.folders.find((f) => f.id === chosen) || config.folders[0];
  const owner = want.expert ? `&owner=${encodeURIComponent(`PractitionerRole/${want.expert}`)}` : "";
  const bundle = await fhir(`Task?${folderQuery(config, folder, now)}${owner}&_include=Task:focus&_count=100`);
  const requests = Object.fromEntries(included(bundle).filter((r) => r.resourceType === "ServiceRequest").map((r) => [r.id, r]));
  let tasks = matches(bundle).sort(byDue);
  const [expertList, insurers, payors] = await Promise.all([
    experts(),
    fhir("Organization?type=ins&_count=100").then(matches),
    (async () => {
      const covIds = [...new Set(Object.values(requests).flatMap((r) => (r.insurance || []).map(refId)))];
      if (!covIds.length) return {};
      const covs = matches(await fhir(`Coverage?_id=${covIds.map(encodeURIComponent).join(",")}&_count=${covIds.length}`));
      return Object.fromEntries(covs.map((c) => [c.id, ((c.payor || [])[0] || {}).reference || ""]));
    })(),
  ]);
  const srOf = (t) => requests[refId(t.focus)];
  const payorOf = (t) => ((srOf(t) || {}).insurance || []).map((c) => payors[refId(c)]).find(Boolean) || "";
  const filtered = !!(want.insurer || want.condition);
  if (want.insurer) tasks = tasks.filter((t) => payorOf(t) === `Organization/${want.insurer}`);
  if (want.condition) tasks = tasks.filter((t) => conditionOf(srOf(t)) === want.condition);
  const conditions = [...new Set(Object.values(requests).map(conditionOf).filter(Boolean))].sort();
  if (want.condition && !conditions.includes(want.condition)) conditions.push(want.condition);

  const select = (id, label, options, value) => el("p", {}, el("label", { for: `filter-${id}` }, label), " ",
    el("select", { id: `filter-${id}`, name: id }, el("option", { value: "" }, "Any"),
      options.map((o) => el("option", { value: o.value, selected: o.value === value }, o.label))));
  const filters = el("form", { id: "filters", class: "filters", method: "get", "aria-label": "Filter the folder" },
    el("input", { type: "hidden", name: "folder", value: folder.id }),
    select("expert", "Expert", expertList.map((e) => ({ value: e.id, label: e.label })), want.expert),
    select("insurer", "Insurer", insurers.map((o) => ({ value: o.id, label: o.name || o.id })), want.insurer),
    select("condition", "Condition", conditions.map((c) => ({ value: c, label: c })), want.condition),
    el("button", { type: "submit" }, "Filter"), " ", el("a", { href: `?folder=${folder.id}` }, "Clear filters"));
  const shown = bundle.total > matches(bundle).length ? ` (first ${matches(bundle).length} of ${bundle.total})` : "";
  const count = filtered ? tasks.length : (bundle.total ?? tasks.length);
  const table = casesTable(tasks, `${folder.label}: ${count} cases${filtered ? " (filtered on this page)" : shown}, soonest due first`);
  table.querySelector("thead tr").append(el("th", { scope: "col" }, "Action"));
  const rows = table.querySelectorAll("tbody tr");
  if (tasks.length) tasks.forEach((t, i) => rows[i].append(el("td", {},
    el("button", { type: "button", class: "reassign", "data-task": t.id, "aria-label": `Reassign ${((t.identifier || [])[0] || {}).value || t.id}`,
      onclick: () => reassignDialog(t, expertList, () => main().catch(showProblem)) }, "Reassign"))));
  view.replaceChildren(el("nav", { "aria-label": "Worklist folders" }, list), filters, table);
  view.dataset.ready = "true";
}

main().catch(showProblem);
