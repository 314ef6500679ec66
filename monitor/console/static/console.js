// wirewatch console: htmx-style partial updates, in one small file (the CSP allows no inline script).
// - a form with data-partial posts in the background, then the page's main part is fetched again
//   and swapped in, with the action's one-line result in #flash;
// - the rule tester (form[data-tester]) shows its results as the operator types.
// Everything swapped in is HTML the server rendered and escaped; without this file every form still works.
"use strict";

async function fetchPartial(url, options) {
  const response = await fetch(url, Object.assign({credentials: "same-origin"}, options || {},
    {headers: Object.assign({"X-Partial": "1"}, (options && options.headers) || {})}));
  if (response.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname)); }
  return response;
}

async function refreshMain() {
  const response = await fetchPartial(location.pathname + location.search);
  if (response.ok) { document.getElementById("main").innerHTML = await response.text(); bindTester(); }
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-partial")) { return; }
  event.preventDefault();
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const response = await fetchPartial(form.action, {method: "POST", body: new URLSearchParams(new FormData(form))});
    const message = await response.text();
    await refreshMain();
    document.getElementById("flash").innerHTML = message;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
});

let testerTimer = null;
let testerSeq = 0;

async function runTester(form) {
  const params = new URLSearchParams(new FormData(form));
  const seq = ++testerSeq;
  const response = await fetchPartial("/rules/test?" + params.toString());
  if (seq !== testerSeq) { return; }  // a newer keystroke's answer is on its way
  document.getElementById("tester-results").innerHTML = await response.text();
  history.replaceState(null, "", "/rules?" + params.toString() + "#tester");
}

function bindTester() {
  const form = document.querySelector("form[data-tester]");
  if (!form || form.dataset.bound) { return; }
  form.dataset.bound = "1";
  const schedule = () => { clearTimeout(testerTimer); testerTimer = setTimeout(() => runTester(form), 200); };
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("submit", (event) => { event.preventDefault(); runTester(form); });
}

document.addEventListener("DOMContentLoaded", bindTester);
