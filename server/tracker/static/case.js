// Case page: the case Task, its timeline (Provenance), eligibility, questions and answers, and
// the report with its PDF. Each section asks the FHIR API itself, so a party that may not see a
// part (an insurer and Provenance) gets that section's error, not a broken page.
import { actionsFor } from "/app/actions.js";
import { coordination } from "/app/case.coordination.js";
import { Problem, caseLabel, codeText, coding, due, el, fhir, formatDate, matches, refId, requireSession, session, showProblem, timeLeft } from "/app/app.js";

function section(id, title, ...body) {
  return el("section", { class: "card", id, "aria-labelledby": `${id}-h` }, el("h2", { id: `${id}-h` }, title), ...body);
}

async function part(id, title, build) {
  try {
    return section(id, title, await build());
  } catch (err) {
    return section(id, title, el("p", { class: "problem-text", role: "status" }, `Not available (${err.status || "error"}): ${err.message}`));
  }
}

function who(agent) {
  const w = agent && agent.who;
  return (w && (w.display || w.reference)) || "the server";
}

async function timeline(taskId) {
  const b = await fhir(`Provenance?target=Task/${encodeURIComponent(taskId)}&_count=200`);
  const items = matches(b).sort((x, y) => String(x.recorded).localeCompare(String(y.recorded)));
  if (!items.length) return el("p", {}, "No transitions recorded yet.");
  return el("ol", { class: "timeline" }, items.map((p) => el("li", {},
    el("strong", {}, codeText(p.activity) || "transition"), " by ", who((p.agent || [])[0]), " ",
    el("time", { datetime: p.recorded }, formatDate(p.recorded)),
    p.reason && p.reason.length ? el("div", { class: "muted" }, p.reason.map(codeText).join("; ")) : null)));
}

function eligibility(task) {
  const stage = coding(task.businessStatus).code;
  const reasons = [];
  const sr = task.statusReason;
  if (sr) {
    for (const c of sr.coding || []) reasons.push(c.display || c.code);
    if (sr.text && !reasons.includes(sr.text)) reasons.push(sr.text);
  }
  const rejected = task.status === "rejected";
  const pending = ["received", "eligibility-check"].includes(stage) && task.status === "requested";
  const verdict = rejected ? "Not eligible" : pending ? "Being checked" : "Eligible";
  return [el("p", { id: "eligibility-verdict" }, el("strong", {}, verdict)),
    reasons.length ? el("ul", {}, reasons.map((r) => el("li", {}, r))) : el("p", { class: "muted" }, rejected ? "No reason recorded." : "Every eligibility rule passed.")];
}

async function thread(requestId) {
  const b = await fhir(`Communication?based-on=ServiceRequest/${encodeURIComponent(requestId)}&_count=100`);
  // Oldest first: `sent`, else when the server stored it (a Communication need not say `sent`).
  const when = (c) => String(c.sent || (c.meta && c.meta.lastUpdated) || "");
  const msgs = matches(b).sort((x, y) => when(x).localeCompare(when(y)));
  if (!msgs.length) return el("p", {}, "No questions asked.");
  return el("ol", { class: "thread" }, msgs.map((c) => el("li", {},
    el("strong", {}, c.inResponseTo ? "Answer" : "Question"), " from ", (c.sender && (c.sender.display || c.sender.reference)) || "unknown", " ",
    el("time", { datetime: c.sent }, formatDate(c.sent)),
    el("div", {}, (c.payload || []).map((p) => p.contentString || (p.contentAttachment && p.contentAttachment.title) || "").join(" ")))));
}

function pdfLink(report) {
  const form = (report.presentedForm || []).find((a) => a.contentType === "application/pdf");
  if (!form) return el("p", { class: "muted" }, "No PDF yet (the server renders one for a final report).");
  const name = form.title || `report-${report.id}.pdf`;
  if (form.data) {
    const bytes = Uint8Array.from(atob(form.data), (ch) => ch.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: "application/pdf" }));
    return el("p", {}, el("a", { href: url, download: name, id: `pdf-${report.id}` }, `Download the PDF (${name})`));
  }
  if (form.url) {
    const open = async () => {
      const r = await fhir(form.url.replace(/^.*\/fhir\//, ""), { raw: true, headers: { Accept: "application/pdf" } });
      const a = el("a", { href: URL.createObjectURL(await r.blob()), download: name });
      a.click();
    };
    return el("p", {}, el("button", { type: "button", onclick: () => open().catch(showProblem) }, `Download the PDF (${name})`));
  }
  return el("p", { class: "muted" }, "The PDF has no content.");
}

// ---- documents and investigations the clinic sent with the request (supportingInfo,
// reasonReference), each read with the user's token: the server decides who sees them.
function attachmentLink(a, name) {
  if (a.data) {
    const bytes = Uint8Array.from(atob(a.data), (ch) => ch.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: a.contentType || "application/octet-stream" }));
    return el("a", { href: url, download: a.title || name, class: "doc-download" }, `Download ${a.title || name}`);
  }
  if (a.url) {
    const open = async () => {
      const r = await fhir(a.url.replace(/^.*\/fhir\//, ""), { raw: true, headers: { Accept: a.contentType || "*/*" } });
      el("a", { href: URL.createObjectURL(await r.blob()), download: a.title || name }).click();
    };
    return el("button", { type: "button", class: "doc-download", onclick: () => open().catch(showProblem) }, `Download ${a.title || name}`);
  }
  return null;
}

function documentItem(res) {
  const kind = res.resourceType;
  const title = res.description || (res.content && res.content[0] && res.content[0].attachment && res.content[0].attachment.title)
    || codeText(res.type) || codeText(res.code) || kind;
  const when = res.date || res.effectiveDateTime || res.issued || res.recordedDate || res.onsetDateTime || (res.meta && res.meta.lastUpdated);
  const value = res.valueQuantity ? `${res.valueQuantity.value} ${res.valueQuantity.unit || ""}` : res.conclusion || "";
  const files = kind === "DocumentReference" ? (res.content || []).map((c) => attachmentLink(c.attachment || {}, `${res.id}`)).filter(Boolean)
    : (res.presentedForm || []).map((a) => attachmentLink(a, `${res.id}`)).filter(Boolean);
  return el("li", { "data-ref": `${kind}/${res.id}` },
    el("strong", {}, title), el("span", { class: "muted" }, ` · ${kind}${when ? ` · ${formatDate(when)}` : ""}`),
    value ? el("div", {}, value) : null, files.length ? el("div", {}, files) : null);
}

async function documents(requestId, claims) {
  if (claims.role === "insurer") {
    // Status only: an insurer never reads the clinical file (auth/policy.py INSURER_VIEW).
    return el("p", { id: "documents-withheld" }, "Clinical documents and investigations are not shared with insurers: you see the case's status only.");
  }
  const sr = await fhir(`ServiceRequest/${encodeURIComponent(requestId)}`);
  const refs = [...(sr.reasonReference || []), ...(sr.supportingInfo || [])].map((r) => r.reference).filter((r) => r && /^[A-Za-z]+\/[^/]+$/.test(r));
  if (!refs.length) return el("p", {}, "No documents were sent with the request.");
  const items = await Promise.all(refs.map((r) => fhir(r).then(documentItem).catch((err) =>
    el("li", { "data-ref": r, class: "muted" }, `${r}: not available (${err.status || "error"})`))));
  return el("ul", { class: "documents", id: "documents-list" }, items);
}

// The server tags what it redacts for a party (an insurer's view of a report).
const redacted = (r) => ((r.meta && r.meta.security) || []).some((c) => c.code === "REDACTED");

async function reports(requestId) {
  const b = await fhir(`DiagnosticReport?based-on=ServiceRequest/${encodeURIComponent(requestId)}&_count=20`);
  const list = matches(b);
  if (!list.length) return el("p", {}, "No report yet.");
  return el("div", {}, list.map((r) => el("article", { "aria-label": `Report ${r.id}` },
    el("h3", {}, `${codeText(r.code) || "Report"} — ${r.status}`),
    el("p", { class: "muted" }, `Issued ${formatDate(r.issued || (r.meta && r.meta.lastUpdated))}`),
    r.conclusion ? el("p", {}, r.conclusion) : null,
    (r.conclusionCode || []).length ? el("p", {}, "Outcome: ", r.conclusionCode.map(codeText).join(", ")) : null,
    redacted(r) ? el("p", { class: "muted redacted" }, "Clinical content is withheld from your organization (the server redacted it).") : pdfLink(r))));
}

async function main() {
  if (!requireSession()) return;
  const id = new URLSearchParams(location.search).get("task");
  if (!id) throw new Problem(400, "No case given: open a case from your worklist.");
  const task = await fhir(`Task/${encodeURIComponent(id)}`).catch((err) => {
    if (err.status === 403 || err.status === 404) err.forbidden = true;
    throw err;
  });
  const requestId = refId(task.focus || (task.basedOn || [])[0]);
  const left = timeLeft(task);
  document.querySelector("h1").textContent = `Case ${caseLabel(task)}`;
  document.title = `${document.querySelector("h1").textContent} — Consilium tracker`;
  const summary = section("summary", "Summary", el("dl", { class: "grid2" },
    el("dt", {}, "Status"), el("dd", { id: "case-status" }, `${task.status} · ${codeText(task.businessStatus)}`),
    el("dt", {}, "Due"), el("dd", {}, `${formatDate(due(task)) || "—"} (${left.text})`),
    el("dt", {}, "Expert"), el("dd", {}, (task.owner && (task.owner.display || task.owner.reference)) || "not assigned"),
    el("dt", {}, "Requester"), el("dd", {}, (task.requester && (task.requester.display || task.requester.reference)) || "—")));
  const parts = await Promise.all([
    part("timeline", "Timeline", () => timeline(task.id)),
    part("eligibility", "Eligibility", async () => el("div", {}, eligibility(task))),
    part("documents", "Documents and investigations", () => documents(requestId, session().claims)),
    part("questions", "Questions and answers", () => thread(requestId)),
    part("report", "Report", () => reports(requestId)),
    part("coordination", "Coordination services", () => coordination(task, session().claims)),
  ]);
  // What this user may do here (the assigned expert, the case's clinic): actions.js.
  const actions = await actionsFor(task, requestId, session().claims).catch((err) => [section("actions", "Actions", el("p", { class: "problem-text", role: "status" }, `Not available (${err.status || "error"}): ${err.message}`))]);
  document.getElementById("view").replaceChildren(summary, ...actions, ...parts);
}

main().catch(showProblem);
