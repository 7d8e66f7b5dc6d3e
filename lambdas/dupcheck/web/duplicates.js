// The catalog-wide duplicate report: groups of records holding the same picture, as thumbnails.
// The report names ids; each picture comes from its record, a few requests at a time.
import { api, itemPath } from "./api.js";
import { matchSentence } from "./words.js";
import { byId, clearError, el, limiter, showError, thumbButton } from "./ui.js";
import { showItem } from "./catalog.js";

const SHOWN = 10; // groups per "show more"
const fetchLimited = limiter(4);
let report = null;
let shown = 0;

export function initDuplicates() {
  byId("groups-more").addEventListener("click", more);
}

export async function showDuplicates() {
  clearError("duplicates-error");
  const summary = byId("duplicates-summary");
  summary.textContent = "Loading…";
  byId("group-list").replaceChildren();
  byId("groups-more").hidden = true;
  try {
    report = await api("duplicates");
  } catch (error) {
    summary.textContent = "";
    if (error.code === "not_found") {
      summary.textContent = "No duplicate report yet. Running python -m dupcheck duplicates writes one; its groups show here.";
    } else {
      showError("duplicates-error", error);
    }
    return;
  }
  const groups = report.groups.length;
  const seconds = Number(report.elapsed_s).toFixed(1);
  summary.textContent = groups
    ? `${groups} group${groups === 1 ? "" : "s"} of records holding the same picture, among ${report.records} records (pipeline ${report.pipeline}, found in ${seconds} s).`
    : `No duplicates among ${report.records} records (pipeline ${report.pipeline}).`;
  if (report.keep_rule) summary.textContent += ` Each group lists the record to keep first: ${report.keep_rule}.`;
  if (report.group_rule) summary.textContent += ` Grouping: ${report.group_rule}.`;
  if (report.skipped?.message) summary.textContent += ` ${report.skipped.message}.`;
  shown = 0;
  more();
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
  const card = el("li", { class: keep ? "card keep" : "card" }, slot, el("p", { class: "id", text: id }), sku);
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
