// Import a catalog: a CSV or JSON Lines file, or a folder of pictures (each kept by the service,
// then imported as an item named after its file). The job runs on the server; this view follows it
// with a progress bar, lists the rows that failed and why, the duplicates it found (or, for a check
// job, "only check, do not add", every row's answer), and links to the catalog.
// Loaded by app.js the first time the view is shown.
import { ApiError, api, imageForm } from "./api.js";
import { catalogChanged } from "./catalog.js";
import { errorSentence, importSentence, modeWords, resultSentence, rowSentence } from "./words.js";
import { byId, clearError, el, limiter, marksOf, showError } from "./ui.js";

// API Gateway takes 10 MB a request and its function 6 MB, base64 included: a larger catalog goes
// through the upload the API answers for `upload: true` (S3's own form on AWS).
const DIRECT_LIMIT = 4 * 1024 * 1024;
const PICTURE = /\.(jpe?g|png|webp|gif|bmp|tiff?)$/i;
const FINAL = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 1000;
const CSV_ATTEMPTS = 30; // a results CSV written a part (8 MB) a request: a million rows take a few
const state = { bound: false, job: null, cursor: null, results: null };

export function showImports() {
  if (!state.bound) {
    state.bound = true;
    byId("import-file").addEventListener("change", (event) => chosen(event.target, importFile));
    byId("import-folder").addEventListener("change", (event) => chosen(event.target, importFolder));
    byId("import-cancel").addEventListener("click", cancel);
    byId("import-more").addEventListener("click", () => failures(state.job, state.cursor));
    byId("import-results-more").addEventListener("click", () => results(state.followed, state.results));
    byId("import-results-csv").addEventListener("click", download);
    byId("import-check-only").addEventListener("change", checkOnly);
    checkOnly(); // a reloaded page may keep the box ticked
  }
  recent();
}

/** "Only check" stores nothing: what to do with duplicates found on the way is not asked. */
function checkOnly() {
  byId("import-policy-choice").hidden = byId("import-check-only").checked;
}

async function chosen(input, start) {
  const files = [...input.files];
  input.value = ""; // the same file can be chosen again
  clearError("import-error");
  if (files.length) await start(files).catch((error) => showError("import-error", error));
}

function catalogForm(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  return form;
}

/** `imports` with the page's choices: the base of relative paths, check only, the duplicate policy. */
function withBase(path) {
  const base = byId("import-base").value.trim();
  const check = byId("import-check-only").checked;
  return `${path}?${new URLSearchParams({ ...(base && { image_base_url: base }),
    ...(check ? { mode: "check" } : { on_duplicate: byId("import-policy").value }), ...marksOf("import-marks") })}`;
}

async function importFile([file]) {
  if (file.size <= DIRECT_LIMIT) return follow(await api(withBase("imports"), { method: "POST", body: catalogForm(file, file.name) }));
  const job = await api(withBase("imports"), { method: "POST", body: { upload: true } });
  show(job, `Uploading ${file.name}`);
  const { url, method, fields } = job.upload;
  if (method === "PUT") await api(url, { method, body: catalogForm(file, file.name) }); // this API, with the key
  else {
    const form = new FormData(); // S3's presigned form: its fields first, then the file; no key
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append("file", file);
    const response = await fetch(url, { method, body: form }).catch(() => null);
    if (!response?.ok) throw new ApiError(response?.status ?? 0, "upload_failed", "the catalog could not be uploaded");
  }
  return follow(await api(`imports/${job.job_id}`));
}

async function importFolder(files) {
  const pictures = files.filter((file) => PICTURE.test(file.name));
  if (!pictures.length) throw { sentence: "That folder holds no pictures (JPEG, PNG, WebP, GIF, BMP or TIFF files)." };
  const lines = [];
  const refused = [];
  let sent = 0;
  const progress = () => show({ status: "queued" }, `Uploading ${pictures.length} pictures`, sent / pictures.length,
    `${sent} of ${pictures.length} pictures uploaded.`);
  progress();
  const upload = limiter(4);
  await Promise.all(pictures.map((file) => upload(async () => {
    const entity_id = file.name.replace(/\.[^.]+$/, "");
    try {
      const kept = await api("images", { method: "POST", body: await imageForm(file) });
      lines.push(JSON.stringify({ entity_id, image_url: kept.image_url }));
    } catch (error) {
      refused.push({ row: file.name, entity_id, why: error.sentence ?? errorSentence(0, "", String(error)) });
    }
    sent += 1;
    progress();
  })));
  if (!lines.length) return listFailures(refused, true);
  const catalog = new Blob([lines.join("\n") + "\n"], { type: "application/x-ndjson" });
  await follow(await api(withBase("imports"), { method: "POST", body: catalogForm(catalog, "pictures.jsonl") }), refused);
}

/** Show `job` as it goes, until it ends (or another job is followed). */
async function follow(job, refused = []) {
  state.job = job.job_id;
  state.followed = job;
  state.cursor = null;
  listFailures(refused, true);
  byId("import-duplicates").hidden = true;
  byId("import-cancel").hidden = false;
  for (;;) {
    show(job);
    if (FINAL.has(job.status)) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (state.job !== job.job_id) return;
    job = await api(`imports/${job.job_id}`);
    if (state.job !== job.job_id) return;
  }
  byId("import-cancel").hidden = true;
  catalogChanged();
  recent();
  state.followed = job;
  if (job.mode === "check" || job.duplicates) await results(job, null);
  if (job.failed || job.replaced) await failures(job.job_id, null, refused.length === 0);
}

/** The checked rows: an import's duplicates, or a check job's every answer, a page at a time. */
async function results(job, cursor) {
  const params = new URLSearchParams({ limit: 100, ...(cursor && { cursor }),
    ...(job.mode !== "check" && { duplicates_only: "true" }) });
  try {
    const page = await api(`imports/${job.job_id}/results?${params}`);
    if (state.job !== job.job_id) return;
    state.results = page.next_cursor;
    const lines = page.results.map((r) => el("tr", {}, el("td", { text: String(r.row) }),
      el("td", { text: r.entity_id || "(none)" }), el("td", { text: resultSentence(r) })));
    if (cursor) byId("import-results").append(...lines);
    else byId("import-results").replaceChildren(...lines);
    byId("import-duplicates-title").textContent = job.mode === "check"
      ? `Each row's answer (${(job.duplicates ?? 0).toLocaleString()} already in the catalog or repeated)`
      : `Duplicates found (${job.duplicates.toLocaleString()})`;
    byId("import-duplicates").hidden = !byId("import-results").children.length;
    byId("import-results-more").hidden = !page.next_cursor;
  } catch (error) {
    showError("import-error", error);
  }
}

/** The checked rows as a CSV file, fetched with the key and saved from a blob. On AWS a long one is
 * written a part at a time, one a request (503 server_busy until the last): asked for again until whole. */
async function download() {
  const job = state.followed;
  try {
    const query = job.mode === "check" ? "format=csv" : "format=csv&duplicates_only=true";
    let blob = null;
    for (let attempt = 1; blob === null; attempt += 1) {
      try {
        blob = await api(`imports/${job.job_id}/results?${query}`, { as: "blob" });
      } catch (error) {
        if (error.code !== "server_busy" || attempt >= CSV_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    const link = el("a", { href: URL.createObjectURL(blob), download: `dupcheck-${job.job_id}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    showError("import-error", error);
  }
}

function show(job, title, fraction, counts) {
  const sentence = importSentence(job);
  // A job being uploaded has no mode yet: the page's choice says what it will be.
  const words = modeWords((job.mode ?? (byId("import-check-only").checked ? "check" : "import")) === "check");
  byId("import-failed-title").textContent = words.failed;
  byId("import-cancel").textContent = words.cancel;
  byId("import-job").hidden = false;
  byId("import-job-title").textContent = title ?? sentence.title;
  const progress = byId("import-progress");
  const value = fraction ?? (job.rows ? (job.done + job.skipped + job.failed + (job.replaced ?? 0)) / job.rows : job.status === "done" ? 1 : null);
  if (value === null) progress.removeAttribute("value"); // indeterminate: the catalog is being read
  else progress.value = value;
  byId("import-counts").textContent = counts ?? sentence.counts;
  byId("import-cancel").hidden = FINAL.has(job.status) || !job.job_id;
}

async function failures(jobId, cursor, fresh = !cursor) {
  const params = new URLSearchParams({ limit: 100, ...(cursor && { cursor }) });
  try {
    const page = await api(`imports/${jobId}/failures?${params}`);
    if (state.job !== jobId) return;
    state.cursor = page.next_cursor;
    listFailures(page.failures.map((f) => ({ row: f.row, entity_id: f.entity_id, why: rowSentence(f) })), fresh);
    byId("import-more").hidden = !page.next_cursor;
  } catch (error) {
    showError("import-error", error);
  }
}

function listFailures(rows, fresh) {
  const body = byId("import-failures");
  const lines = rows.map((r) => el("tr", {}, el("td", { text: String(r.row) }), el("td", { text: r.entity_id || "(none)" }),
    el("td", { text: r.why })));
  if (fresh) body.replaceChildren(...lines);
  else body.append(...lines);
  byId("import-failed").hidden = !body.children.length;
  if (fresh) byId("import-more").hidden = true;
}

async function cancel() {
  try {
    show(await api(`imports/${state.job}`, { method: "DELETE" }));
  } catch (error) {
    showError("import-error", error);
  }
}

async function recent() {
  try {
    const page = await api("imports?limit=10");
    byId("import-list").replaceChildren(...page.imports.map((job) => {
      const open = el("button", { type: "button", class: "secondary", text: "Show" , "aria-label": `Show the import of ${when(job)}` });
      open.addEventListener("click", () => follow(job).catch((error) => showError("import-error", error)));
      return el("li", {}, `${when(job)}: ${importSentence(job).title} `, open);
    }));
    // An empty list says so in a sentence, not as a numbered item.
    byId("import-list").hidden = !page.imports.length;
    byId("import-none").hidden = Boolean(page.imports.length);
  } catch (error) {
    showError("import-error", error);
  }
}

const when = (job) => new Date(job.created_at).toLocaleString();
