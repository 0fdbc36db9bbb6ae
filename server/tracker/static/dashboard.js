// Insurer (and coordinator) dashboard from GET /fhir/$second-opinion-stats: counts, rates and
// durations only, never clinical text. Masked cells (small-number suppression) read "fewer than 5".
import { codeText, el, fhir, matches, requireSession, showProblem } from "/app/app.js";
import { MASKED, barChart, histogram, toCsv } from "/app/charts.js";

const code = (cc) => ((cc && cc.coding) || [])[0]?.code || "";
const group = (report, c) => (report.group || []).find((g) => code(g.code) === c) || {};
const pop = (thing, c) => (thing.population || []).find((p) => code(p.code) === c) || {};
const isMasked = (p) => p.count === undefined && (p.extension || []).length > 0;

/** A stratifier's strata as chart rows; `which` is the population code counted. */
export function strataRows(report, groupCode, stratifierCode, which = "initial-population") {
  const s = (group(report, groupCode).stratifier || []).find((x) => code((x.code || [])[0]) === stratifierCode);
  return ((s && s.stratum) || []).map((st) => {
    const p = pop(st, which);
    return { label: codeText(st.value) || code(st.value), value: p.count ?? null, masked: isMasked(p) };
  });
}

function periodsOf(kind, value) {
  if (kind === "month") return [value];
  return Array.from({ length: 12 }, (_, i) => `${value}-${String(i + 1).padStart(2, "0")}`);
}

async function render(form) {
  const kind = form.kind.value;
  const value = kind === "month" ? form.month.value : form.year.value;
  const insurer = form.insurer ? form.insurer.value : "";
  const extra = insurer ? `&insurer=${encodeURIComponent(insurer)}` : "";
  const view = document.getElementById("figures");
  view.replaceChildren(el("p", {}, "Loading…"));
  const report = await fhir(`$second-opinion-stats?period=${encodeURIComponent(value)}${extra}`);
  const median = group(report, "turnaround-median").measureScore;
  const p90 = group(report, "turnaround-p90").measureScore;
  const completed = pop(group(report, "turnaround-median"), "measure-population").count ?? 0;
  const opinions = group(report, "opinions");
  const sla = group(report, "sla-breaches");
  // SLA breaches per month: one call per month of the chosen year (a report is one period).
  const months = periodsOf(kind, value);
  const monthly = kind === "year"
    ? await Promise.all(months.map((m) => fhir(`$second-opinion-stats?period=${m}${extra}`)))
    : [report];
  const slaRows = months.map((m, i) => ({ label: m, value: pop(group(monthly[i], "sla-breaches"), "numerator").count ?? 0, masked: false }));
  const total = pop(group(report, "cases"), "initial-population").count ?? 0;
  const days = (q) => (q && q.value !== undefined ? q.value : null);
  const opinionsText = `${pop(opinions, "numerator").count ?? 0} / ${pop(opinions, "denominator").count ?? 0}` +
    ((pop(opinions, "unlimited-allowance").count || 0) ? ` (+${pop(opinions, "unlimited-allowance").count} unlimited)` : "");
  const figure = (id, label, text) => el("div", {}, el("dt", {}, label), el("dd", { id }, text));
  const summary = el("dl", { class: "figures", id: "summary" },
    figure("fig-cases", "Cases submitted", String(total)),
    figure("fig-median", "Median turnaround", days(median) === null ? "no completed cases" : `${days(median)} business days`),
    figure("fig-p90", "90th percentile turnaround", days(p90) === null ? "no completed cases" : `${days(p90)} business days`),
    figure("fig-sla", "SLA breaches", `${pop(sla, "numerator").count ?? 0} of ${pop(sla, "denominator").count ?? 0}`),
    figure("fig-opinions", "Opinions used / allowed", opinionsText));
  const planRows = strataRows(report, "opinions", "plan", "numerator").map((r, i) => {
    const allowed = strataRows(report, "opinions", "plan", "denominator")[i];
    return { ...r, label: `${r.label} (allowed ${allowed.value ?? 0})` };
  });
  // The turnaround distribution: the server's turnaround-band stratifier (completed cases by
  // business days, half-open bands), the histogram behind the median and p90.
  const bandRows = strataRows(report, "turnaround-median", "turnaround-band").map((r, i, all) => {
    const st = ((group(report, "turnaround-median").stratifier || [])[0] || {}).stratum || [];
    const c = code((st[i] || {}).value).replace(/^turnaround-/, "");
    return { ...r, short: c.replace("-plus", "+").replace("-", "\u2013") };
  });
  const charts = [
    ["Cases by status", strataRows(report, "cases", "task-status")],
    ["Cases by stage", strataRows(report, "cases", "business-status")],
    ["Cases by covered condition", strataRows(report, "cases", "condition")],
    ["Completed opinions by outcome", strataRows(report, "cases", "outcome")],
    ["Turnaround distribution (business days)", bandRows],
    ["SLA breaches per month", slaRows],
    ["Opinions used per plan", planRows],
  ];
  const csvRows = [["period", "figure", "category", "value"],
    ...[...summary.querySelectorAll("div")].map((d) => [value, d.querySelector("dt").textContent, "", d.querySelector("dd").textContent]),
    ...charts.flatMap(([title, rows]) => rows.map((r) => [value, title, r.label, r.masked ? MASKED : r.value]))];
  const csvUrl = URL.createObjectURL(new Blob([toCsv(csvRows)], { type: "text/csv;charset=utf-8" }));
  const insurerPart = insurer ? `-${insurer.split("/").pop()}` : "";
  view.replaceChildren(
    el("p", { class: "muted" }, `Period ${report.period?.start} to ${report.period?.end}; reporter ${report.reporter?.display || report.reporter?.reference || ""}; computed ${report.date || ""}.`),
    summary,
    el("p", {}, el("a", { id: "csv-download", href: csvUrl, download: `consilium-stats-${value}${insurerPart}.csv` }, "Download these figures (CSV)")),
    el("div", { class: "charts" },
      barChart("chart-status", "Cases by status", strataRows(report, "cases", "task-status")),
      barChart("chart-stage", "Cases by stage", strataRows(report, "cases", "business-status")),
      barChart("chart-condition", "Cases by covered condition", strataRows(report, "cases", "condition")),
      barChart("chart-outcome", "Completed opinions by outcome", strataRows(report, "cases", "outcome")),
      histogram("chart-turnaround-distribution", `Turnaround distribution of ${completed} completed cases`, bandRows, { axis: "business days from submission to the final report", valueHeader: "Completed cases" }),
      barChart("chart-turnaround", `Turnaround of ${completed} completed cases`, [
        { label: "Median", value: days(median) ?? 0, masked: false },
        { label: "90th percentile", value: days(p90) ?? 0, masked: false }], { unit: " business days", valueHeader: "Business days" }),
      barChart("chart-sla", kind === "year" ? `SLA breaches per month of ${value}` : `SLA breaches in ${value}`, slaRows),
      barChart("chart-opinions", "Opinions used per plan", planRows)));
}

async function main() {
  const s = requireSession();
  if (!s) return;
  const now = new Date();
  const thisMonth = now.toISOString().slice(0, 7);
  const coordinator = s.claims.role === "coordinator";
  let insurers = [];
  if (coordinator) insurers = matches(await fhir("Organization?type=ins&_count=100"));
  const form = el("form", { id: "period-form", class: "filters" },
    el("fieldset", {}, el("legend", {}, "Period"),
      el("label", {}, el("input", { type: "radio", name: "kind", value: "year", checked: true }), " Year"),
      el("label", {}, el("input", { type: "radio", name: "kind", value: "month" }), " Month"),
      el("label", { for: "year" }, "Year"), el("input", { id: "year", name: "year", type: "number", min: "2000", max: "2100", value: String(now.getUTCFullYear()) }),
      el("label", { for: "month" }, "Month"), el("input", { id: "month", name: "month", type: "month", value: thisMonth })),
    coordinator ? el("p", {}, el("label", { for: "insurer" }, "Insurer "),
      el("select", { id: "insurer", name: "insurer" }, el("option", { value: "" }, "Whole network"),
        insurers.map((o) => el("option", { value: `Organization/${o.id}` }, o.name || o.id)))) : null,
    el("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => { e.preventDefault(); render(form).catch(showProblem); });
  document.getElementById("view").replaceChildren(
    el("p", {}, coordinator ? "Network statistics. " : "Statistics of your members' cases: counts only, no clinical details. ",
      "Cells of 1 to 4 cases by condition or outcome are shown as \u201cfewer than 5\u201d for insurers."),
    form, el("div", { id: "figures", "aria-live": "polite" }));
  await render(form);
}

main().catch(showProblem);
