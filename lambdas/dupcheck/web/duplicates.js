// The catalog-wide duplicate report: groups of records holding the same picture, as thumbnails,
// and the button that scans the catalog for a new one (a job on the server: this view follows it
// and shows its groups when it ends). The report names ids; each picture comes from its record,
// a few requests at a time. Each group is settled here: keep this one (the others removed after a
// confirmation, or left and marked resolved) or not duplicates; every decision can be undone, and
// all of them downloaded as CSV for the back office.
import { ApiError, api, itemPath } from "./api.js";
import { decisionSentence, keepSentence, matchSentence, notVerifiedWords, scanSentence, skippedWords } from "./words.js";
import { byId, clearError, el, idLine, limiter, marksOf, showError, thumbButton } from "./ui.js";
import { showItem } from "./catalog.js";

const SHOWN = 10; // groups per "show more"
const POLL_MS = 1000;
const ACTIVE = new Set(["queued", "running"]);
const fetchLimited = limiter(4);
let report = null;
let shown = 0;
let following = null; // the scan this view follows

export function initDuplicates() {
  byId("groups-more").addEventListener("click", more);
  byId("scan-start").addEventListener("click", startScan);
  byId("decisions-export").addEventListener("click", exportDecisions);
}

export async function showDuplicates() {
  clearError("duplicates-error");
  byId("duplicates-done").textContent = "";
  await Promise.all([showReport(), latestScan()]);
}

async function showReport() {
  const summary = byId("duplicates-summary");
  summary.textContent ||= "Loading…"; // a reload after a decision keeps the sentence until the new one
  byId("group-list").replaceChildren();
  byId("groups-more").hidden = true;
  byId("duplicates-rules").hidden = true;
  try {
    report = await api("duplicates");
  } catch (error) {
    summary.textContent = "";
    if (error.code === "not_found") {
      summary.textContent = "No duplicate report yet. Find duplicates now to scan the catalog: its groups show here.";
    } else {
      showError("duplicates-error", error);
    }
    return;
  }
  const groups = report.groups.length;
  const seconds = Number(report.elapsed_s).toFixed(1);
  const open = report.open_groups ?? groups;
  const left = groups && open < groups ? ` ${open === 0 ? "All settled" : `${open} still to settle`}.` : "";
  summary.textContent = groups
    ? `${groups} group${groups === 1 ? "" : "s"} of records holding the same picture, among ${report.records} records (found in ${seconds} s).${left}`
    : `No duplicates among ${report.records} records.`;
  if (report.generated_at) summary.textContent += ` Scanned ${new Date(report.generated_at).toLocaleString()}.`;
  const skipped = skippedWords(report.skipped, report.records);
  if (skipped) summary.textContent += ` ${skipped}`;
  const unchecked = notVerifiedWords(report.not_verified);
  if (unchecked) summary.textContent += ` ${unchecked}`;
  // The rules behind the groups, for whoever asks: folded away, not in front of the groups.
  byId("keep-rule").textContent = report.keep_rule ? `The record to keep comes first: ${report.keep_rule}.` : "";
  byId("group-rule").textContent = report.group_rule ? `Grouping: ${report.group_rule}.` : "";
  byId("duplicates-rules").hidden = !report.keep_rule && !report.group_rule;
  shown = 0;
  more();
}

/** The newest scan: followed while it runs; said when it failed. */
async function latestScan() {
  try {
    const [scan] = (await api("duplicates/scans?limit=1")).scans;
    if (!scan) return showScan(null);
    if (ACTIVE.has(scan.status)) return follow(scan);
    showScan(scan.status === "failed" ? scan : null);
  } catch (error) {
    if (error.code !== "store_unavailable") showError("duplicates-error", error); // 503: no scans on this server
    byId("scan-start").disabled = error.code === "store_unavailable";
  }
}

async function startScan() {
  clearError("duplicates-error");
  byId("scan-start").disabled = true;
  try {
    await follow(await api(`duplicates/scans?${new URLSearchParams(marksOf("scan-marks"))}`, { method: "POST" }));
  } catch (error) {
    if (error instanceof ApiError && error.code === "conflict") return latestScan(); // started elsewhere: follow it
    showError("duplicates-error", error);
    byId("scan-start").disabled = false;
  }
}

/** Show `scan` as it goes, until it ends; then its groups. */
async function follow(scan) {
  following = scan.scan_id;
  for (;;) {
    showScan(scan);
    if (!ACTIVE.has(scan.status)) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (following !== scan.scan_id) return;
    scan = await api(`duplicates/scans/${scan.scan_id}`);
  }
  following = null;
  if (scan.status === "done") await showReport();
}

function showScan(scan) {
  const active = scan !== null && ACTIVE.has(scan.status);
  byId("scan-start").disabled = active;
  byId("scan-job").hidden = scan === null;
  if (scan === null) return;
  const words = scanSentence(scan);
  byId("scan-title").textContent = words.title;
  byId("scan-counts").textContent = words.counts;
  byId("scan-counts").hidden = !words.counts;
  const progress = byId("scan-progress");
  progress.hidden = !active;
  // The whole scan on one bar: each of its steps an equal share, moving with the step's records.
  if (scan.step && scan.total) progress.value = (scan.step - 1 + scan.done / scan.total) / scan.steps;
  else if (scan.step) progress.value = (scan.step - 1) / scan.steps;
  else progress.removeAttribute("value"); // indeterminate: not started yet
}

function more() {
  const next = report.groups.slice(shown, shown + SHOWN);
  byId("group-list").append(...next.map((group, i) => groupItem(group, shown + i + 1)));
  shown += next.length;
  byId("groups-more").hidden = shown >= report.groups.length;
}

function pairItem(pair) {
  const sentence = matchSentence(pair);
  const text = `${pair.a} and ${pair.b}: ${sentence.charAt(0).toLowerCase()}${sentence.slice(1)}`;
  // A pair a person marked not duplicates stays listed, said to be reviewed.
  return pair.reviewed
    ? el("li", { class: "reviewed", text: `${text} Reviewed: not duplicates.` })
    : el("li", { text });
}

function groupItem(group, number) {
  // The report lists the record to keep first (its rule: report.keep_rule).
  const keep = group.keep ?? group.items[0];
  const settled = group.settled ?? {};
  const open = group.open ?? true;
  // What a new decision is about: the records no decision settled yet (the kept one never is).
  const unsettled = group.items.filter((id) => !(id in settled));
  const cards = group.items.map((id) => {
    const card = recordCard(id, id === keep);
    if (settled[id]) card.append(el("p", { class: "settled-label", text: settledLabel(settled[id]) }));
    if (open && unsettled.includes(id)) {
      const others = unsettled.filter((other) => other !== id);
      card.append(el("div", { class: "actions" }, el("button", {
        type: "button", class: "secondary", text: "Keep this one", "aria-label": `Keep ${id} (group ${number})`,
        onclick: () => keepThisOne(id, others),
      })));
    }
    return card;
  });
  const reason = keepSentence(group, keep);
  const item = el("li", { class: open ? "group" : "group settled" },
    el("h2", { text: `Group ${number}: ${group.items.length} records, keep ${keep}${open ? "" : " (settled)"}` }),
    ...(reason ? [el("p", { class: "keep-reason", text: reason })] : []),
    el("ul", { class: "grid" }, ...cards),
    el("ul", { class: "pairs", "aria-label": `How alike the records of group ${number} are` },
      ...group.pairs.map(pairItem)));
  if (open) {
    const others = unsettled.filter((id) => id !== keep);
    item.append(el("div", { class: "settle" }, el("button", {
      type: "button", class: "secondary", text: "Not duplicates", "aria-label": `Not duplicates (group ${number})`,
      onclick: () => decide({ decision: "not_duplicate", item: keep, others }),
    })));
  }
  // Each decision that settled part of the group, with its undo.
  for (const decisionId of group.decisions ?? []) {
    const members = Object.entries(settled).filter(([, s]) => s.decision_id === decisionId);
    item.append(el("p", { class: "settled-note" },
      decisionSentence(members[0][1], members.map(([id, s]) => ({ id, outcome: s.outcome }))), " ",
      el("button", { type: "button", class: "secondary", text: "Undo", "aria-label": `Undo (group ${number})`,
        onclick: () => undo(decisionId) })));
  }
  // Records alike one of the group's but not called the same picture as the one kept (report.group_rule).
  const related = group.related ?? [];
  if (related.length) {
    item.append(
      el("p", { class: "related-note", text: `Related, not in the group (not called the same picture as ${keep}):` }),
      el("ul", { class: "pairs related", "aria-label": `Records related to group ${number}` }, ...related.map(pairItem)));
  }
  return item;
}

function settledLabel(settled) {
  if (settled.decision === "not_duplicate") return `Not a duplicate of ${settled.item}`;
  return `${settled.outcome === "removed" ? "Removed" : "Resolved"}, ${settled.item} kept`;
}

/** Keep `id`: ask whether the others leave the catalog or stay, marked resolved. */
function keepThisOne(id, others) {
  const dialog = byId("settle-dialog");
  const n = others.length;
  byId("settle-title").textContent = `Keep ${id}?`;
  byId("settle-text").textContent = `The other ${n === 1 ? "record" : `${n} records`} of this group (${others.join(", ")}) can leave the catalog, or stay there with the group marked resolved. Either can be undone.`;
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "remove" || dialog.returnValue === "resolve") {
      decide({ decision: "keep", item: id, others, remove_others: dialog.returnValue === "remove" });
    }
  }, { once: true });
  dialog.showModal();
}

async function decide(body) {
  clearError("duplicates-error");
  byId("duplicates-done").textContent = "";
  try {
    const made = await api("duplicates/decisions", { method: "POST", body });
    const outcome = (id) => (made.decision === "not_duplicate" ? "not a duplicate"
      : made.removed.includes(id) ? "removed" : "left in the catalog, resolved");
    byId("duplicates-done").textContent = decisionSentence(made, made.others.map((id) => ({ id, outcome: outcome(id) })));
  } catch (error) {
    showError("duplicates-error", error);
  }
  await showReport();
}

async function undo(decisionId) {
  clearError("duplicates-error");
  try {
    const undone = await api(`duplicates/decisions/${decisionId}/undo`, { method: "POST" });
    const back = undone.restored.length ? ` ${undone.restored.join(", ")} ${undone.restored.length === 1 ? "is" : "are"} back in the catalog.` : "";
    const kept = undone.left_out.length ? ` ${undone.left_out.join(", ")} ${undone.left_out.length === 1 ? "was" : "were"} added again since: the newer one stays.` : "";
    byId("duplicates-done").textContent = `Undone.${back}${kept}`;
  } catch (error) {
    showError("duplicates-error", error);
  }
  await showReport();
}

/** Every decision as a CSV file, downloaded (fetched with the key, saved from a blob: URL). */
async function exportDecisions() {
  clearError("duplicates-error");
  try {
    const text = await api("duplicates/decisions.csv", { text: true });
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: "duplicate-decisions.csv" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  } catch (error) {
    showError("duplicates-error", error);
  }
}

function recordCard(id, keep) {
  const slot = el("span", { class: "no-picture", text: "Loading…" });
  const sku = el("p", { class: "sku" }); // filled when the record arrives: before the keep label
  const card = el("li", { class: keep ? "card keep" : "card" }, slot, idLine(id), sku);
  if (keep) card.append(el("p", { class: "keep-label", text: "Keep" }));
  fetchLimited(() => api(itemPath(id))).then(
    (item) => {
      slot.replaceWith(thumbButton(item, `Show ${id}`, `Picture of ${id}`, () => showItem(item)));
      if (item.sku) sku.textContent = `SKU ${item.sku}`;
    },
    (error) => {
      slot.textContent = error.code === "not_found" ? "Removed since the report" : error.sentence;
    });
  return card;
}
