// The catalog, page by page: search by id or SKU, see a record, add one (by address or upload),
// remove one after a confirmation.
import { api, imageForm, itemPath } from "./api.js";
import { matchSentence, skuWords } from "./words.js";
import { byId, clearError, el, idLine, marksOf, reveal, showError, showPicture, thumbButton } from "./ui.js";

const PAGE = 20;
// cursors[i] opens page i + 1 (null: the first); next is the open page's next_cursor.
const state = { cursors: [null], next: null, query: "", loaded: false, latest: 0 };

export function initCatalog() {
  byId("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = byId("search-q").value.trim();
    state.cursors = [null];
    load();
  });
  byId("page-next").addEventListener("click", () => {
    state.cursors.push(state.next);
    load();
  });
  byId("page-prev").addEventListener("click", () => {
    state.cursors.pop();
    load();
  });
  byId("add-form").addEventListener("submit", add);
}

export function showCatalog() {
  if (!state.loaded) load();
}

/** The catalog changed elsewhere (an import): the next visit loads it again. */
export function catalogChanged() {
  state.loaded = false;
}

async function load() {
  const id = ++state.latest;
  clearError("catalog-error");
  const params = new URLSearchParams({ limit: PAGE });
  if (state.cursors.at(-1)) params.set("cursor", state.cursors.at(-1));
  if (state.query) params.set("q", state.query);
  byId("catalog-summary").textContent = "Loading…";
  showTotal();
  try {
    const page = await api(`items?${params}`);
    if (id !== state.latest) return;
    state.loaded = true;
    state.next = page.next_cursor;
    render(page);
  } catch (error) {
    if (id !== state.latest) return;
    byId("catalog-summary").textContent = "";
    showError("catalog-error", error);
  }
}

/** How many items the catalog holds (the store's count, as /health reports it), above the pages. */
async function showTotal() {
  try {
    const { records } = await api("health");
    byId("catalog-total").textContent = records === 1 ? "1 item in the catalog." : `${records.toLocaleString()} items in the catalog.`;
  } catch {
    byId("catalog-total").textContent = ""; // the page's own call says what is wrong
  }
}

function render(page) {
  const number = state.cursors.length;
  const searched = state.query ? ` whose id or SKU contains “${state.query}”` : "";
  let summary = `Page ${number}: ${page.items.length} item${page.items.length === 1 ? "" : "s"}${searched}.`;
  if (!page.items.length) {
    if (state.query) summary = `No item${searched} on this page.${page.next_cursor ? " The next pages may have some." : ""}`;
    else summary = number === 1 ? "The catalog is empty." : "No more items.";
  }
  byId("catalog-summary").textContent = summary;
  byId("catalog-grid").replaceChildren(...page.items.map(itemCard));
  byId("page-number").textContent = `Page ${number}`;
  byId("page-prev").disabled = number === 1;
  byId("page-next").disabled = !page.next_cursor;
}

function itemCard(item) {
  const remove = el("button", { type: "button", class: "secondary", text: "Remove", "aria-label": `Remove ${item.entity_id}` });
  remove.addEventListener("click", () => confirmRemove(item));
  return el("li", { class: "card" },
    thumbButton(item, `Show ${item.entity_id}`, `Picture of ${item.entity_id}`, () => showItem(item)),
    idLine(item.entity_id),
    item.sku ? el("p", { class: "sku", text: `SKU ${item.sku}` }) : null,
    el("div", { class: "actions" }, remove));
}

/** A record and its picture, in a dialog. */
export function showItem(item) {
  byId("item-title").textContent = item.entity_id;
  const image = byId("item-image");
  image.hidden = !item.image_url;
  if (item.image_url) showPicture(image, item.image_url);
  image.alt = `Picture of ${item.entity_id}`;
  const address = item.image_url
    ? el("a", { href: item.image_url, text: item.image_url, rel: "noopener noreferrer", target: "_blank" })
    : "none (added by upload)";
  const rows = [["SKU", item.sku || "none"], ["Picture address", address],
    ["Last changed", new Date(item.updated_at).toLocaleString()]];
  byId("item-fields").replaceChildren(...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", {}, value)]));
  byId("item-dialog").showModal();
}

function confirmRemove(item) {
  const dialog = byId("remove-dialog");
  byId("remove-title").textContent = `Remove ${item.entity_id}?`;
  byId("remove-text").textContent =
    `${item.entity_id}${skuWords(item)} leaves the catalog: checks will no longer find it. This cannot be undone.`;
  dialog.returnValue = "";
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "remove") return;
    clearError("catalog-error");
    try {
      await api(itemPath(item.entity_id), { method: "DELETE" });
      byId("catalog-done").textContent = `Removed ${item.entity_id} from the catalog.`;
      load();
    } catch (error) {
      showError("catalog-error", error);
    }
  }, { once: true });
  dialog.showModal();
}

async function add(event) {
  event.preventDefault();
  const form = event.target;
  clearError("add-error");
  byId("add-done").textContent = "";
  const id = byId("add-id").value.trim();
  const sku = byId("add-sku").value.trim();
  const url = byId("add-url").value.trim();
  const file = byId("add-file").files[0];
  if (!url && !file) return addError({ sentence: "Give the picture's address, or choose a file." });
  // An id travels in the address of its record (/items/<id>): these would break it.
  if (/[/?#%]/.test(id) || id === "." || id === "..") {
    return addError({ sentence: "An entity id cannot contain / ? # or %, nor be . or .." });
  }
  const policy = byId("add-policy").value;
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  hideWarning();
  // Where the new picture is shown from, beside a duplicate: the chosen file, else its address.
  const shown = file ? URL.createObjectURL(file) : url;
  try {
    const item = file
      ? await api(`${itemPath(id)}?${new URLSearchParams({ ...(sku && { sku }), ...(url && { image_url: url }),
        on_duplicate: policy, ...marksOf("add-marks") })}`, { method: "PUT", body: await imageForm(file) })
      : await api(`items?${new URLSearchParams(marksOf("add-marks"))}`,
        { method: "POST", body: { entity_id: id, sku, image_url: url, on_duplicate: policy } });
    if (item.duplicates?.length) {
      showWarning(`Added ${item.entity_id}, but the catalog already had this picture`,
        `${item.entity_id}${skuWords(item)} is now in the catalog. Remove it if it should not be there.`,
        shown, item.duplicates);
    } else {
      byId("add-done").textContent = `Added ${item.entity_id}${skuWords(item)} to the catalog.${
        item.checked ? " No duplicate of its picture was found." : " Its picture was not checked for duplicates."}`;
    }
    form.reset();
    await load(); // the page above changes height: the confirmation is brought into view after it
    reveal("add-done");
  } catch (error) {
    if (error.code === "duplicate_image") {
      showWarning(`Not added: the catalog already has this picture`,
        `${id} was not added, as asked. The catalog already has its picture:`, shown, error.detail.matches ?? []);
    } else {
      addError(error);
    }
  } finally {
    button.disabled = false;
  }
}

function addError(error) {
  showError("add-error", error);
  reveal("add-error");
}

/** The duplicate gate's answer, before anything else: the new picture beside its best match,
 * the other duplicates listed, the box scrolled to and focused (screen readers read it). */
function showWarning(title, text, shown, matches) {
  const [best, ...more] = matches;
  byId("add-warning-title").textContent = title;
  byId("add-warning-text").textContent = text;
  const mine = byId("add-warning-new");
  if (shown) showPicture(mine, shown);
  mine.hidden = !shown;
  const match = byId("add-warning-match");
  match.alt = best ? `Picture of ${best.entity_id}` : "";
  if (best?.image_url) showPicture(match, best.image_url);
  byId("add-warning-caption").textContent = best ? `${best.entity_id}${skuWords(best)}: ${matchSentence(best)}` : "";
  byId("add-warning-more").replaceChildren(...more.map((m) =>
    el("li", { text: `Also ${m.entity_id}${skuWords(m)}: ${matchSentence(m)}` })));
  const box = byId("add-warning");
  box.hidden = false;
  box.scrollIntoView({ block: "start" });
  box.focus({ preventScroll: true });
}

function hideWarning() {
  byId("add-warning").hidden = true;
}
