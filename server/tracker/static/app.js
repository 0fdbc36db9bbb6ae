// The tracker's shared module: SMART sign-in (authorization code + PKCE S256), the FHIR client
// (every call carries the user's bearer token, so the server's party rules decide what is seen),
// and the page chrome (header, errors). No framework, no build step: see docs/tracker.md.

export const CLIENT_ID = "consilium-tracker";
// online_access: the server gives this public client a refresh token (rotated on every use), so
// an expired access token is renewed without sending the user back to the sign-in page.
export const SCOPE = "openid fhirUser online_access user/*.cruds";
const KEY = "consilium.tracker.session";
const PENDING = "consilium.tracker.pending";

export const fhirBase = () => `${location.origin}/fhir`;
const redirectUri = () => `${location.origin}/app/callback.html`;

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** Send the browser to the server's sign-in page; `next` is where to land afterwards. */
export async function signIn(next = "/app/") {
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, next }));
  const q = new URLSearchParams({
    response_type: "code", client_id: CLIENT_ID, redirect_uri: redirectUri(), scope: SCOPE,
    state, aud: fhirBase(), code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`/oauth/authorize?${q}`);
}

/** The redirect back from /oauth/authorize: check state, exchange the code (with the verifier). */
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (params.get("error")) throw new Problem(0, `Sign-in refused: ${params.get("error_description") || params.get("error")}`);
  if (!pending || params.get("state") !== pending.state) throw new Problem(0, "Sign-in failed: the response does not match this browser's request; sign in again.");
  const r = await fetch("/oauth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(),
      code_verifier: pending.verifier, client_id: CLIENT_ID,
    }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Problem(r.status, `Sign-in failed: ${body.error_description || body.error || r.statusText}`);
  const claims = store(body);
  return pending.next || homeFor(claims);
}

function store(body) {
  const claims = decodeClaims(body.access_token);
  sessionStorage.setItem(KEY, JSON.stringify({
    token: body.access_token, expires: Date.now() + 1000 * (body.expires_in || 300), claims,
    refresh: body.refresh_token || null,
  }));
  return claims;
}

let refreshing = null;

/** Renew the access token with the refresh token (RFC 6749 §6). One request at a time: the
 * server rotates the refresh token, so two parallel uses would spend it twice and the second
 * would fail. On refusal the session is dropped and the user is asked to sign in again. */
export function refreshSession() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (!s || !s.refresh) throw expired();
    const r = await fetch("/oauth/token", {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: s.refresh, client_id: CLIENT_ID }),
    }).catch(() => null);
    if (!r || !r.ok) {
      sessionStorage.removeItem(KEY);
      throw expired();
    }
    store(await r.json());
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    return session();
  })().finally(() => { refreshing = null; });
  return refreshing;
}

const expired = () => new Problem(401, "Your sign-in has expired. Sign in again to continue: you will come back to this page.");

/** The access token to send: the stored one while it is valid, else a refreshed one. */
async function accessToken(force = false) {
  const s = session();
  if (!s) throw new Problem(401, "You are not signed in.");
  if (!force && s.expires - 5000 > Date.now()) return s.token;
  return (await refreshSession()).token;
}

// The token's claims, for display and navigation only: the server checks every request itself.
function decodeClaims(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(decodeURIComponent(escape(atob(part))));
}

/** The signed-in session: a valid access token, or an expired one with a refresh token. */
export function session() {
  const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
  return s && (s.expires > Date.now() || s.refresh) ? s : null;
}

/** Forget the token and revoke it, so it stops working at once (not only when it expires). */
export async function signOut() {
  const s = session();
  sessionStorage.removeItem(KEY);
  if (!s) return;
  try {
    for (const token of [s.refresh, s.token].filter(Boolean)) {
      await fetch("/oauth/revoke", {
        method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token, client_id: CLIENT_ID }),
      });
    }
  } catch {
    // Best effort: the token is gone from this browser either way.
  }
}

export function homeFor(claims) {
  if (claims.role === "coordinator") return "/app/worklist.html";
  if (claims.role === "specialist") return "/app/queue.html";
  if (claims.role === "clinic" || claims.role === "insurer") return "/app/cases.html";
  return "/app/";
}

/** An error from the server (an OperationOutcome) or from the sign-in, shown as it is. */
export class Problem extends Error {
  constructor(status, message, issues = []) {
    super(message);
    this.status = status;
    this.issues = issues;
  }
}

const TITLES = {
  400: "The request was not understood (400)",
  401: "Your sign-in has expired (401)",
  403: "Access denied (403)",
  404: "Not found (404)",
  422: "The server refused the change (422)",
};

/** GET (or other method on) a FHIR path relative to the base, as the signed-in user. */
export async function fhir(path, init = {}) {
  const call = async (token) => fetch(`${fhirBase()}/${path}`, {
    ...init,
    headers: { Accept: "application/fhir+json", Authorization: `Bearer ${token}`, ...(init.headers || {}) },
  });
  let r = await call(await accessToken());
  // Expired early (clock skew) or revoked: renew once and retry; a second 401 is final.
  if (r.status === 401 && (session() || {}).refresh) r = await call(await accessToken(true));
  if (r.ok) return init.raw ? r : r.json();
  const body = await r.json().catch(() => null);
  const issues = (body && body.resourceType === "OperationOutcome" && body.issue) || [];
  const text = issues.map((i) => i.diagnostics || (i.details && i.details.text) || i.code).filter(Boolean).join("; ");
  throw new Problem(r.status, text || r.statusText, issues);
}

/** Every entry of a search Bundle with search.mode "match" (includes are separate). */
export const matches = (bundle) => (bundle.entry || []).filter((e) => !e.search || e.search.mode !== "include").map((e) => e.resource);
export const included = (bundle) => (bundle.entry || []).filter((e) => e.search && e.search.mode === "include").map((e) => e.resource);

/** Build a DOM element: el("a", {href: "x"}, "text", child...). Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  return node;
}

/** Show a Problem in the page's alert region (role=alert, focused so it is read out). */
export function showProblem(err) {
  const box = document.getElementById("problem");
  const status = err instanceof Problem ? err.status : 0;
  // A case the user may not see: the server answers 403, or 404 so as not to tell whether it
  // exists; both are the same "access denied" page to the user.
  const denied = err.forbidden || status === 403;
  const title = denied && status === 404 ? "Access denied (404: no such case, or not yours)" : TITLES[status];
  box.replaceChildren(...[
    el("h2", {}, title || "Something went wrong"),
    el("p", { class: "problem-text" }, err.message || String(err)),
    denied ? el("p", {}, "This case belongs to another party, or your role may not see it. ", el("a", { href: "/app/" }, "Back to your start page")) : null,
    status === 401 ? el("p", {}, el("button", { type: "button", onclick: () => signIn(location.pathname + location.search) }, "Sign in again")) : null,
  ].filter(Boolean));
  box.hidden = false;
  box.dataset.status = String(status);
  if (denied) {
    box.dataset.page = "forbidden";
    document.querySelector("h1").textContent = "Access denied";
    document.title = "Access denied — Consilium tracker";
  }
  document.body.dataset.problem = String(status);
  box.focus();
}

/** The header every page shares: who is signed in and the sign-out button. */
export function chrome() {
  const s = session();
  const who = document.getElementById("who");
  if (!who) return s;
  if (s) {
    const c = s.claims;
    const nav = el("nav", { "aria-label": "Main" },
      c.role === "coordinator" ? el("a", { href: "/app/worklist.html" }, "Worklist") : null,
      c.role === "specialist" ? el("a", { href: "/app/queue.html" }, "My queue") : null,
      ["clinic", "insurer"].includes(c.role) ? el("a", { href: "/app/cases.html" }, "My cases") : null,
      c.role === "clinic" ? el("a", { href: "/app/submit.html" }, "Submit a case") : null,
      c.role === "insurer" ? el("a", { href: "/app/members.html" }, "Members") : null,
      ["coordinator", "insurer"].includes(c.role) ? el("a", { href: "/app/dashboard.html" }, "Dashboard") : null);
    who.replaceChildren(nav,
      el("span", { class: "user" }, `${c.sub || ""} · ${c.role || "no role"}${c.org ? ` · ${c.org}` : ""}`),
      el("button", { type: "button", id: "sign-out", onclick: async () => { await signOut(); location.assign("/app/"); } }, "Sign out"));
  } else {
    who.replaceChildren(el("button", { type: "button", id: "sign-in", onclick: () => signIn(location.pathname + location.search) }, "Sign in"));
  }
  return s;
}

/** For pages that need a user: the session, or a sign-in prompt and null. */
export function requireSession() {
  const s = chrome();
  if (!s) showProblem(new Problem(401, "Sign in to see this page."));
  return s;
}

// ---- display helpers
export const coding = (cc) => ((cc && cc.coding) || [])[0] || {};
export const codeText = (cc) => (cc && (cc.text || coding(cc).display || coding(cc).code)) || "";
export const refId = (ref) => ((ref && ref.reference) || "").split("/_history/")[0].split("/").pop();
export const due = (task) => (task.restriction && task.restriction.period && task.restriction.period.end) || null;

/** The case's business identifier (SO-2026-1017) and patient, else its Task id. */
export function caseLabel(task) {
  const number = ((task.identifier || [])[0] || {}).value || task.id;
  return task.for && task.for.display ? `${number} · ${task.for.display}` : number;
}

export function formatDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** "3 d 4 h left" / "2 d overdue" / "paused" (on-hold cases: the SLA clock stops). */
export function timeLeft(task, now = Date.now()) {
  const end = due(task);
  if (!end) return { text: "no due date", overdue: false };
  if (task.status === "on-hold") return { text: "paused (waiting for information)", overdue: false };
  if (["completed", "rejected", "cancelled", "failed"].includes(task.status)) return { text: "closed", overdue: false };
  const ms = new Date(end).getTime() - now;
  const abs = Math.abs(ms);
  const days = Math.floor(abs / 86400000);
  const hours = Math.floor((abs % 86400000) / 3600000);
  const span = days ? `${days} d ${hours} h` : `${hours} h`;
  return ms >= 0 ? { text: `${span} left`, overdue: false } : { text: `${span} overdue`, overdue: true };
}

export function casesTable(tasks, caption) {
  const rows = tasks.map((t) => {
    const left = timeLeft(t);
    return el("tr", {},
      el("td", {}, el("a", { href: `/app/case.html?task=${encodeURIComponent(t.id)}` }, caseLabel(t))),
      el("td", {}, t.status),
      el("td", {}, codeText(t.businessStatus)),
      el("td", {}, t.priority || "routine"),
      el("td", { "data-due": due(t) || "" }, formatDate(due(t))),
      el("td", { class: left.overdue ? "overdue" : "" }, left.text));
  });
  return el("table", { class: "cases" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, ["Case", "Status", "Stage", "Priority", "Due", "Time left"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "6" }, "No cases."))));
}

/** Sort by due date (soonest first, undated last), then priority. */
export function byDue(a, b) {
  const da = due(a) ? new Date(due(a)).getTime() : Infinity;
  const db = due(b) ? new Date(due(b)).getTime() : Infinity;
  const rank = { stat: 0, asap: 1, urgent: 2, routine: 3 };
  return da - db || (rank[a.priority || "routine"] - rank[b.priority || "routine"]);
}
