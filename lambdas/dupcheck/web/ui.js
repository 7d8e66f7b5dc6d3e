// Small DOM helpers shared by the views. Text always goes in as textContent, never as HTML.
import { pictureSource } from "./api.js";

export const byId = (id) => document.getElementById(id);
/** A form's `marks` choice as query parameters: none where it leaves the catalog's setting. */
export const marksOf = (id) => (byId(id).value ? { marks: byId(id).value } : {});

/** Each form's `marks` choice, made from the page's one #marks-choice: a `<template data-marks="ID">`
 * becomes its label and its select #ID. */
export function initMarksChoices() {
  const choice = byId("marks-choice").content;
  for (const slot of document.querySelectorAll("template[data-marks]")) {
    const made = choice.cloneNode(true);
    made.querySelector("select").id = slot.dataset.marks;
    made.querySelector("label").htmlFor = slot.dataset.marks;
    slot.replaceWith(made);
  }
}

/** An element with properties (`class`, `text`, `aria-*` and `data-*` attributes, DOM properties) and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("aria-") || name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  node.append(...children.filter((child) => child != null && child !== false));
  return node;
}

/** Show an ApiError's sentence (or a plain { sentence }) in the error paragraph `id`. */
export function showError(id, error) {
  const paragraph = byId(id);
  paragraph.textContent = error?.sentence ?? "Something went wrong in this page. Reload it and try again.";
  paragraph.hidden = false;
  if (!error?.sentence) console.warn(error); // a bug of the page, not an API answer
}

/** Scroll the element `id` into view if it is not: a result said where the eye is. */
export const reveal = (id) => byId(id).scrollIntoView({ block: "nearest" });

export function clearError(id) {
  const paragraph = byId(id);
  paragraph.textContent = "";
  paragraph.hidden = true;
}

/** A card's id line: it wraps whole, or after one of its own separators ("magento_" / "0006"),
 * never inside a word; a part longer than the card still breaks, so nothing spills out. */
export function idLine(id) {
  const parts = id.split(/(?<=[_./:@|+])/); // a hyphen or a space already lets a line break after it
  return el("p", { class: "id" }, ...parts.flatMap((part, i) => (i ? [el("wbr"), part] : [part])));
}

const noPicture = (text) => el("span", { class: "no-picture", text });

/** A catalog picture loaded from its address, or a note when it has none or cannot be shown. */
export function picture(item, alt) {
  if (!item.image_url) return noPicture("No picture address");
  const image = el("img", { alt, decoding: "async" });
  const unshown = () => image.replaceWith(noPicture("The picture cannot be shown"));
  image.addEventListener("error", unshown, { once: true });
  showPicture(image, item.image_url, unshown);
  return image;
}

/** Point `image` at a catalog picture's address (a kept picture is fetched with the key). */
export function showPicture(image, url, failed = () => {}) {
  image.removeAttribute("src");
  pictureSource(url).then((source) => { image.src = source; }, failed);
}

/** A square thumbnail button that shows `item`'s picture and runs `open` when pressed. */
export function thumbButton(item, label, alt, open) {
  const button = el("button", { type: "button", class: "thumb", "aria-label": label }, picture(item, alt));
  button.addEventListener("click", open);
  return button;
}

/** Runs promises from `start()` at most `limit` at a time (thumbnails: a few requests at once). */
export function limiter(limit) {
  let running = 0;
  const waiting = [];
  const next = () => {
    if (running >= limit || !waiting.length) return;
    running += 1;
    const { start, resolve, reject } = waiting.shift();
    start().then(resolve, reject).finally(() => {
      running -= 1;
      next();
    });
  };
  return (start) => new Promise((resolve, reject) => {
    waiting.push({ start, resolve, reject });
    next();
  });
}

/** Outline `box` (left, top, right, bottom: shares of the picture's sides, as the API gives a mark's
 * box) over `image`, shown whole in a square (object-fit: contain); none where `box` is null. Placed
 * again whenever the picture (re)loads, until the next call. */
export function outlineMark(image, box, label) {
  const holder = image.parentElement;
  if (image.placeMark) image.removeEventListener("load", image.placeMark);
  image.placeMark = null;
  holder.querySelector(".mark-box")?.remove();
  if (!box) return;
  const place = () => {
    holder.querySelector(".mark-box")?.remove();
    if (!image.naturalWidth) return; // no picture to outline (yet)
    // The picture's share of the square each way, centred in the letterbox contain leaves.
    const aspect = image.naturalWidth / image.naturalHeight;
    const across = Math.min(1, aspect), down = Math.min(1, 1 / aspect);
    const percent = (value) => `${(100 * value).toFixed(2)}%`;
    const mark = el("div", { class: "mark-box", title: label, "aria-hidden": "true" });
    Object.assign(mark.style, { // through the CSSOM: the page's policy allows no inline style attribute
      left: percent((1 - across) / 2 + box.left * across), top: percent((1 - down) / 2 + box.top * down),
      width: percent((box.right - box.left) * across), height: percent((box.bottom - box.top) * down),
    });
    holder.append(mark);
  };
  image.placeMark = place;
  image.addEventListener("load", place);
  if (image.complete) place();
}
