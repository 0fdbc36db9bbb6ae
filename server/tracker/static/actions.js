// The case page's actions, by party (docs/tracker.md): the assigned expert starts the review
// ($case-bundle), declines ($decline), asks a question (a Communication) and files the report
// (validated with $validate before it is POSTed); the clinic answers open questions. Every call
// is the public FHIR API with the user's token: the server decides, the page only offers.
import { Problem, codeText, coding, el, fhir, matches, refId } from "/app/app.js";

const CS_COMMUNICATION = "https://consilium.health/fhir/CodeSystem/case-communication";
const OUTCOME_VS = "https://consilium.health/fhir/ValueSet/second-opinion-outcome";
const REPORT_PROFILE = "https://consilium.health/fhir/StructureDefinition/second-opinion-report";
const JSON_HEADERS = { "Content-Type": "application/fhir+json" };

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function card(id, title, ...body) {
  return el("section", { class: "card", id, "aria-labelledby": `${id}-h` }, el("h2", { id: `${id}-h` }, title), ...body);
}

/** A labelled form control: label, control and (optional) hint wired with for/aria-describedby. */
function field(label, control, hint) {
  const id = control.id || nextId("f");
  control.id = id;
  const parts = [el("label", { for: id }, label)];
  if (hint) {
    const hid = `${id}-hint`;
    control.setAttribute("aria-describedby", hid);
    parts.push(el("div", { class: "muted", id: hid }, hint));
  }
  return el("div", { class: "field" }, ...parts, control);
}

/** The issues of an OperationOutcome (or of a Problem) as a list, errors first. */
export function issueList(issues, id) {
  const rank = { fatal: 0, error: 1, warning: 2, information: 3 };
  const sorted = [...issues].sort((a, b) => (rank[a.severity] ?? 4) - (rank[b.severity] ?? 4));
  return el("ul", { class: "issues", id }, sorted.map((i) => el("li", { class: `issue-${i.severity}`, "data-severity": i.severity },
    el("strong", {}, `${i.severity}: `), i.diagnostics || (i.details && i.details.text) || i.code,
    (i.expression || []).length ? el("span", { class: "muted" }, ` (${i.expression.join(", ")})`) : null)));
}

/** A form's result region: role=status for success, role=alert for errors (read out). */
function result(box, kind, ...content) {
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.className = `result result-${kind}`;
  box.replaceChildren(...content);
  box.hidden = false;
}

function problemContent(err) {
  const issues = err instanceof Problem ? err.issues : [];
  const head = `Refused${err.status ? ` (${err.status})` : ""}`;
  // The OperationOutcome's issues when there are any (the message is made of them), else the message.
  return issues.length ? [el("p", {}, `${head}:`), issueList(issues)] : [el("p", {}, `${head}: ${err.message}`)];
}

const post = (path, body) => fhir(path, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) });
const reload = () => setTimeout(() => location.reload(), 600);

// ---- expert: the case file
function entryText(res) {
  if (!res) return "(not in the document)";
  const name = codeText(res.code) || res.description || res.title || (res.type && codeText(res.type)) || res.status || "";
  const extra = res.valueQuantity ? ` ${res.valueQuantity.value} ${res.valueQuantity.unit || ""}` : res.conclusion ? `: ${res.conclusion}` : "";
  return `${res.resourceType}${name ? ` — ${name}` : ""}${extra}`;
}

/** The $case-bundle document: every section of its Composition with its entries resolved. */
export function caseFile(bundle) {
  const byUrl = new Map((bundle.entry || []).map((e) => [e.fullUrl, e.resource]));
  const resolve = (ref) => {
    const r = ref.reference || "";
    if (byUrl.has(r)) return byUrl.get(r);
    return (bundle.entry || []).map((e) => e.resource).find((x) => `${x.resourceType}/${x.id}` === r || (e2(x) === r));
  };
  const e2 = (x) => `urn:uuid:${x.id}`;
  const composition = (bundle.entry || [])[0] ? bundle.entry[0].resource : {};
  return el("div", { id: "case-file" },
    el("p", { class: "muted" }, `${composition.title || "Case file"} (${(bundle.entry || []).length} resources)`),
    (composition.section || []).map((s) => {
      const code = ((s.code && s.code.coding) || [])[0] || {};
      return el("section", { class: "doc-section", "data-section": code.code || "", "aria-label": s.title || code.display },
        el("h3", {}, s.title || code.display || code.code),
        (s.entry || []).length
          ? el("ul", {}, s.entry.map((ref) => el("li", {}, entryText(resolve(ref)))))
          : el("p", { class: "muted" }, `Nothing (${codeText(s.emptyReason) || "empty"})`));
    }));
}

function reviewCard(task, requestId, onStarted) {
  const out = el("div", { hidden: true });
  const view = el("div", { id: "case-file-view" });
  const start = async () => {
    try {
      const bundle = await fhir(`ServiceRequest/${encodeURIComponent(requestId)}/$case-bundle`);
      view.replaceChildren(caseFile(bundle));
      // no-store: the Task has just changed, the browser must not answer from its cache.
      const now = await fhir(`Task/${encodeURIComponent(task.id)}`, { cache: "no-store" });
      result(out, "ok", el("p", {}, `Case file loaded; the case is now ${now.status} · ${codeText(now.businessStatus)}.`));
      const status = document.getElementById("case-status");
      if (status) status.textContent = `${now.status} · ${codeText(now.businessStatus)}`;
      await onStarted(now);
    } catch (err) {
      result(out, "error", ...problemContent(err));
    }
  };
  const label = task.status === "accepted" ? "Start review" : "Open the case file";
  return card("review", "Case file",
    el("p", {}, task.status === "accepted" ? "Pulling the case file starts your review." : "The case document as the server composes it for you."),
    el("button", { type: "button", id: "start-review", onclick: start }, label), out, view);
}

function declineCard(task) {
  const reason = el("textarea", { id: "decline-reason", name: "reason", rows: "2", required: true });
  const out = el("div", { hidden: true });
  const form = el("form", { id: "decline-form", novalidate: true },
    field("Reason for declining (required)", reason, "The case goes to the next expert in the ranking."),
    el("button", { type: "submit" }, "Decline"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!reason.value.trim()) {
      reason.setAttribute("aria-invalid", "true");
      result(out, "error", el("p", {}, "Give a reason for declining."));
      reason.focus();
      return;
    }
    reason.removeAttribute("aria-invalid");
    try {
      await post(`Task/${encodeURIComponent(task.id)}/$decline`, { resourceType: "Parameters", parameter: [{ name: "reason", valueString: reason.value.trim() }] });
      result(out, "ok", el("p", {}, "Declined: the case has left your queue."), el("p", {}, el("a", { href: "/app/queue.html" }, "Back to my queue")));
    } catch (err) {
      result(out, "error", ...problemContent(err));
    }
  });
  return card("decline", "Decline the case", form);
}

function questionCard(task, requestId) {
  const text = el("textarea", { id: "question-text", name: "question", rows: "3", required: true });
  const out = el("div", { hidden: true });
  const form = el("form", { id: "question-form", novalidate: true },
    field("Your question to the clinic", text, "The case waits (on hold, the clock paused) until the clinic answers."),
    el("button", { type: "submit" }, "Ask the question"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!text.value.trim()) {
      text.setAttribute("aria-invalid", "true");
      result(out, "error", el("p", {}, "Write the question first."));
      text.focus();
      return;
    }
    try {
      const c = await post("Communication", {
        resourceType: "Communication", status: "completed", sent: new Date().toISOString(),
        category: [{ coding: [{ system: CS_COMMUNICATION, code: "information-request", display: "Information request" }] }],
        basedOn: [{ reference: `ServiceRequest/${requestId}` }], subject: task.for,
        recipient: task.requester ? [task.requester] : undefined,
        payload: [{ contentString: text.value.trim() }],
      });
      result(out, "ok", el("p", {}, `Question sent (Communication/${c.id}).`));
      reload();
    } catch (err) {
      result(out, "error", ...problemContent(err));
    }
  });
  return card("ask", "Ask the clinic a question", form);
}

async function expansion(url) {
  const vs = await fhir(`ValueSet/$expand?url=${encodeURIComponent(url)}`);
  return (vs.expansion && vs.expansion.contains) || [];
}
const outcomeCodes = () => expansion(OUTCOME_VS);

// A coded finding: the condition the opinion arrived at, from the guide's covered-serious-
// conditions value set, as a contained Observation (LOINC 29308-4 Diagnosis) in `result`. The
// report profile constrains no result Observation, so free-text findings stay `valueString`.
const CONDITIONS_VS = "https://consilium.health/fhir/ValueSet/covered-serious-conditions";
const DIAGNOSIS = { coding: [{ system: "http://loinc.org", code: "29308-4", display: "Diagnosis" }], text: "Diagnosis (coded finding)" };
const isCoded = (o) => o.valueCodeableConcept && ((o.code && o.code.coding) || []).some((c) => c.code === "29308-4");

/** The report the form describes (the README's report.json shape; findings as contained Observations). */
export function reportResource(task, requestId, form, outcomes, conditions = [], previous = null) {
  const picked = outcomes.filter((c) => form.querySelector(`input[name=outcome][value="${CSS.escape(c.code)}"]`).checked);
  const findings = form.querySelector("#report-findings").value.split("\n").map((l) => l.trim()).filter(Boolean);
  const contained = findings.map((f, i) => ({
    resourceType: "Observation", id: `finding-${i + 1}`, status: "final",
    code: { text: "Finding" }, subject: task.for, valueString: f,
  }));
  const condition = conditions.find((c) => c.code === (form.querySelector("#report-condition") || {}).value);
  if (condition) {
    contained.push({
      resourceType: "Observation", id: `finding-${contained.length + 1}`, status: "final", code: DIAGNOSIS, subject: task.for,
      valueCodeableConcept: { coding: [{ system: condition.system, code: condition.code, display: condition.display }] },
    });
  }
  const status = previous ? "amended" : form.querySelector("input[name=status]:checked").value;
  const report = {
    resourceType: "DiagnosticReport",
    meta: { profile: [REPORT_PROFILE] },
    basedOn: [{ reference: `ServiceRequest/${requestId}` }],
    status,
    category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0074", code: "OTH", display: "Other" }] }],
    code: { coding: [{ system: "http://loinc.org", code: "11488-4", display: "Consult note" }], text: "Second medical opinion report" },
    subject: task.for,
  };
  if (previous) {
    // An amendment is a new version of the same report: its id, performer and issue date stay;
    // the server renders a new PDF (the old presentedForm is left out, the server's goes first).
    for (const k of ["id", "performer", "effectiveDateTime", "effectivePeriod", "identifier", "code", "category"]) {
      if (previous[k] !== undefined) report[k] = previous[k];
    }
    report.meta = { profile: (previous.meta && previous.meta.profile) || [REPORT_PROFILE] };
  }
  if (contained.length) {
    report.contained = contained;
    report.result = contained.map((o) => ({ reference: `#${o.id}` }));
  }
  const conclusion = form.querySelector("#report-conclusion").value.trim();
  if (conclusion) report.conclusion = conclusion;
  if (picked.length) report.conclusionCode = picked.map((c) => ({ coding: [{ system: c.system, code: c.code, display: c.display }] }));
  return report;
}

/** The report form: a new report, or (with `previous`) the amendment of a filed final one. */
async function reportCard(task, requestId, previous = null) {
  let outcomes = [];
  let conditions = [];
  let codesNote = null;
  try {
    [outcomes, conditions] = await Promise.all([outcomeCodes(), expansion(CONDITIONS_VS).catch(() => [])]);
  } catch (err) {
    codesNote = el("p", { class: "problem-text" }, `Outcome codes not available (${err.status || "error"}): ${err.message}`);
  }
  const had = new Set(((previous && previous.conclusionCode) || []).flatMap((cc) => (cc.coding || []).map((c) => c.code)));
  const prevFindings = ((previous && previous.contained) || []).filter((o) => o.valueString !== undefined).map((o) => o.valueString);
  const prevCondition = (((previous && previous.contained) || []).find(isCoded) || {}).valueCodeableConcept;
  const out = el("div", { id: "report-result", hidden: true, tabindex: "-1" });
  const statusSet = previous
    ? el("p", { id: "report-status-amended" }, `Status: amended (the filed report is ${previous.status}; the clinic sees the change as a change).`)
    : el("fieldset", {}, el("legend", {}, "Status"),
      ["preliminary", "final"].map((s) => el("label", { class: "choice" },
        el("input", { type: "radio", name: "status", value: s, id: `report-status-${s}`, checked: s === "preliminary" }), ` ${s}`)));
  const outcomeSet = el("fieldset", { id: "report-outcomes" }, el("legend", {}, "Outcome (a final report needs at least one)"),
    codesNote, outcomes.map((c) => el("label", { class: "choice" },
      el("input", { type: "checkbox", name: "outcome", value: c.code, id: `outcome-${c.code}`, checked: had.has(c.code) }), ` ${c.display || c.code}`)));
  const conclusion = el("textarea", { id: "report-conclusion", name: "conclusion", rows: "5" });
  conclusion.value = (previous && previous.conclusion) || "";
  const findings = el("textarea", { id: "report-findings", name: "findings", rows: "3" });
  findings.value = prevFindings.join("\n");
  const prevCode = prevCondition && coding(prevCondition).code;
  const condition = el("select", { id: "report-condition", name: "condition" },
    el("option", { value: "" }, "— none —"),
    conditions.map((c) => el("option", { value: c.code, selected: c.code === prevCode }, c.display || c.code)));
  const form = el("form", { id: "report-form", novalidate: true, "data-mode": previous ? "amend" : "new" },
    statusSet, outcomeSet,
    field("Conclusion", conclusion, "The opinion as the clinic will read it."),
    field("Findings (one per line)", findings, "Each line becomes a result of the report."),
    conditions.length ? field("Coded finding: diagnosis", condition, "From the guide's covered serious conditions; a coded result of the report.") : null,
    el("button", { type: "submit", id: "report-submit" }, previous ? "Check and file the amendment" : "Check and file the report"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const report = reportResource(task, requestId, form, outcomes, conditions, previous);
    try {
      const mode = previous ? "update" : "create";
      const oo = await post(previous ? `DiagnosticReport/${encodeURIComponent(previous.id)}/$validate` : "DiagnosticReport/$validate", {
        // mode in the body: the server refuses it in a POST URL
        resourceType: "Parameters", parameter: [{ name: "mode", valueCode: mode }, { name: "resource", resource: report }],
      });
      const errors = (oo.issue || []).filter((i) => i.severity === "error" || i.severity === "fatal");
      if (errors.length) {
        result(out, "error", el("p", {}, `The server would refuse this ${previous ? "amendment" : "report"}; nothing was filed:`), issueList(oo.issue, "report-issues"));
        out.focus();
        return;
      }
      const saved = previous
        ? await fhir(`DiagnosticReport/${encodeURIComponent(previous.id)}`, {
          method: "PUT", body: JSON.stringify(report),
          // The version the expert amended: a concurrent change is a 412, not silently lost.
          headers: { ...JSON_HEADERS, ...(previous.meta && previous.meta.versionId ? { "If-Match": `W/"${previous.meta.versionId}"` } : {}) },
        })
        : await post("DiagnosticReport", report);
      const version = saved.meta && saved.meta.versionId ? `, version ${saved.meta.versionId}` : "";
      result(out, "ok", el("p", {}, `${previous ? "Amendment" : "Report"} filed (${saved.status}, DiagnosticReport/${saved.id}${version}).`));
      reload();
    } catch (err) {
      result(out, "error", ...problemContent(err));
      out.focus();
    }
  });
  return card("report-form-card", previous ? "Amend the report" : "File the report", form);
}

/** The assigned expert's amendment card on a completed case: its latest final/amended report. */
async function amendCard(task, requestId) {
  const b = await fhir(`DiagnosticReport?based-on=ServiceRequest/${encodeURIComponent(requestId)}&_count=20`, { cache: "no-store" });
  const filed = matches(b).filter((r) => ["final", "amended", "corrected"].includes(r.status));
  if (!filed.length) return null;
  filed.sort((x, y) => String((y.meta && y.meta.lastUpdated) || "").localeCompare(String((x.meta && x.meta.lastUpdated) || "")));
  return reportCard(task, requestId, filed[0]);
}

// ---- clinic: answer open questions
// The reply's sender, as the README's reply.json names it: the user's PractitionerRole (a
// specialist's binding, else a clinician's fhirUser); none when the user has no role resource.
function sender(claims) {
  if (claims.prole) return { reference: `PractitionerRole/${claims.prole}` };
  return String(claims.fhirUser || "").startsWith("PractitionerRole/") ? { reference: claims.fhirUser } : undefined;
}

function answerForm(question, claims) {
  const text = el("textarea", { id: `answer-${question.id}`, name: "answer", rows: "3", required: true });
  const out = el("div", { hidden: true });
  const asked = (question.payload || []).map((p) => p.contentString || "").join(" ");
  const form = el("form", { class: "answer-form", "data-question": question.id, novalidate: true },
    el("blockquote", {}, asked),
    field("Your answer", text), el("button", { type: "submit" }, "Send the answer"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!text.value.trim()) {
      text.setAttribute("aria-invalid", "true");
      result(out, "error", el("p", {}, "Write the answer first."));
      text.focus();
      return;
    }
    try {
      await post("Communication", {
        resourceType: "Communication", status: "completed", sent: new Date().toISOString(),
        inResponseTo: [{ reference: `Communication/${question.id}` }],
        subject: question.subject,
        sender: sender(claims),
        payload: [{ contentString: text.value.trim() }],
      });
      result(out, "ok", el("p", {}, "Answer sent."));
      reload();
    } catch (err) {
      result(out, "error", ...problemContent(err));
    }
  });
  return form;
}

async function answersCard(requestId, claims) {
  const b = await fhir(`Communication?based-on=ServiceRequest/${encodeURIComponent(requestId)}&_count=100`);
  const msgs = matches(b);
  const answered = new Set(msgs.flatMap((c) => (c.inResponseTo || []).map(refId)));
  const open = msgs.filter((c) => !(c.inResponseTo || []).length && !answered.has(c.id));
  if (!open.length) return null;
  return card("answer", "Answer the expert's questions", open.map((q) => answerForm(q, claims)));
}

/** The action cards for this user on this case (none for coordinators and insurers, yet). */
export async function actionsFor(task, requestId, claims) {
  const open = ["accepted", "in-progress", "on-hold"].includes(task.status);
  const owner = claims.role === "specialist" && claims.prole && task.owner && task.owner.reference === `PractitionerRole/${claims.prole}`;
  if (owner && task.status === "completed") {
    const c = await amendCard(task, requestId);
    return c ? [c] : [];
  }
  if (!open) return [];
  if (claims.role === "specialist" && claims.prole && task.owner && task.owner.reference === `PractitionerRole/${claims.prole}`) {
    // The question and report forms come once the review has started (the first pull).
    const later = el("div", { id: "review-actions" });
    let shown = false;
    const showReviewActions = async (now) => {
      if (shown || now.status === "accepted") return;
      shown = true;
      later.replaceChildren(questionCard(now, requestId), await reportCard(now, requestId));
      const decline = document.getElementById("decline");
      if (decline) decline.remove();
    };
    const cards = [reviewCard(task, requestId, showReviewActions)];
    if (task.status === "accepted") cards.push(declineCard(task));
    cards.push(later);
    await showReviewActions(task);
    return cards;
  }
  if (claims.role === "clinic") {
    const c = await answersCard(requestId, claims);
    return c ? [c] : [];
  }
  return [];
}
