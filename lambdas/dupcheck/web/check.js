// "Is this picture already in the catalog?": a file (chosen, dropped, or a phone's camera), a
// pasted address, or a webcam shot; then the answer, the matches best first, and a comparison.
import { api, imageForm } from "./api.js";
import { alikeWords, answerOf, differentWords, editWords, matchSentence, percentWords, skuWords, verdictWords } from "./words.js";
import { byId, clearError, el, idLine, marksOf, outlineMark, showError, showPicture, thumbButton } from "./ui.js";

const TOP = 8; // matches asked for, and similar products shown
// Similar products asked for: the duplicates the check found come first among them and are not
// shown again, so a few more than shown.
const LOOKALIKES_ASKED = TOP + 4;
let shownFrom = null; // where the query picture is shown from: an object URL or the pasted address
let latest = 0; // the latest check: an answer to an older one, arriving late, is dropped

export function initCheck() {
  for (const input of [byId("check-file"), byId("check-camera")]) {
    input.addEventListener("change", () => {
      if (input.files[0]) checkFile(input.files[0]);
      input.value = ""; // the same file again is a new check
    });
  }
  initDropZone();
  byId("check-url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    checkUrl(byId("check-url").value.trim());
  });
  initCompare();
  initWebcam();
}

function initDropZone() {
  const zone = byId("drop-zone");
  // A picture dropped beside the zone must not make the browser leave the page to show it.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  zone.addEventListener("dragover", () => zone.classList.add("dragging"));
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    const url = event.dataTransfer.getData("text/uri-list").split("\n")[0].trim(); // a picture dragged off a web page
    if (file) checkFile(file);
    else if (url) checkUrl(url);
  });
}

export function checkFile(blob) {
  const form = imageForm(blob); // scaled once, sent to both routes
  run(
    async () => api(`find_similar?${new URLSearchParams({ top: TOP, ...marksOf("check-marks") })}`,
      { method: "POST", body: await form }),
    async () => api(`similar_products?top=${LOOKALIKES_ASKED}`, { method: "POST", body: await form }),
    URL.createObjectURL(blob),
  );
}

function checkUrl(url) {
  byId("check-url").value = url;
  run(
    () => api(`find_similar?${new URLSearchParams({ image_url: url, top: TOP, ...marksOf("check-marks") })}`),
    () => api(`similar_products?${new URLSearchParams({ image_url: url, top: LOOKALIKES_ASKED })}`),
    url,
  );
}

async function run(request, lookalikes, from) {
  const id = ++latest;
  clearError("check-error");
  setAnswer("busy", "Checking the catalog…");
  byId("check-body").hidden = true;
  if (shownFrom?.startsWith("blob:")) URL.revokeObjectURL(shownFrom);
  shownFrom = from;
  byId("lookalikes").hidden = true;
  try {
    const result = await request();
    if (id !== latest) return;
    render(result);
    showLookalikes(id, lookalikes, result);
  } catch (error) {
    if (id !== latest) return;
    byId("check-answer").hidden = true;
    showError("check-error", error);
  }
}

// "Looks like these products", under the duplicate answer: another question (do we sell something
// that looks like this?), asked after the first answer is shown. Where similar products are off,
// the section stays hidden and is not asked for again in this tab; another failure is said in it,
// never over the answer above.
const PRODUCTS_OFF = "dupcheck-similar-products-off";

async function showLookalikes(id, request, result) {
  if (sessionStorage.getItem(PRODUCTS_OFF)) return;
  const duplicates = new Set(result.matches.filter((m) => m.verdict === "duplicate").map((m) => m.entity_id));
  const note = byId("lookalikes-note");
  try {
    const found = await request();
    if (id !== latest) return;
    const products = found.products.filter((p) => !duplicates.has(p.entity_id)).slice(0, TOP);
    byId("lookalike-grid").replaceChildren(...products.map(lookalikeCard));
    note.textContent = products.length ? "" : "No other product in the catalog yet.";
  } catch (error) {
    if (error.code === "products_unavailable") sessionStorage.setItem(PRODUCTS_OFF, "1");
    if (id !== latest || error.code === "products_unavailable") return;
    byId("lookalike-grid").replaceChildren();
    note.textContent = `Similar products could not be found: ${error.sentence}`;
  }
  note.hidden = !note.textContent;
  byId("lookalikes").hidden = false;
}

function lookalikeCard(product) {
  const sku = product.sku ? el("p", { class: "sku", text: `SKU ${product.sku}` }) : null;
  return el("li", { class: "card lookalike" },
    thumbButton(product, `Compare ${product.entity_id} with your picture`, `Catalog picture of ${product.entity_id}`,
      () => compare({ ...product, sentence: `Looks like your picture (${alikeWords(product)}): another product, not a duplicate.` })),
    idLine(product.entity_id), sku,
    el("p", { class: "percent", text: alikeWords(product) }));
}

function setAnswer(tone, text) {
  const answer = byId("check-answer");
  answer.className = `answer ${tone}`;
  answer.textContent = text;
  answer.hidden = false;
}

function render(result) {
  const { tone, text } = answerOf(result);
  setAnswer(tone, text);
  byId("query-image").src = shownFrom;
  // The duplicates and similar pictures answer the question; the nearest different ones are
  // folded behind one line, for whoever wants to look.
  const alike = result.matches.filter((m) => m.verdict !== "different");
  const different = result.matches.filter((m) => m.verdict === "different");
  byId("match-grid").replaceChildren(...alike.map(matchCard));
  byId("matches-title").hidden = !alike.length;
  const folded = byId("different");
  folded.open = false;
  folded.hidden = !different.length;
  byId("different-title").textContent = differentWords(different.length);
  byId("different-grid").replaceChildren(...different.map(matchCard));
  byId("check-body").hidden = false;
}

function matchCard(match) {
  const sku = match.sku ? el("p", { class: "sku", text: `SKU ${match.sku}` }) : null;
  const edits = editWords(match) ? el("p", { class: "edits", text: editWords(match) }) : null;
  return el("li", { class: `card ${match.verdict}` },
    thumbButton(match, `Compare ${match.entity_id} with your picture`, `Catalog picture of ${match.entity_id}`,
      () => compare(match)),
    el("p", { class: "verdict", text: verdictWords(match) }), edits,
    idLine(match.entity_id), sku,
    el("p", { class: "percent", text: percentWords(match) }));
}

// -- side by side, or one over the other with a slider --------------------------------------

function initCompare() {
  for (const radio of document.querySelectorAll('input[name="compare-mode"]')) {
    radio.addEventListener("change", () => {
      byId("compare-side").hidden = radio.value !== "side";
      byId("compare-slider").hidden = radio.value !== "slider";
    });
  }
  byId("slider-range").addEventListener("input", (event) => {
    byId("slider-stage").style.setProperty("--reveal", `${event.target.value}%`);
  });
}

function compare(match) {
  const name = `${match.entity_id}${skuWords(match)}`;
  byId("compare-title").textContent = `Your picture and ${match.entity_id}`;
  byId("compare-verdict").textContent = match.sentence ?? matchSentence(match);
  byId("compare-caption").textContent = name;
  for (const id of ["compare-query", "slider-query"]) byId(id).src = shownFrom;
  for (const id of ["compare-match", "slider-match"]) {
    showPicture(byId(id), match.image_url);
    byId(id).alt = `Catalog picture of ${name}`;
  }
  // A mark's box on each picture, side by side: on the copy where it lies, on the original where it would.
  const mark = (match.edits ?? []).find((edit) => edit.box);
  const [held, other] = [mark?.box, mark?.original_box];
  const [ours, theirs] = match.edited === "catalog" ? [other, held] : [held, other];
  outlineMark(byId("compare-query"), ours, ours === held ? "The mark" : "Where the mark would lie");
  outlineMark(byId("compare-match"), theirs, theirs === held ? "The mark" : "Where the mark would lie");
  byId("compare").showModal();
}

// -- the webcam, where the browser has one and allows it ------------------------------------

function initWebcam() {
  if (!navigator.mediaDevices?.getUserMedia) return; // phones use "Take a photo" (the camera input)
  const open = byId("webcam-open");
  const box = byId("webcam");
  const video = byId("webcam-video");
  let stream = null;
  const stop = () => {
    stream?.getTracks().forEach((track) => track.stop());
    stream = video.srcObject = null;
    box.hidden = true;
    open.hidden = false;
  };
  open.hidden = false;
  open.addEventListener("click", async () => {
    clearError("check-error");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (error) {
      showError("check-error", { sentence: webcamSentence(error) });
      return;
    }
    video.srcObject = stream;
    box.hidden = false;
    open.hidden = true;
    byId("webcam-shoot").focus();
  });
  byId("webcam-close").addEventListener("click", stop);
  byId("webcam-shoot").addEventListener("click", () => {
    if (!video.videoWidth) return; // no picture yet
    const canvas = el("canvas", { width: video.videoWidth, height: video.videoHeight });
    canvas.getContext("2d").drawImage(video, 0, 0);
    stop();
    canvas.toBlob((shot) => checkFile(shot), "image/jpeg", 0.92);
  });
}

function webcamSentence(error) {
  if (error.name === "NotAllowedError") {
    return "The browser did not let this page use the webcam. Allow it for this site, or take a photo instead.";
  }
  if (error.name === "NotFoundError") return "No webcam was found. Choose a file or paste an address instead.";
  return `The webcam could not start (${error.message}). Choose a file or paste an address instead.`;
}
