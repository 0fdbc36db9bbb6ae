// Clinic: submit a case the way an EHR does (docs/cases.md, docs/tracker.md "Submitting and
// claiming"): one transaction Bundle with the Condition, the uploaded documents
// (DocumentReference, base64 attachment) and the ServiceRequest naming the patient's Coverage,
// found by group policy + certificate number. Each resource is checked with $validate first;
// the server opens the case (eligibility, matching) in the same transaction, and the page then
// shows the new case. Every refusal is the server's OperationOutcome, shown as it is.
import { Problem, codeText, el, fhir, fhirBase, matches, requireSession, session, showProblem } from "/app/app.js";
import { issueList } from "/app/actions.js";

const GUIDE = "https://consilium.health/fhir";
const CS_CONDITIONS = `${GUIDE}/CodeSystem/covered-serious-conditions`;
const VS_CONDITIONS = `${GUIDE}/ValueSet/covered-serious-conditions`;
const VS_SPECIALTIES = `${GUIDE}/ValueSet/expert-specialties`;
const PROFILE_REQUEST = `${GUIDE}/StructureDefinition/second-opinion-request`;
const SNOMED = "http://snomed.info/sct";
// The server refuses a request body over 10 MB (CONSILIUM_MAX_BODY_BYTES) and base64 adds a
// third, so the files of one submission stay under 7 MB.
export const MAX_FILE = 5 * 1024 * 1024;
export const MAX_TOTAL = 7 * 1024 * 1024;
const FILE_TYPES = ["application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "image/tiff"];
const PRIORITIES = [["routine", "Routine"], ["urgent", "Urgent"], ["asap", "As soon as possible"], ["stat", "Immediately (stat)"]];
const JSON_HEADERS = { "Content-Type": "application/fhir+json" };

const state = { patient: null, coverage: null, requester: null };

const mb = (n) => (n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${Math.round(n / 1024)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`);

function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A labelled control: label, control and optional hint (aria-describedby). */
function field(label, control, hint) {
  const parts = [el("label", { for: control.id }, label)];
  if (hint) {
    control.setAttribute("aria-describedby", `${control.id}-hint`);
    parts.push(el("div", { class: "muted", id: `${control.id}-hint` }, hint));
  }
  return el("div", { class: "field" }, ...parts, control);
}

/** A result region: role=status for news, role=alert for errors (focused, so it is read out). */
function say(box, kind, ...content) {
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.className = `result result-${kind}`;
  box.replaceChildren(...content.filter(Boolean));
  box.hidden = false;
  if (kind === "error") box.focus();
}

function refusal(err, what) {
  const issues = err instanceof Problem ? err.issues : [];
  const head = `${what} refused${err.status ? ` (${err.status})` : ""}`;
  return issues.length ? [el("p", {}, `${head}:`), issueList(issues)] : [el("p", {}, `${head}: ${err.message || err}`)];
}

const patientName = (p) => {
  const n = (p.name || [])[0] || {};
  return n.text || [...(n.given || []), n.family].filter(Boolean).join(" ") || p.id;
};

function invalid(control, bad) {
  if (bad) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
  return bad;
}

// ---- 1. patient
async function findPatients(q, list) {
  const query = q.trim() ? `Patient?name=${encodeURIComponent(q.trim())}&_count=50` : "Patient?_count=50";
  const found = matches(await fhir(query));
  if (!found.length) {
    list.replaceChildren(el("p", { id: "patient-none" }, q.trim() ? `No patient of your clinic is named "${q.trim()}".` : "Your clinic has no patients on the server."));
    return;
  }
  list.replaceChildren(el("fieldset", { id: "patient-choices" },
    el("legend", {}, `Your clinic's patients (${found.length}${q.trim() ? ` named "${q.trim()}"` : ""})`),
    found.map((p) => el("label", { class: "choice" },
      el("input", {
        type: "radio", name: "patient", value: p.id, "data-name": patientName(p),
        onchange: () => {
          state.patient = { id: p.id, name: patientName(p) };
          state.coverage = null;
          document.getElementById("coverage-result").hidden = true;
          loadResults(p.id).catch(showProblem);
        },
      }),
      ` ${patientName(p)}${p.birthDate ? ` (born ${p.birthDate})` : ""}`))));
}

// ---- 5. investigations: the patient's final results already on the server, and a new one
async function loadResults(patientId) {
  const box = document.getElementById("existing-results");
  const q = `subject=Patient/${encodeURIComponent(patientId)}&status=final,amended,corrected&_count=50`;
  const [reports, observations] = await Promise.all([fhir(`DiagnosticReport?${q}`), fhir(`Observation?${q}`)]);
  const found = [...matches(reports), ...matches(observations)];
  box.replaceChildren(found.length
    ? el("fieldset", { id: "result-choices" }, el("legend", {}, `Final results of ${state.patient.name} on the server (${found.length})`),
      found.map((r) => el("label", { class: "choice" },
        el("input", { type: "checkbox", name: "result", value: `${r.resourceType}/${r.id}`, checked: true }),
        ` ${r.resourceType}: ${codeText(r.code) || r.id}${r.effectiveDateTime ? ` (${r.effectiveDateTime.slice(0, 10)})` : ""}`)))
    : el("p", { id: "no-results" }, `${state.patient.name} has no final investigation results on the server: add the report below.`));
}

// ---- 2. coverage
async function findCoverage(group, cert, box) {
  state.coverage = null;
  const missing = [invalid(group, !group.value.trim()), invalid(cert, !cert.value.trim())];
  if (!state.patient) {
    say(box, "error", el("p", {}, "Choose the patient first (step 1)."));
    return;
  }
  if (missing.some(Boolean)) {
    say(box, "error", el("p", {}, "Give both the group policy number and the certificate number, as on the member's card."));
    return;
  }
  const q = new URLSearchParams({
    beneficiary: `Patient/${state.patient.id}`, "class-value:exact": group.value.trim(), identifier: cert.value.trim(),
  });
  let found;
  try {
    found = matches(await fhir(`Coverage?${q}`));
  } catch (err) {
    say(box, "error", ...refusal(err, "The cover lookup was"));
    return;
  }
  if (found.length !== 1) {
    invalid(group, true);
    invalid(cert, true);
    say(box, "error", el("p", { id: "coverage-not-found" },
      found.length ? `${found.length} covers of ${state.patient.name} match: ask the insurer which one applies.`
        : `No cover of ${state.patient.name} has group policy ${group.value.trim()} and certificate ${cert.value.trim()}. Check both numbers on the member's card.`));
    return;
  }
  const c = found[0];
  state.coverage = c;
  const cls = (code) => ((c.class || []).find((k) => ((k.type && k.type.coding) || []).some((x) => x.code === code)) || {}).value || "—";
  const period = c.period ? `${c.period.start || "…"} to ${c.period.end || "…"}` : "no period";
  say(box, "ok", el("p", { id: "coverage-found", "data-coverage": c.id },
    `Cover found: Coverage/${c.id} · ${c.status} · group ${cls("group")} · plan ${cls("plan")} · ${((c.payor || [])[0] || {}).reference || "no payor"} · ${period}`),
  c.status !== "active" ? el("p", {}, "This cover is not active: the server's eligibility check will say whether it applies.") : null);
}

// ---- 4. documents
function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(",", 2)[1] || "");
    r.onerror = () => reject(new Problem(0, `${file.name} could not be read.`));
    r.readAsDataURL(file);
  });
}

function fileProblems(files) {
  const out = [];
  let total = 0;
  for (const f of files) {
    total += f.size;
    if (!FILE_TYPES.includes(f.type)) out.push(`${f.name}: only PDF and image files can be attached (this is ${f.type || "an unknown type"}).`);
    if (f.size > MAX_FILE) out.push(`${f.name} is ${mb(f.size)}: the limit is ${mb(MAX_FILE)} a file.`);
  }
  if (total > MAX_TOTAL) out.push(`The files come to ${mb(total)}: the limit is ${mb(MAX_TOTAL)} in all.`);
  return out;
}

function showFiles(input, list) {
  const files = [...input.files];
  const problems = fileProblems(files);
  invalid(input, problems.length > 0);
  list.replaceChildren(...files.map((f) => el("li", {}, `${f.name} (${f.type || "unknown type"}, ${mb(f.size)})`)),
    ...problems.map((p) => el("li", { class: "issue-error" }, p)));
}

// ---- the submission
async function buildBundle(form, conditions) {
  const patient = { reference: `Patient/${state.patient.id}`, display: state.patient.name };
  const requester = { reference: state.requester };
  const chosen = conditions.find((c) => c.code === form.condition.value);
  const diagnosis = form.diagnosis.value.trim();
  const now = new Date().toISOString();
  const condUrl = uuid();
  const condition = {
    resourceType: "Condition",
    clinicalStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/condition-clinical", code: "active" }] },
    verificationStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/condition-ver-status", code: "confirmed" }] },
    category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/condition-category", code: "encounter-diagnosis", display: "Encounter Diagnosis" }] }],
    code: { coding: [{ system: chosen.system, code: chosen.code, display: chosen.display }], text: diagnosis },
    subject: patient, recordedDate: now.slice(0, 10), asserter: requester,
  };
  const docs = [];
  for (const f of [...form.documents.files]) {
    docs.push({
      fullUrl: uuid(),
      resource: {
        resourceType: "DocumentReference", status: "current",
        type: { text: "Document from the requesting clinic" },
        subject: patient, date: now, author: [requester], description: f.name,
        content: [{ attachment: { contentType: f.type, title: f.name, size: f.size, data: await readFile(f) } }],
      },
    });
  }
  const results = [...form.querySelectorAll("input[name=result]:checked")].map((c) => ({ reference: c.value }));
  const investigation = form.investigation.value.trim();
  if (investigation) {
    docs.unshift({
      fullUrl: uuid(),
      resource: {
        resourceType: "DiagnosticReport", status: "final", code: { text: investigation },
        subject: patient, effectiveDateTime: form.investigationDate.value || undefined, issued: now,
        performer: [requester], conclusion: form.conclusion.value.trim() || undefined,
      },
    });
    for (const k of ["effectiveDateTime", "conclusion"]) if (docs[0].resource[k] === undefined) delete docs[0].resource[k];
  }
  const specialty = form.specialty.value ? form.specialty.selectedOptions[0] : null;
  const request = {
    resourceType: "ServiceRequest", meta: { profile: [PROFILE_REQUEST] }, status: "active", intent: "order",
    category: [{ coding: [{ system: SNOMED, code: "3457005", display: "Patient referral" }] }],
    priority: form.priority.value,
    code: { coding: [{ system: SNOMED, code: "11429006", display: "Consultation" }], text: "Second medical opinion" },
    subject: patient, authoredOn: now, requester,
    performerType: specialty ? { coding: [{ system: SNOMED, code: specialty.value, display: specialty.textContent }] } : undefined,
    reasonCode: [
      { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0336", code: "S", display: "Second Opinion" }] },
      { coding: [{ system: chosen.system, code: chosen.code, display: chosen.display }], text: diagnosis },
    ],
    reasonReference: [{ reference: condUrl }],
    insurance: [{ reference: `Coverage/${state.coverage.id}` }],
    supportingInfo: docs.length || results.length
      ? [...docs.map((d) => ({ reference: d.fullUrl, display: d.resource.description || investigation })), ...results] : undefined,
    note: [{ text: form.question.value.trim() }],
  };
  if (!request.performerType) delete request.performerType;
  if (!request.supportingInfo) delete request.supportingInfo;
  const entries = [{ fullUrl: condUrl, resource: condition }, ...docs, { fullUrl: uuid(), resource: request }];
  return {
    resourceType: "Bundle", type: "transaction",
    entry: entries.map((e) => ({ ...e, request: { method: "POST", url: e.resource.resourceType } })),
  };
}

/** Client-side checks: every missing field marked aria-invalid and named. */
function localProblems(form) {
  const out = [];
  if (!state.patient) out.push("Choose the patient (step 1).");
  if (!state.coverage) out.push("Find the patient's cover by group policy and certificate number (step 2).");
  if (invalid(form.condition, !form.condition.value)) out.push("Choose the covered condition (step 3).");
  if (invalid(form.diagnosis, !form.diagnosis.value.trim())) out.push("State the diagnosis (step 3).");
  if (invalid(form.question, !form.question.value.trim())) out.push("Write the question for the expert (step 4).");
  const partial = !form.investigation.value.trim() && (form.conclusion.value.trim() || form.investigationDate.value);
  if (invalid(form.investigation, partial)) out.push("Name the investigation whose result you give (step 5).");
  const files = fileProblems([...form.documents.files]);
  invalid(form.documents, files.length > 0);
  return out.concat(files);
}

/** $validate (mode create) of every entry: the issues of severity error or fatal, labelled. */
async function validateAll(bundle) {
  const checks = await Promise.all(bundle.entry.map(async (e) => {
    const r = e.resource;
    const label = r.resourceType === "DocumentReference" ? `Document "${r.description}"` : r.resourceType === "DiagnosticReport" ? `Investigation "${codeText(r.code)}"` : r.resourceType;
    const outcome = await fhir(`${e.resource.resourceType}/$validate`, {
      method: "POST", headers: JSON_HEADERS,
      body: JSON.stringify({ resourceType: "Parameters", parameter: [{ name: "mode", valueCode: "create" }, { name: "resource", resource: e.resource }] }),
    });
    return (outcome.issue || []).filter((i) => ["error", "fatal"].includes(i.severity))
      .map((i) => ({ ...i, diagnostics: `${label}: ${i.diagnostics || i.code}` }));
  }));
  return checks.flat();
}

/** POST the Bundle to the base itself (app.js fhir() adds a "/" the server's base does not take). */
async function postTransaction(bundle) {
  const s = session();
  if (!s) throw new Problem(401, "Your sign-in has expired: sign in again and resubmit.");
  const r = await fetch(fhirBase(), {
    method: "POST", body: JSON.stringify(bundle),
    headers: { ...JSON_HEADERS, Accept: "application/fhir+json", Authorization: `Bearer ${s.token}` },
  });
  const body = await r.json().catch(() => null);
  if (r.ok) return body;
  const issues = (body && body.resourceType === "OperationOutcome" && body.issue) || [];
  const text = issues.map((i) => i.diagnostics || (i.details && i.details.text) || i.code).filter(Boolean).join("; ");
  throw new Problem(r.status, text || r.statusText, issues);
}

async function submit(form, conditions, box, button) {
  const problems = localProblems(form);
  if (problems.length) {
    say(box, "error", el("p", {}, "The case is not ready to submit:"), el("ul", { id: "submit-problems" }, problems.map((p) => el("li", {}, p))));
    return;
  }
  button.disabled = true;
  try {
    say(box, "ok", el("p", {}, "Checking the case with the server ($validate)…"));
    const bundle = await buildBundle(form, conditions);
    let issues;
    try {
      issues = await validateAll(bundle);
    } catch (err) {
      say(box, "error", ...refusal(err, "The check was"));
      return;
    }
    if (issues.length) {
      say(box, "error", el("p", {}, "The server's check ($validate) found problems; nothing was submitted:"), issueList(issues, "submit-issues"));
      return;
    }
    say(box, "ok", el("p", {}, "Submitting the case…"));
    let response;
    try {
      response = await postTransaction(bundle);
    } catch (err) {
      say(box, "error", ...refusal(err, "The submission was"));
      return;
    }
    const loc = (response.entry || []).map((e) => (e.response && e.response.location) || "").find((l) => l.startsWith("ServiceRequest/"));
    const requestId = loc ? loc.split("/")[1] : null;
    const tasks = requestId ? matches(await fhir(`Task?based-on=ServiceRequest/${encodeURIComponent(requestId)}&code=http://hl7.org/fhir/CodeSystem/task-code|fulfill`)) : [];
    if (!tasks.length) {
      say(box, "error", el("p", {}, `The request was stored (${loc || "no location"}) but the server opened no case for it.`));
      return;
    }
    say(box, "ok", el("p", {}, `Submitted: case Task/${tasks[0].id}. Opening it…`));
    location.assign(`/app/case.html?task=${encodeURIComponent(tasks[0].id)}`);
  } finally {
    button.disabled = false;
  }
}

async function main() {
  const s = requireSession();
  if (!s) return;
  const view = document.getElementById("view");
  if (s.claims.role !== "clinic") {
    view.replaceChildren(el("p", { id: "not-clinic" }, "Only a clinic submits cases; your role is ", s.claims.role || "none", "."));
    return;
  }
  state.requester = s.claims.fhirUser && s.claims.fhirUser.startsWith("PractitionerRole/") ? s.claims.fhirUser : null;
  if (!state.requester) {
    view.replaceChildren(el("p", {}, "Your account acts for no PractitionerRole, so it cannot be the requester of a case."));
    return;
  }
  const [condVs, specVs] = await Promise.all([
    fhir(`ValueSet/$expand?url=${encodeURIComponent(VS_CONDITIONS)}`),
    fhir(`ValueSet/$expand?url=${encodeURIComponent(VS_SPECIALTIES)}`),
  ]);
  // The guide's own condition codes (the value set also holds SNOMED CT and ICD-10 codes that map to them).
  const conditions = ((condVs.expansion || {}).contains || []).filter((c) => c.system === CS_CONDITIONS);
  const specialties = ((specVs.expansion || {}).contains || []);

  const search = el("input", { id: "patient-search", type: "search", autocomplete: "off" });
  const patients = el("div", { id: "patients" });
  const group = el("input", { id: "group", name: "group", autocomplete: "off" });
  const cert = el("input", { id: "certificate", name: "certificate", autocomplete: "off" });
  const covBox = el("div", { id: "coverage-result", tabindex: "-1", hidden: true });
  const files = el("input", { id: "documents", name: "documents", type: "file", multiple: true, accept: FILE_TYPES.join(",") });
  const fileList = el("ul", { id: "file-list" });
  files.addEventListener("change", () => showFiles(files, fileList));
  const box = el("div", { id: "submit-result", tabindex: "-1", hidden: true });
  const button = el("button", { type: "submit", id: "submit-case" }, "Check and submit the case");

  const form = el("form", { id: "submit-form", novalidate: true },
    el("section", { class: "card", "aria-labelledby": "s1" }, el("h2", { id: "s1" }, "1. Patient"),
      field("Search your patients by name", search, "Leave empty to list them all."),
      el("button", { type: "button", id: "find-patients", onclick: () => findPatients(search.value, patients).catch(showProblem) }, "Find patients"),
      patients),
    el("section", { class: "card", "aria-labelledby": "s2" }, el("h2", { id: "s2" }, "2. Cover"),
      el("div", { class: "grid2" },
        field("Group policy number", group, "The group (policy) number on the member's card, e.g. AHA-G-6021."),
        field("Certificate number", cert, "The member's certificate number, e.g. AHA-6021-2881.")),
      el("button", { type: "button", id: "find-coverage", onclick: () => findCoverage(group, cert, covBox) }, "Find the cover"),
      covBox),
    el("section", { class: "card", "aria-labelledby": "s3" }, el("h2", { id: "s3" }, "3. Diagnosis"),
      field("Covered condition", el("select", { id: "condition", name: "condition", required: true },
        el("option", { value: "" }, "Choose…"), conditions.map((c) => el("option", { value: c.code }, c.display || c.code))),
      "From the guide's covered-serious-conditions value set."),
      field("Stated diagnosis", el("input", { id: "diagnosis", name: "diagnosis", required: true }), "As the treating consultant states it, e.g. the stage.")),
    el("section", { class: "card", "aria-labelledby": "s4" }, el("h2", { id: "s4" }, "4. Request"),
      field("Question for the expert", el("textarea", { id: "question", name: "question", rows: "4", required: true })),
      el("div", { class: "grid2" },
        field("Specialty", el("select", { id: "specialty", name: "specialty" },
          el("option", { value: "" }, "Let the service choose"), specialties.map((c) => el("option", { value: c.code }, c.display || c.code)))),
        field("Priority", el("select", { id: "priority", name: "priority" }, PRIORITIES.map(([v, t]) => el("option", { value: v }, t)))))),
    el("section", { class: "card", "aria-labelledby": "s5" }, el("h2", { id: "s5" }, "5. Investigations"),
      el("p", { class: "muted" }, "The eligibility check needs the final results of the investigations (reports or results, not letters alone)."),
      el("div", { id: "existing-results" }, el("p", {}, "Choose the patient to see their results.")),
      field("Investigation", el("input", { id: "investigation", name: "investigation" }), "Add a final investigation report, e.g. \"CT chest, abdomen and pelvis\"."),
      el("div", { class: "grid2" },
        field("Date of the investigation", el("input", { id: "investigationDate", name: "investigationDate", type: "date" })),
        field("Result", el("textarea", { id: "conclusion", name: "conclusion", rows: "2" })))),
    el("section", { class: "card", "aria-labelledby": "s6" }, el("h2", { id: "s6" }, "6. Documents"),
      field("Documents (PDF or images)", files, `PDF, PNG, JPEG, GIF, WebP or TIFF; up to ${mb(MAX_FILE)} a file and ${mb(MAX_TOTAL)} in all. Investigation results and the consultant's letter make the file complete.`),
      fileList),
    box, button);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit(form, conditions, box, button).catch((err) => say(box, "error", ...refusal(err, "The submission was")));
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      findPatients(search.value, patients).catch(showProblem);
    }
  });
  view.replaceChildren(form);
  await findPatients("", patients);
}

main().catch(showProblem);
