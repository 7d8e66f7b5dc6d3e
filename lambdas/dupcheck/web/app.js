// dupcheck's web app: four views in one page, picked by the address's #fragment.
import { initCheck } from "./check.js";
import { initCatalog, showCatalog } from "./catalog.js";
import { initDuplicates, showDuplicates } from "./duplicates.js";
import { initStatus, showStatus } from "./status.js";

const VIEWS = { check: null, catalog: showCatalog, duplicates: showDuplicates, status: showStatus };

function route(moveFocus) {
  const wanted = location.hash.slice(1);
  if (wanted && !(wanted in VIEWS)) return; // another fragment (the skip link): stay on this view
  const name = wanted || "check";
  for (const view of document.querySelectorAll("main > .view")) view.hidden = view.id !== name;
  for (const link of document.querySelectorAll(".top a")) {
    if (link.hash === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  VIEWS[name]?.();
  // A screen reader hears where it is; a keyboard goes on from the new view's heading.
  if (moveFocus) document.getElementById(`${name}-title`).focus();
}

initCheck();
initCatalog();
initDuplicates();
initStatus();
window.addEventListener("hashchange", () => route(true));
route(false);
