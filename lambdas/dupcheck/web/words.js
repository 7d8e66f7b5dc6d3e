// What the page says, in words a merchandiser uses: one function per kind of sentence, so the
// wording lives in one place. The verdicts' meanings are docs/api.md's ("Verdicts").

const VERDICTS = {
  duplicate: "The same picture",
  different: "A different picture",
};

/** "a", "a and b", "a, b and c" */
export function listWords(words) {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

// What sets a similar picture apart where it is a mark, not another colour (docs/api.md, edits):
// another print (marks=product), another title in the same template.
const SIMILAR_BY_MARK = {
  printed: "the same shot with another print",
  retitled: "the same template with another title",
};
const SIMILAR = "the same shot in another colour";
const similarAs = (match) =>
  (match.edits ?? []).map((e) => SIMILAR_BY_MARK[e.edit]).find(Boolean) ?? SIMILAR;

/** The verdict of one match (or one pair of a duplicate report) in words. */
export const verdictWords = (match) =>
  match.verdict === "similar" ? capitalised(similarAs(match)) : (VERDICTS[match.verdict] ?? "A picture");

/** What was edited, in one line: a match's `edit_summary`, or a report pair's `edit` (a line or
 * a list of words); "" when there is nothing to say. */
export function editWords(match) {
  return match.edit_summary ?? listWords([match.edit ?? []].flat().filter(Boolean));
}

/** "The same picture (97% match): cropped (8% off the left) and mirrored." */
export function matchSentence(match) {
  const edits = editWords(match);
  return `${verdictWords(match)} (${percentWords(match)})${edits ? `: ${edits}` : ""}.`;
}

export const percentWords = (match) => `${Math.round(match.match_percent)}% match`;

/** A similar product's similarity (cosine of the product embeddings, 0-1) as "88% alike". */
export const alikeWords = (product) => `${Math.round(Math.max(0, product.similarity) * 100)}% alike`;

/** The answer at the top of a check: { tone: "found" | "new", text }. */
export function answerOf(result) {
  const same = result.matches.filter((m) => m.verdict === "duplicate");
  if (same.length) {
    const [first] = same;
    const others = same.length - 1;
    const more = others ? `, and ${others} more time${others > 1 ? "s" : ""}` : "";
    return { tone: "found", text: `Already in the catalog as ${first.entity_id}${skuWords(first)}${more}.` };
  }
  const similar = result.matches.find((m) => m.verdict === "similar");
  if (similar) {
    return { tone: "new", text: `Not in the catalog. ${similar.entity_id} is ${similarAs(similar)}.` };
  }
  return { tone: "new", text: "Not in the catalog." };
}

export const skuWords = (item) => (item.sku ? ` (SKU ${item.sku})` : "");

/** "293 KB" */
export function sizeWords(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
const sentence = (text) => capitalised(text) + (/[.!?]$/.test(text) ? "" : ".");
// The API's messages name sizes in bytes: "the image is 300000 bytes; the limit is 200000 bytes".
const readable = (message) => message.replace(/(\d{4,}) bytes/g, (_, n) => sizeWords(Number(n)));

/** An API error as a plain sentence: what happened and, where it helps, what to do. */
export function errorSentence(status, code, message = "") {
  switch (code) {
    case "image_too_large":
      return `This picture is too large for dupcheck: ${readable(message)}.`;
    case "unsupported_media_type":
      return "This file is not a picture dupcheck can read. It reads JPEG, PNG, WebP, GIF, BMP and TIFF.";
    case "invalid_image":
      return "This picture is damaged or cut short, so it cannot be read. Save it again and retry.";
    case "url_not_allowed":
      return sentence(`dupcheck may not download from that address: ${message}`);
    case "image_unreachable":
      return sentence(`That address gives no picture: ${message}`);
    case "upstream_error":
      return sentence(`The picture's website failed to send it: ${message}`);
    case "upstream_timeout":
    case "timeout":
      return "The picture's website took too long to answer. Try again, or upload the file instead.";
    case "not_found":
      return sentence(message || "Not found");
    case "invalid_request":
    case "unknown_parameter":
      return sentence(`That was not accepted: ${message}`);
    case "forbidden":
      return "This dupcheck needs its API key, and none was accepted. Reload the page to give it again.";
    case "cross_site_request":
    case "forbidden_host":
      return sentence(`This server refused the request: ${message}`);
    case "index_unavailable":
    case "store_unavailable":
      return "The catalog cannot be reached right now. Try again in a minute.";
    case "throttled":
    case "quota_exceeded":
      return "Too many requests right now. Wait a moment and try again.";
    case "network":
      return "dupcheck cannot be reached. Check the connection and try again.";
    case "invalid_catalog":
      return sentence(`This catalog cannot be read: ${pageHints(message)}`);
    case "catalog_too_large":
      return sentence(`This catalog is too large: ${readable(message)}`);
    case "upload_failed":
      return "The catalog could not be uploaded. Try again.";
    case "conflict":
      return sentence(message);
    default:
      return sentence(`Something went wrong (${status || "no answer"}): ${message || "no details"}`);
  }
}

// The page's own names for what the API's messages call by their parameters: the import page has
// no column fields, so a missing column is renamed in the file.
export const BASE_FIELD = "Base address of relative picture paths"; // the import page's field (index.html)
const pageHints = (message) => message
  .replace(/; name it with id_column; name it with url_column$/,
    ": name the file's id column entity_id and its picture column image_url (or small_image)")
  .replace(/; name it with id_column$/, ": name the file's id column entity_id")
  .replace(/; name it with url_column$/, ": name the file's picture column image_url (or small_image)");

// The picture's own failures, said as for a check; a catalog row's own (no id, no address) as the API says them.
const PICTURE_CODES = new Set(["image_too_large", "unsupported_media_type", "invalid_image", "url_not_allowed",
  "image_unreachable", "upstream_error", "upstream_timeout"]);

/** A checked row in words: "The same picture as C3 (SKU X), 97% match: rotated." or "Row 4 has the same picture." */
export function resultSentence(r) {
  if (r.verdict === "duplicate" && r.duplicate_of_row) {
    const how = r.match ? ` (${percentWords(r.match)})${editWords(r.match) ? `: ${editWords(r.match)}` : ""}` : "";
    return `The same picture as row ${r.duplicate_of_row} (${r.duplicate_of}) of this file${how}.`;
  }
  if (r.verdict === "duplicate" && r.match && r.match.entity_id === r.duplicate_of) {
    return `The same picture as ${r.duplicate_of}${skuWords(r.match)} (${percentWords(r.match)})${editWords(r.match) ? `: ${editWords(r.match)}` : ""}.`;
  }
  if (r.verdict === "duplicate") return `The same picture as ${r.duplicate_of}.`;
  if (r.verdict === "similar") return `New. The closest is ${r.match.entity_id}${skuWords(r.match)}, similar (${percentWords(r.match)}), not the same picture.`;
  if (r.verdict === "new") return "New: nothing like it in the catalog.";
  return rowSentence(r);
}

/** The import view's words that follow the mode: a check job (mode check) imports nothing. */
export function modeWords(checking) {
  return checking
    ? { failed: "Rows that could not be checked", cancel: "Cancel the check" }
    : { failed: "Rows that were not imported", cancel: "Cancel the import" };
}

/** Why one row of an import was not imported. */
export function rowSentence(f) {
  if (f.code === "relative_image_url") {
    return `Row ${f.row}: the picture path “${f.image_url}” is relative. Fill in “${BASE_FIELD}” and import the catalog again.`;
  }
  return PICTURE_CODES.has(f.code) ? errorSentence(0, f.code, f.message) : sentence(f.message);
}

/** An import job in words: { title, counts }. A check job (mode check) stores nothing: its rows are "checked". */
export function importSentence(job) {
  const n = (x) => (x ?? 0).toLocaleString();
  const replaced = job.replaced ? `, ${n(job.replaced)} replaced by a later row of the same id` : "";
  const checking = job.mode === "check";
  const duplicates = job.duplicates ? ` ${n(job.duplicates)} ${job.duplicates === 1 ? "is a duplicate" : "are duplicates"}${
    checking ? "" : { skip: ", left out", reject: ", not imported", warn: ", imported all the same" }[job.on_duplicate] ?? ""}.` : "";
  const counts = checking
    ? `${n(job.done)} checked, ${n(job.failed)} could not be checked${replaced}.${duplicates}`
    : `${n(job.done)} imported, ${n(job.skipped)} already in the catalog or left out, ${n(job.failed)} not imported${replaced}.${duplicates}`;
  const processed = (job.done ?? 0) + (job.skipped ?? 0) + (job.failed ?? 0) + (job.replaced ?? 0);
  switch (job.status) {
    case "awaiting_upload":
      return { title: "Waiting for the catalog's upload", counts: "" };
    case "queued":
      return { title: "Queued", counts: "It starts as soon as the import before it ends." };
    case "running": {
      if (job.rows == null) return { title: "Reading the catalog", counts: "" };
      const pace = job.rows_per_s ? ` ${Math.round(job.rows_per_s)} rows a second` : "";
      const left = job.eta_s != null ? `, about ${Math.ceil(job.eta_s / 60)} min left.` : pace ? "." : "";
      return { title: `${checking ? "Checking" : "Importing"}: ${n(processed)} of ${n(job.rows)} rows`, counts: counts + pace + left };
    }
    case "done":
      return { title: checking ? `Checked ${n(job.rows)} row${job.rows === 1 ? "" : "s"}` : doneTitle(job, n), counts };
    case "cancelled":
      return { title: `Cancelled after ${n(processed)} rows`, counts };
    default:
      return { title: "The import failed", counts: sentence(job.error || "no reason given") };
  }
}

/** What a finished import did, counted as its counts line counts it: "4 of 7 rows imported". */
function doneTitle(job, n) {
  const rows = job.rows ?? 0;
  const done = job.done ?? 0;
  if (rows && done === rows) return rows === 1 ? "Imported 1 row" : `Imported all ${n(rows)} rows`;
  if (rows && !done && job.skipped === rows) return `Nothing new: all ${n(rows)} rows already in the catalog`;
  return `${n(done)} of ${n(rows)} row${rows === 1 ? "" : "s"} imported`;
}

/** What the Check result folds away: "The 5 nearest different pictures". */
export const differentWords = (count) =>
  count === 1 ? "The nearest different picture" : `The ${count} nearest different pictures`;

/** Records a duplicate scan could not compare, in the page's words (the report's own message
 * names the hash pipelines and a command to run: for whoever runs dupcheck, not for this page). */
export function skippedWords(skipped, records) {
  if (!skipped?.records) return "";
  const count = skipped.records === 1 ? "1 record was" : `${skipped.records.toLocaleString()} records were`;
  return `${count} not compared (of ${records.toLocaleString()}): they need indexing again, which whoever runs dupcheck can do.`;
}

/** The report's records left unchecked (their worker process died twice on them), in words. */
export function notVerifiedWords(notVerified) {
  if (!notVerified?.records) return "";
  const ids = notVerified.entity_ids ?? [];
  const named = ids.slice(0, 10).join(", ") + (ids.length > 10 ? ` and ${ids.length - 10} more` : "");
  const count = notVerified.records === 1 ? "1 record was" : `${notVerified.records.toLocaleString()} records were`;
  return `${count} not checked against their look-alikes (${named}): the process checking them was stopped twice, most likely for lack of memory. Scanning again checks them.`;
}

/** Why a duplicate group's record to keep is that one, from the report's reason: "Keep magento_0003:
 * the original: the others are edits of it (copy-1 cropped, bf-copy in grayscale)."; "" for a report
 * written before reasons were. */
export function keepSentence(group, keep) {
  return group.keep_reason ? sentence(`Keep ${keep}: ${group.keep_reason}`) : "";
}

/** A decision on a duplicate group in words: `decision` ({ decision, item }) and what it did to each
 * of its `others` ([{ id, outcome }], outcome as the API says it). */
export function decisionSentence(decision, others) {
  const ids = (list) => list.map((o) => o.id).join(", ");
  if (decision.decision === "not_duplicate") return `Not duplicates of ${decision.item}: ${ids(others)}.`;
  const removed = others.filter((o) => o.outcome === "removed");
  const left = others.filter((o) => o.outcome !== "removed");
  const parts = [removed.length && `${ids(removed)} removed from the catalog`, left.length && `${ids(left)} left in the catalog, marked resolved`];
  return `Kept ${decision.item}; ${parts.filter(Boolean).join("; ")}.`;
}

// A scan's steps (the engine's phases), as the page names them.
const SCAN_STEPS = {
  read: "Reading the catalog",
  pair: "Pairing alike pictures",
  thumbnails: "Fetching the thumbnails",
  verify: "Comparing the pictures",
  report: "Writing the report",
};

/** A duplicate scan in words: { title, counts }. */
export function scanSentence(scan) {
  const n = (x) => (x ?? 0).toLocaleString();
  switch (scan.status) {
    case "queued":
      return { title: "Scan queued", counts: "It starts in a moment." };
    case "running": {
      // The API numbers the steps; each counts records of the catalog, so the bar and the words agree.
      if (!scan.step || !SCAN_STEPS[scan.phase]) return { title: "Scanning the catalog", counts: "Starting." };
      const count = scan.total != null ? ` ${n(scan.done)} of ${n(scan.total)} records.` : "";
      return { title: `Scanning the catalog: step ${scan.step} of ${scan.steps}`, counts: `${SCAN_STEPS[scan.phase]}.${count}` };
    }
    case "done": // its groups and their summary show below: one sentence says what it found
      return { title: "Scan finished", counts: "" };
    case "cancelled":
      return { title: "Scan cancelled", counts: "The groups shown are those of the scan before it." };
    default:
      return { title: "The scan failed", counts: sentence(scan.error || "no reason given") };
  }
}
