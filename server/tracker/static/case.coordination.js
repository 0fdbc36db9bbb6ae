// The case page's coordination services (docs/coordination.md): the Tasks partOf the case Task.
// Everyone who may read them sees the list (the server narrows it: an insurer gets only a
// redacted fee-negotiation); a coordinator moves a service's status, assigns it and records its
// output; the case's clinic requests a service and cancels one the coordinator has not started.
// The page offers only the lifecycle's next moves, but the server decides: a move that has
// become wrong in the meantime (422) or a party the server refuses (403) is shown as it says.
import { Problem, codeText, coding, due, el, fhir, formatDate, matches } from "/app/app.js";

const CS_SERVICE = "https://consilium.health/fhir/CodeSystem/coordination-service";
const VS_SERVICE = "https://consilium.health/fhir/ValueSet/coordination-service";
const EXPERT_PROFILE = "https://consilium.health/fhir/StructureDefinition/second-opinion-expert";
// resources/coordination.py TRANSITIONS: what the page offers (the server checks it again).
const NEXT = {
  requested: ["accepted", "rejected", "cancelled"],
  accepted: ["in-progress", "cancelled", "failed"],
  "in-progress": ["completed", "cancelled", "failed"],
};
const CLINIC_CANCELS_FROM = ["requested", "accepted"];
const CLOSED_CASE = ["completed", "rejected", "cancelled", "failed", "entered-in-error"];

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function labelled(label, control) {
  control.id = control.id || nextId("co");
  return el("div", { class: "field" }, el("label", { for: control.id }, label), control);
}

function show(box, kind, ...content) {
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.classList.remove("result-ok", "result-error");
  box.classList.add("result", `result-${kind}`);
  box.replaceChildren(...content);
  box.hidden = false;
  if (kind === "error") box.focus();
}

const TITLES = { 403: "Not allowed for your organization or role (403)", 422: "The server refused this change (422)" };

/** A refusal as the server gave it: the status, a plain title, every issue's diagnostics. */
function refusal(err) {
  const status = err instanceof Problem ? err.status : 0;
  const issues = err instanceof Problem ? err.issues : [];
  return [
    el("p", {}, el("strong", {}, TITLES[status] || `Refused${status ? ` (${status})` : ""}`)),
    issues.length
      ? el("ul", { class: "issues" }, issues.map((i) => el("li", { "data-severity": i.severity, "data-code": (i.details && coding(i.details).code) || "" },
        `${i.severity}: ${i.diagnostics || (i.details && i.details.text) || i.code}`)))
      : el("p", {}, err.message || String(err)),
  ];
}

const patch = (id, ops) => fhir(`Task/${encodeURIComponent(id)}`, {
  method: "PATCH", headers: { "Content-Type": "application/json-patch+json" }, body: JSON.stringify(ops),
});
const reload = () => setTimeout(() => location.reload(), 600);

const ref = (r) => (r && (r.display || r.reference)) || "—";
const outputs = (t) => (t.output || []).map((o) => `${codeText(o.type) || "output"}: ${o.valueString ?? (o.valueReference && o.valueReference.reference) ?? o.valueDateTime ?? o.valueDate ?? ""}`);
const inputs = (t) => (t.input || []).map((i) => `${codeText(i.type) || "detail"}: ${i.valueString ?? i.valueDate ?? i.valueDateTime ?? i.valueInteger ?? ""}`);

/** The coordinator's form for one service: status, reason, owner, a new output. */
function coordinatorForm(task, owners) {
  const status = el("select", { name: "status", "data-field": "status" },
    el("option", { value: task.status }, `${task.status} (now)`),
    (NEXT[task.status] || []).map((s) => el("option", { value: s }, s)));
  const reason = el("input", { type: "text", name: "reason", "data-field": "reason" });
  const owner = el("select", { name: "owner", "data-field": "owner" },
    owners.map((o) => el("option", { value: o.reference, selected: task.owner && task.owner.reference === o.reference }, o.display)));
  if (task.owner && !owners.some((o) => o.reference === task.owner.reference)) {
    owner.prepend(el("option", { value: task.owner.reference, selected: true }, ref(task.owner)));
  }
  const output = el("input", { type: "text", name: "output", "data-field": "output" });
  const outputType = el("input", { type: "text", name: "output-type", value: "booking reference", "data-field": "output-type" });
  const out = el("div", { hidden: true, tabindex: "-1", class: "co-result" });
  const form = el("form", { class: "co-form", "data-task": task.id, novalidate: true, "aria-label": `Update ${codeText(task.code)}` },
    labelled("Move to", status),
    labelled("Reason (needed to reject or to fail)", reason),
    labelled("Assigned to", owner),
    el("div", { class: "grid2" }, labelled("Output kind", outputType), labelled("Output (booking, reference, answer)", output)),
    el("button", { type: "submit" }, "Save"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const ops = [];
    if (status.value !== task.status) ops.push({ op: "replace", path: "/status", value: status.value });
    if (reason.value.trim()) ops.push({ op: "add", path: "/statusReason", value: { text: reason.value.trim() } });
    if (owner.value && (!task.owner || owner.value !== task.owner.reference)) ops.push({ op: "add", path: "/owner", value: { reference: owner.value } });
    if (output.value.trim()) {
      const o = { type: { text: outputType.value.trim() || "output" }, valueString: output.value.trim() };
      ops.push(task.output ? { op: "add", path: "/output/-", value: o } : { op: "add", path: "/output", value: [o] });
    }
    if (!ops.length) {
      show(out, "error", el("p", {}, "Nothing to save: choose a move, an assignee or an output."));
      return;
    }
    try {
      const saved = await patch(task.id, ops);
      show(out, "ok", el("p", {}, `Saved: ${codeText(saved.code)} is ${saved.status}.`));
      reload();
    } catch (err) {
      show(out, "error", ...refusal(err));
    }
  });
  return form;
}

/** The clinic's cancel of its own request, while the coordinator has not started it. */
function cancelForm(task) {
  const out = el("div", { hidden: true, tabindex: "-1", class: "co-result" });
  const reason = el("input", { type: "text", name: "reason" });
  const form = el("form", { class: "co-cancel", "data-task": task.id, novalidate: true, "aria-label": `Cancel ${codeText(task.code)}` },
    labelled("Why cancel (optional)", reason), el("button", { type: "submit" }, "Cancel this request"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const ops = [{ op: "replace", path: "/status", value: "cancelled" }];
    if (reason.value.trim()) ops.push({ op: "add", path: "/statusReason", value: { text: reason.value.trim() } });
    try {
      await patch(task.id, ops);
      show(out, "ok", el("p", {}, "Request cancelled."));
      reload();
    } catch (err) {
      show(out, "error", ...refusal(err));
    }
  });
  return form;
}

/** Request a service for this case (the clinic for its own case; a coordinator on a member's call). */
async function requestForm(caseTask, role) {
  const vs = await fhir(`ValueSet/$expand?url=${encodeURIComponent(VS_SERVICE)}`);
  // follow-up is the server's own (after the report); a clinic is refused it (422).
  const services = ((vs.expansion && vs.expansion.contains) || []).filter((c) => role === "coordinator" || c.code !== "follow-up");
  const service = el("select", { id: "co-service", name: "service" }, services.map((c) => el("option", { value: c.code }, c.display || c.code)));
  const details = el("textarea", { id: "co-details", name: "details", rows: "2" });
  const dueDate = el("input", { id: "co-due", name: "due", type: "date" });
  const out = el("div", { id: "co-request-result", hidden: true, tabindex: "-1" });
  const form = el("form", { id: "co-request", "data-case": caseTask.id, novalidate: true },
    el("h3", {}, "Request a service"),
    labelled("Service", service), labelled("Details (dates, guests, preferred times)", details),
    labelled("Needed by (optional; else the service's usual time)", dueDate),
    el("button", { type: "submit" }, "Request the service"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const picked = services.find((c) => c.code === service.value) || { code: service.value };
    const task = {
      resourceType: "Task", status: "requested", intent: "order",
      code: { coding: [{ system: picked.system || CS_SERVICE, code: picked.code, display: picked.display }] },
      partOf: [{ reference: `Task/${form.dataset.case}` }],
    };
    if (details.value.trim()) task.input = [{ type: { text: "details" }, valueString: details.value.trim() }];
    if (dueDate.value) task.restriction = { period: { end: dueDate.value } };
    try {
      const saved = await fhir("Task", { method: "POST", headers: { "Content-Type": "application/fhir+json" }, body: JSON.stringify(task) });
      show(out, "ok", el("p", {}, `Requested: ${codeText(saved.code)} (Task/${saved.id}), due ${formatDate(due(saved)) || "—"}.`));
      reload();
    } catch (err) {
      show(out, "error", ...refusal(err));
    }
  });
  return form;
}

/** Who a coordinator may assign a service to: the network's shared queue and its non-expert staff. */
async function ownerChoices(claims) {
  const org = claims.org ? `Organization/${claims.org}` : null;
  const choices = org ? [{ reference: org, display: `The coordinators' queue (${org})` }] : [];
  if (!org) return choices;
  const b = await fhir(`PractitionerRole?organization=${encodeURIComponent(org)}&active=true&_count=100`).catch(() => ({}));
  for (const r of matches(b)) {
    if (((r.meta && r.meta.profile) || []).includes(EXPERT_PROFILE)) continue;  // never an expert
    choices.push({ reference: `PractitionerRole/${r.id}`, display: (r.practitioner && r.practitioner.display) || r.id });
  }
  return choices;
}

function serviceItem(t, claims, owners) {
  const canCancel = claims.role === "clinic" && CLINIC_CANCELS_FROM.includes(t.status);
  return el("li", { class: "service", "data-task": t.id, "data-service": coding(t.code).code || "", "data-status": t.status },
    el("h3", {}, `${codeText(t.code) || "Service"} — `, el("span", { class: "co-status" }, t.status)),
    el("dl", { class: "grid2" },
      el("dt", {}, "Due"), el("dd", {}, formatDate(due(t)) || "—"),
      el("dt", {}, "Assigned to"), el("dd", { class: "co-owner" }, ref(t.owner)),
      el("dt", {}, "Requested by"), el("dd", {}, ref(t.requester)),
      el("dt", {}, "Requested"), el("dd", {}, formatDate(t.authoredOn) || "—")),
    inputs(t).length ? el("p", {}, "Details: ", inputs(t).join("; ")) : null,
    outputs(t).length ? el("p", { class: "co-output" }, "Arranged: ", outputs(t).join("; ")) : null,
    t.statusReason ? el("p", { class: "muted" }, `Reason: ${codeText(t.statusReason)}`) : null,
    claims.role === "coordinator" && NEXT[t.status] ? coordinatorForm(t, owners) : null,
    canCancel ? cancelForm(t) : null);
}

/** The "Coordination services" section's body. */
export async function coordination(caseTask, claims) {
  const b = await fhir(`Task?part-of=Task/${encodeURIComponent(caseTask.id)}&_count=100`);
  const tasks = matches(b).filter((t) => coding(t.code).system === CS_SERVICE)
    .sort((x, y) => String(x.authoredOn || "").localeCompare(String(y.authoredOn || "")));
  const owners = claims.role === "coordinator" ? await ownerChoices(claims) : [];
  const list = tasks.length
    ? el("ul", { class: "services", id: "services" }, tasks.map((t) => serviceItem(t, claims, owners)))
    : el("p", { id: "services" }, "No coordination services requested.");
  const mayRequest = ["clinic", "coordinator"].includes(claims.role) && !CLOSED_CASE.includes(caseTask.status);
  return el("div", {}, list, mayRequest ? await requestForm(caseTask, claims.role) : null);
}
