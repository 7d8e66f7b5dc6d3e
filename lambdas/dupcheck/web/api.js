// Calls to the dupcheck API, from the page it serves (same origin: relative paths, no CORS).
// The API key, when this dupcheck needs one, is asked for once, when a call is refused, and kept
// in sessionStorage: for this tab only, until it closes. Every failure becomes an ApiError whose
// `sentence` says what happened in words a person can act on (words.js).
import { errorSentence } from "./words.js";

const KEY = "dupcheck.apiKey";
let asking = null; // the one key prompt open, which every refused call waits for

export class ApiError extends Error {
  constructor(status, code, message, detail = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail; // the error's other fields (a duplicate_image's matches)
    this.sentence = errorSentence(status, code, message);
  }
}

export const hasKey = () => sessionStorage.getItem(KEY) !== null;
export const forgetKey = () => sessionStorage.removeItem(KEY);

/** JSON from `path` (relative to the page), or its text with `text`, or a Blob with `as: "blob"`; or an
 * ApiError. `body` may be FormData or an object (JSON). */
export async function api(path, { method = "GET", body, text = false, as = "json" } = {}) {
  const json = body !== undefined && !(body instanceof FormData);
  for (;;) {
    const headers = new Headers({ Accept: "application/json" });
    const key = sessionStorage.getItem(KEY);
    if (key) headers.set("x-api-key", key);
    if (json) headers.set("Content-Type", "application/json");
    let response;
    try {
      response = await fetch(path, { method, headers, body: json ? JSON.stringify(body) : body });
    } catch {
      throw new ApiError(0, "network", "the network request failed");
    }
    if (response.ok) {
      if (response.status === 204) return null;
      return text ? response.text() : as === "blob" ? response.blob() : response.json();
    }
    const error = await errorOf(response);
    if (error.code !== "forbidden") throw error;
    if (sessionStorage.getItem(KEY) !== key) continue; // a key was given while this call was out: use it
    forgetKey();
    const given = await askForKey(key ? "That key was refused. Check it and try again." : "");
    if (!given) throw error;
    sessionStorage.setItem(KEY, given);
  }
}

async function errorOf(response) {
  let detail = {};
  try {
    detail = (await response.json()).error ?? {};
  } catch {
    // not JSON: a proxy in the way; the status says enough
  }
  return new ApiError(response.status, detail.code ?? "http_" + response.status, detail.message ?? response.statusText,
    detail);
}

function askForKey(why) {
  asking ??= new Promise((resolve) => {
    const dialog = document.getElementById("key-dialog");
    const input = document.getElementById("key-input");
    const reason = document.getElementById("key-why");
    reason.textContent = why;
    reason.hidden = !why;
    input.value = "";
    dialog.addEventListener("close", () => {
      asking = null;
      resolve(dialog.returnValue === "use" && input.value.trim() ? input.value.trim() : null);
    }, { once: true });
    dialog.showModal();
  });
  return asking;
}

// A picture the service keeps (uploaded without an address) is served by this API, with the key,
// which an <img src> cannot send: such a picture is fetched here and shown from a blob: URL.
const KEPT = /\/images\/[0-9a-f]{64}\.[a-z]+$/;

/** The address to show a catalog picture from (a kept one is fetched with the key first). */
export async function pictureSource(url) {
  const address = new URL(url, document.baseURI);
  if (address.origin !== location.origin || !KEPT.test(address.pathname)) return url;
  const key = sessionStorage.getItem(KEY);
  // Accept image/*: API Gateway hands the picture over as bytes only to a request that accepts it.
  const response = await fetch(address, { headers: { Accept: "image/*", ...(key && { "x-api-key": key }) } });
  if (!response.ok) throw await errorOf(response);
  return URL.createObjectURL(await response.blob());
}

/** A path segment for an entity id (ids may hold spaces, brackets, ...). */
export const itemPath = (id) => "items/" + encodeURIComponent(id);

// API Gateway passes at most 6 MB to the function, base64 included (4.5 MB of picture): a bigger
// one (a phone's camera makes 5-12 MB) is scaled down here first. dupcheck reduces pictures over
// 2048 px anyway, so nothing it would use is lost.
const SHRINK_ABOVE = 4000000; // bytes
const MAX_SIDE = 2048;

/** A multipart form holding the picture (scaled down when large), as the upload routes take it. */
export async function imageForm(blob) {
  const form = new FormData();
  form.append("file", await shrunk(blob), blob.name || "picture.jpg");
  return form;
}

async function shrunk(blob) {
  if (blob.size <= SHRINK_ABOVE) return blob;
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    return blob; // the browser cannot read it either: the API will say what it is
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob((small) => resolve(small ?? blob), "image/jpeg", 0.92));
}
