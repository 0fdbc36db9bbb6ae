// Insurer member lookup: group policy + certificate number (or subscriber id) -> the member's
// Coverage and the workflow status of their cases (Task status and stage only; the party rules
// keep everything clinical away from an insurer anyway). Another insurer's member is not found.
import { codeText, el, fhir, matches, refId, requireSession, showProblem } from "/app/app.js";

const CERT = "https://consilium.health/fhir/sid/certificate/";

/** The Coverage search for the form's fields (docs/insurers.md). */
export function coverageQuery(org, group, cert, subscriber) {
  const q = [];
  if (group) q.push(`class-value:exact=${encodeURIComponent(group)}`);
  if (cert) q.push(`identifier=${encodeURIComponent(`${CERT}${org}|${cert}`)}`);
  if (subscriber) q.push(`subscriber-id=${encodeURIComponent(subscriber)}`);
  return `Coverage?${q.join("&")}`;
}

async function lookup(form, s, config) {
  const out = document.getElementById("result");
  const group = form.group.value.trim(), cert = form.cert.value.trim(), subscriber = form.subscriber.value.trim();
  if (!(group && cert) && !subscriber) {
    out.replaceChildren(el("p", { role: "status" }, "Enter the group policy and certificate number, or the subscriber id."));
    return;
  }
  const covs = matches(await fhir(coverageQuery(s.claims.org, group, cert, subscriber)));
  if (!covs.length) {
    out.replaceChildren(el("p", { id: "not-found", role: "status" }, "No member of yours matches."));
    return;
  }
  const sections = [];
  for (const c of covs) {
    const klass = (t) => ((c.class || []).find((k) => codeText(k.type) === t || ((k.type.coding || [])[0] || {}).code === t) || {}).value || "";
    const tasks = matches(await fhir(`Task?${config.caseTask}&patient=${encodeURIComponent(`Patient/${refId(c.beneficiary)}`)}&_count=100`));
    sections.push(el("section", { class: "card member", "data-coverage": c.id },
      el("h2", {}, `Certificate ${c.subscriberId || ((c.identifier || [])[0] || {}).value || c.id}`),
      el("dl", { class: "grid2" },
        el("dt", {}, "Cover status"), el("dd", { class: "cov-status" }, c.status),
        el("dt", {}, "Group policy"), el("dd", {}, klass("group")),
        el("dt", {}, "Plan"), el("dd", {}, klass("plan")),
        el("dt", {}, "In force"), el("dd", {}, `${c.period?.start || "?"} to ${c.period?.end || "open"}`),
        el("dt", {}, "Relationship"), el("dd", {}, codeText(c.relationship))),
      el("table", { class: "cases member-cases" },
        el("caption", {}, `Cases: ${tasks.length}`),
        el("thead", {}, el("tr", {}, ["Case", "Status", "Stage", "Submitted"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, tasks.length ? tasks.map((t) => el("tr", {},
          el("td", {}, el("a", { href: `/app/case.html?task=${encodeURIComponent(t.id)}` }, ((t.identifier || [])[0] || {}).value || t.id)),
          el("td", {}, t.status), el("td", {}, codeText(t.businessStatus)), el("td", {}, (t.authoredOn || "").slice(0, 10))))
          : el("tr", {}, el("td", { colspan: "4" }, "No cases."))))));
  }
  out.replaceChildren(...sections);
}

async function main() {
  const s = requireSession();
  if (!s) return;
  const config = await (await fetch("/app/folders.json")).json();
  const field = (id, label, hint) => el("p", {}, el("label", { for: id }, label), " ",
    el("input", { id, name: id, type: "text", autocomplete: "off", "aria-describedby": `${id}-hint` }),
    el("span", { id: `${id}-hint`, class: "muted" }, ` ${hint}`));
  const form = el("form", { id: "lookup", class: "filters" },
    field("group", "Group policy", "e.g. GP-40213"),
    field("cert", "Certificate number", "e.g. MM-40213-0007"),
    field("subscriber", "or subscriber id", "searched on its own"),
    el("button", { type: "submit" }, "Look up"));
  form.addEventListener("submit", (e) => { e.preventDefault(); lookup(form, s, config).catch(showProblem); });
  document.getElementById("view").replaceChildren(form, el("div", { id: "result", "aria-live": "polite" }));
}

main().catch(showProblem);
