// dupcheck's web app: five views in one page, picked by the address's #fragment.
import { initCheck } from "./check.js";
import { initCatalog, showCatalog } from "./catalog.js";
import { initDuplicates, showDuplicates } from "./duplicates.js";
import { initStatus, showStatus } from "./status.js";
import { initMarksChoices } from "./ui.js";

// The import page loads its module when it is first shown: the other views do not pay for it.
const showImports = () => import("./imports.js").then((module) => module.showImports());
const VIEWS = { check: null, catalog: showCatalog, import: showImports, duplicates: showDuplicates, status: showStatus };

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

initMarksChoices(); // before the views: their forms read the choices
initCheck();
initCatalog();
initDuplicates();
initStatus();
window.addEventListener("hashchange", () => route(true));
route(false);
