// "Is this picture already in the catalog?": a file (chosen, dropped, or a phone's camera), a
// pasted address, or a webcam shot; then the answer, the matches best first, and a comparison.
import { api, imageForm } from "./api.js";
import { answerOf, editWords, matchSentence, percentWords, skuWords, verdictWords } from "./words.js";
import { byId, clearError, el, showError, showPicture, thumbButton } from "./ui.js";

const TOP = 8; // matches asked for
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
  run(async () => api(`find_similar?top=${TOP}`, { method: "POST", body: await imageForm(blob) }), URL.createObjectURL(blob));
}

function checkUrl(url) {
  byId("check-url").value = url;
  run(() => api(`find_similar?${new URLSearchParams({ image_url: url, top: TOP })}`), url);
}

async function run(request, from) {
  const id = ++latest;
  clearError("check-error");
  setAnswer("busy", "Checking the catalog…");
  byId("check-body").hidden = true;
  if (shownFrom?.startsWith("blob:")) URL.revokeObjectURL(shownFrom);
  shownFrom = from;
  try {
    const result = await request();
    if (id === latest) render(result);
  } catch (error) {
    if (id !== latest) return;
    byId("check-answer").hidden = true;
    showError("check-error", error);
  }
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
  byId("match-grid").replaceChildren(...result.matches.map(matchCard));
  byId("check-body").hidden = false;
  byId("matches-title").hidden = !result.matches.length;
}

function matchCard(match) {
  const sku = match.sku ? el("p", { class: "sku", text: `SKU ${match.sku}` }) : null;
  const edits = editWords(match) ? el("p", { class: "edits", text: editWords(match) }) : null;
  return el("li", { class: `card ${match.verdict}` },
    thumbButton(match, `Compare ${match.entity_id} with your picture`, `Catalog picture of ${match.entity_id}`,
      () => compare(match)),
    el("p", { class: "verdict", text: verdictWords(match) }), edits,
    el("p", { class: "id", text: match.entity_id }), sku,
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
  byId("compare-verdict").textContent = matchSentence(match);
  byId("compare-caption").textContent = name;
  for (const id of ["compare-query", "slider-query"]) byId(id).src = shownFrom;
  for (const id of ["compare-match", "slider-match"]) {
    showPicture(byId(id), match.image_url);
    byId(id).alt = `Catalog picture of ${name}`;
  }
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
