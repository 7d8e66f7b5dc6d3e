// Status: what /health says (open, so it needs no key), and whether this tab keeps a key.
import { api, forgetKey, hasKey } from "./api.js";
import { byId, clearError, el, showError } from "./ui.js";

export function initStatus() {
  byId("status-refresh").addEventListener("click", showStatus);
  byId("key-forget").addEventListener("click", () => {
    forgetKey();
    showKeyState();
  });
}

export async function showStatus() {
  clearError("status-error");
  showKeyState();
  let health;
  try {
    health = await api("health");
  } catch (error) {
    byId("status-list").replaceChildren();
    showError("status-error", error);
    return;
  }
  const rows = [
    ["Service", health.status === "ok" ? "Answering" : health.status],
    ["Records in the catalog", health.records.toLocaleString()],
    ["Pictures in the search index", health.indexed.toLocaleString()],
  ];
  const ready = health.ready ?? health.index_ready; // when the API reports it
  if (ready !== undefined) rows.push(["Index ready", ready ? "Yes" : "Not yet: checks may miss pictures"]);
  byId("status-list").replaceChildren(...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: value })]));
}

function showKeyState() {
  byId("key-state").textContent = hasKey()
    ? "This tab keeps an API key for this dupcheck until it closes."
    : "This tab keeps no API key (none was needed, or none given yet).";
  byId("key-forget").hidden = !hasKey();
}
