// Start page: sign in, or go to the signed-in user's home page.
import { chrome, el, homeFor, signIn } from "/app/app.js";

const s = chrome();
const view = document.getElementById("view");
if (s && homeFor(s.claims) !== "/app/") {
  location.replace(homeFor(s.claims));
} else if (s) {
  view.replaceChildren(el("p", {}, `Signed in as ${s.claims.sub} (${s.claims.role || "no role"}). The tracker has pages for coordinators, experts, clinics and insurers; your account has no party role.`));
} else {
  view.replaceChildren(
    el("p", {}, "Sign in with your Consilium account to see your cases."),
    el("button", { type: "button", id: "start-sign-in", onclick: () => signIn("") }, "Sign in"));
}
