// The catalog-wide duplicate report: groups of records holding the same picture, as thumbnails,
// and the button that scans the catalog for a new one (a job on the server: this view follows it
// and shows its groups when it ends). The report names ids; each picture comes from its record,
// a few requests at a time.
import { ApiError, api, itemPath } from "./api.js";
import { matchSentence, scanSentence, skippedWords } from "./words.js";
import { byId, clearError, el, idLine, limiter, showError, thumbButton } from "./ui.js";
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
}

export async function showDuplicates() {
  clearError("duplicates-error");
  await Promise.all([showReport(), latestScan()]);
}

async function showReport() {
  const summary = byId("duplicates-summary");
  summary.textContent = "Loading…";
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
  summary.textContent = groups
    ? `${groups} group${groups === 1 ? "" : "s"} of records holding the same picture, among ${report.records} records (found in ${seconds} s).`
    : `No duplicates among ${report.records} records.`;
  if (report.generated_at) summary.textContent += ` Scanned ${new Date(report.generated_at).toLocaleString()}.`;
  const skipped = skippedWords(report.skipped, report.records);
  if (skipped) summary.textContent += ` ${skipped}`;
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
    await follow(await api("duplicates/scans", { method: "POST" }));
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
  const progress = byId("scan-progress");
  progress.hidden = !active && scan.status !== "done";
  if (scan.status === "done") progress.value = 1;
  else if (scan.total) progress.value = scan.done / scan.total;
  else progress.removeAttribute("value"); // indeterminate: a step without a count
}

function more() {
  const next = report.groups.slice(shown, shown + SHOWN);
  byId("group-list").append(...next.map((group, i) => groupItem(group, shown + i + 1)));
  shown += next.length;
  byId("groups-more").hidden = shown >= report.groups.length;
}

function pairItem(pair) {
  const sentence = matchSentence(pair);
  return el("li", { text: `${pair.a} and ${pair.b}: ${sentence.charAt(0).toLowerCase()}${sentence.slice(1)}` });
}

function groupItem(group, number) {
  // The report lists the record to keep first (its rule: report.keep_rule).
  const keep = group.keep ?? group.items[0];
  const item = el("li", { class: "group" },
    el("h2", { text: `Group ${number}: ${group.items.length} records, keep ${keep}` }),
    el("ul", { class: "grid" }, ...group.items.map((id) => recordCard(id, id === keep))),
    el("ul", { class: "pairs", "aria-label": `How alike the records of group ${number} are` },
      ...group.pairs.map(pairItem)));
  // Records alike one of the group's but not called the same picture as the one kept (report.group_rule).
  const related = group.related ?? [];
  if (related.length) {
    item.append(
      el("p", { class: "related-note", text: `Related, not in the group (not called the same picture as ${keep}):` }),
      el("ul", { class: "pairs related", "aria-label": `Records related to group ${number}` }, ...related.map(pairItem)));
  }
  return item;
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
