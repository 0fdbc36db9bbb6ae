// Small inline-SVG charts (no library): a horizontal bar chart that is also a table, so every
// figure has a text alternative. Masked cells (small-number suppression, docs/stats.md) are drawn
// as a hatched stub and read "fewer than 5"; they are never given a number.
import { el } from "/app/app.js";

const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, text) => {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

export const MASKED = "fewer than 5";

/** rows: [{label, value (number|null), masked}]; returns a <figure> with an SVG and a table. */
export function barChart(id, title, rows, { unit = "", valueHeader = "Count" } = {}) {
  const shown = (r) => (r.masked ? MASKED : `${r.value}${unit}`);
  const max = Math.max(1, ...rows.filter((r) => !r.masked).map((r) => r.value || 0));
  const rowH = 26, labelW = 250, barW = 240, width = labelW + barW + 180;
  const height = Math.max(rowH, rows.length * rowH) + 8;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-labelledby": `${id}-title` });
  chart.append(svg("title", { id: `${id}-title` }, `${title}: ${rows.map((r) => `${r.label} ${shown(r)}`).join(", ") || "no data"}`));
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    const label = r.label.length > 30 ? `${r.label.slice(0, 29)}…` : r.label;
    chart.append(svg("text", { x: labelW - 8, y: y + 17, "text-anchor": "end", class: "chart-label" }, label));
    const w = r.masked ? 12 : Math.round(((r.value || 0) / max) * barW);
    chart.append(svg("rect", { x: labelW, y: y + 4, width: Math.max(w, 1), height: rowH - 8, class: r.masked ? "bar masked" : "bar" }));
    chart.append(svg("text", { x: labelW + w + 6, y: y + 17, class: "chart-value" }, shown(r)));
  });
  return figure(id, title, chart, rows, shown, "Category", valueHeader);
}

/** A histogram: vertical columns over ordered bins (rows as barChart's), with the same table.
 * Used for the turnaround distribution: bins are the server's turnaround bands, in order. */
export function histogram(id, title, rows, { axis = "", valueHeader = "Cases" } = {}) {
  const shown = (r) => (r.masked ? MASKED : String(r.value));
  const max = Math.max(1, ...rows.filter((r) => !r.masked).map((r) => r.value || 0));
  const colW = 92, plotH = 170, top = 24, bottom = 48, left = 10;
  const width = left + rows.length * colW + 10, height = top + plotH + bottom;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-labelledby": `${id}-title` });
  chart.append(svg("title", { id: `${id}-title` }, `${title}: ${rows.map((r) => `${r.label} ${shown(r)}`).join(", ") || "no data"}`));
  chart.append(svg("line", { x1: left, y1: top + plotH, x2: width - 10, y2: top + plotH, stroke: "#1a1a1a" }));
  rows.forEach((r, i) => {
    const x = left + i * colW + 8;
    const h = r.masked ? 12 : Math.round(((r.value || 0) / max) * plotH);
    chart.append(svg("rect", { x, y: top + plotH - Math.max(h, 1), width: colW - 16, height: Math.max(h, 1), class: r.masked ? "bar masked" : "bar" }));
    chart.append(svg("text", { x: x + (colW - 16) / 2, y: top + plotH - Math.max(h, 1) - 6, "text-anchor": "middle", class: "chart-value" }, shown(r)));
    chart.append(svg("text", { x: x + (colW - 16) / 2, y: top + plotH + 20, "text-anchor": "middle", class: "chart-label" }, r.short || r.label));
  });
  if (axis) chart.append(svg("text", { x: width / 2, y: height - 6, "text-anchor": "middle", class: "chart-label" }, axis));
  return figure(id, title, chart, rows, shown, "Band", valueHeader);
}

/** CSV text (RFC 4180: quoted fields, CRLF) of [[...cells]]; a leading =+-@ is neutralised so a
 * spreadsheet never runs a cell as a formula (CSV injection). */
export function toCsv(rows) {
  const cell = (v) => {
    let s = v === null || v === undefined ? "" : String(v);
    if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

/** The chart with its figures as a table beside it (every chart is readable without the SVG). */
function figure(id, title, chart, rows, shown, keyHeader, valueHeader) {
  const table = el("table", { class: "cases chart-table" },
    el("caption", {}, `${title} (table)`),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, keyHeader), el("th", { scope: "col" }, valueHeader))),
    el("tbody", {}, rows.length
      ? rows.map((r) => el("tr", {}, el("th", { scope: "row" }, r.label), el("td", { "data-value": r.masked ? "masked" : String(r.value) }, shown(r))))
      : el("tr", {}, el("td", { colspan: "2" }, "No data."))));
  return el("figure", { class: "chart", id },
    el("figcaption", {}, el("h2", {}, title)), rows.length ? chart : null,
    el("details", { open: true }, el("summary", {}, "Figures as a table"), table));
}
