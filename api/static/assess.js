/*
 * The seller's upload page: photos by drag and drop, file picker or the phone camera; the API
 * key lives in this tab's session storage.
 *
 * Preview before record: as photos are added, they are sent to POST /v1/assessments/preview,
 * which answers each photo's check and the provisional verdict and stores nothing. Only "Record
 * the verdict" registers the item (when it is a new one) and records the assessment; a
 * submission whose photos are all unusable is not sent at all (and the API would refuse it).
 *
 * The item this page registers is kept in this browser (localStorage: the item id, category,
 * brand and model, all public anyway; never the key) and offered first on the next visit, so a
 * retry after a failed upload, even in a new tab, does not register the item a second time.
 *
 * Every verdict ends with a next step: labs (GET /v1/labs) for an inconclusive or contested
 * result, the reasons and evidence for a counterfeit one; set-aside photos show no score, only
 * why and what a retake should show. Errors are the API's own problem+json words, with field
 * names as this form labels them.
 *
 * Slots (issue 14): the page walks the seller through the capture guide of the item's category,
 * one slot per view (an outline drawing, the one-line instruction, what the quality gate asks of
 * it, "Take photo" opening the phone's camera). Each slot's photo is sent with its view (the
 * `views` field, in photo order: slots first, then the other photos as `unspecified`), so the
 * preview answers per slot with retake advice before anything is recorded, and the verdict lists
 * the views still missing and the evidence per view. Every word comes from the page's language:
 * the catalogue the page embeds (JSON, id "i18n") and the guides and reasons it carries.
 */
"use strict";

(function () {
  // Messages in the page's language (the catalogue the page embeds; English stands without one).
  const MESSAGES = readJson("i18n");
  function t(message, values) {
    const text = Object.prototype.hasOwnProperty.call(MESSAGES, message) ? MESSAGES[message] : message;
    return values ? text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m)) : text;
  }
  function readJson(id) {
    try {
      const node = document.getElementById(id);
      return (node && JSON.parse(node.textContent)) || {};
    } catch (e) {
      return {};
    }
  }
  // The capture guides (slots), the reasons' messages by code, in the page's language.
  const WORDS = readJson("page-words");
  const GUIDES = WORDS.guides || {};
  const REASON_WORDS = WORDS.messages || {};
  const NOT_VALIDATED = WORDS.not_validated || {};
  const CATEGORY_WORDS = { bag: t("bag"), watch: t("watch"), sneaker: t("sneaker") };

  const KEY_STORE = "authenticator.apiKey";
  const ITEM_STORE = "authenticator.keptItem";
  const main = document.getElementById("main");
  const maxPhotos = Number(main.dataset.maxPhotos) || 12;
  const maxPhotoBytes = Number(main.dataset.maxPhotoBytes) || 25 * 1024 * 1024;
  const maxBodyBytes = Number(main.dataset.maxBodyBytes) || 64 * 1024 * 1024;
  const form = document.getElementById("assess-form");
  const keyInput = document.getElementById("api-key");
  const drop = document.getElementById("drop");
  const picker = document.getElementById("photos");
  const camera = document.getElementById("camera");
  const thumbs = document.getElementById("thumbs");
  const count = document.getElementById("photo-count");
  const errorBox = document.getElementById("form-error");
  const submit = document.getElementById("submit");
  const progressBox = document.getElementById("progress-box");
  const progress = document.getElementById("progress");
  const progressLabel = document.getElementById("progress-label");
  const result = document.getElementById("result");
  const previewBox = document.getElementById("preview");
  const previewStatus = document.getElementById("preview-status");
  const files = []; // the other photos (no view)
  const objectUrls = [];
  const slotFiles = new Map(); // view id -> File, for the current category's guide
  let guideCategory = null; // the category whose slots are drawn
  let existingCategory = null; // the category of an item typed in by id (GET /v1/items/{id})
  let ready = false; // slots are drawn once every part of the page is set up
  const retakeHints = readJson("retake-hints");

  const DECISIONS = {
    authentic: ["✓", t("Authentic"), "badge-ai_verified"],
    counterfeit: ["!", t("Counterfeit"), "badge-warning"],
    inconclusive: ["?", t("Inconclusive: a lab inspection is needed"), "badge-inconclusive"],
  };
  const KEPT_CODES = new Set(["photo_reused"]);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  /** Replace a node's children, leaving out the null ones (replaceChildren would print "null"). */
  function fill(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  }

  function tooLarge(f) {
    return t("{name} is {size}; a photo can be at most {max}", { name: f.name, size: mb(f.size), max: mb(maxPhotoBytes) });
  }

  function mb(bytes) {
    const value = bytes / (1024 * 1024);
    const text = value >= 100 ? value.toFixed(0) : value.toFixed(1);
    return t("{n} MB", { n: text.endsWith(".0") ? text.slice(0, -2) : text });
  }

  function percent(p) {
    return typeof p === "number" ? Math.round(p * 100) + "%" : "";
  }

  // --- the API key ---------------------------------------------------------------------------

  try {
    keyInput.value = sessionStorage.getItem(KEY_STORE) || "";
  } catch (e) {
    /* storage may be off; the field still works */
  }
  keyInput.addEventListener("input", () => {
    try {
      sessionStorage.setItem(KEY_STORE, keyInput.value.trim());
    } catch (e) {
      /* ignore */
    }
    schedulePreview(600);
  });

  // --- the item: new, kept from an earlier visit, or another one -------------------------------

  function keptItem() {
    try {
      const value = JSON.parse(localStorage.getItem(ITEM_STORE) || "null");
      return value && typeof value.id === "string" ? value : null;
    } catch (e) {
      return null;
    }
  }

  function keepItem(value) {
    try {
      localStorage.setItem(ITEM_STORE, JSON.stringify(value));
    } catch (e) {
      /* storage off: nothing to offer next time */
    }
    showKept();
  }

  function mode() {
    return form.querySelector('input[name="item_mode"]:checked').value;
  }

  function choose(value) {
    const radio = form.querySelector(`input[name="item_mode"][value="${value}"]`);
    radio.checked = true;
    radio.dispatchEvent(new Event("change"));
  }

  function showKept() {
    const kept = keptItem();
    const choice = document.getElementById("kept-choice");
    choice.hidden = !kept;
    document.getElementById("kept-hint").hidden = !kept || kept.recorded;
    if (!kept) return;
    const what = { brand: kept.brand, model: kept.model, category: CATEGORY_WORDS[kept.category] || kept.category };
    document.getElementById("kept-label").textContent = kept.recorded
      ? t("The item you registered here: {brand} {model} ({category}), verdict recorded", what)
      : t("The item you registered here: {brand} {model} ({category}), no verdict recorded yet", what);
  }

  for (const radio of form.querySelectorAll('input[name="item_mode"]')) {
    radio.addEventListener("change", () => {
      const m = mode();
      document.getElementById("existing-item").hidden = m !== "existing";
      document.getElementById("new-item").hidden = m !== "new";
      refreshSlots();
    });
  }
  showKept();
  const startKept = keptItem();
  if (startKept && !startKept.recorded) choose("kept");

  // --- errors --------------------------------------------------------------------------------

  function showError(title, detail) {
    errorBox.replaceChildren(el("strong", {}, title), el("p", { id: "error-detail" }, detail));
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
  }

  /** A form field's label, for the field names of an API validation error. */
  function labelOf(field) {
    const id = { category: "category", brand: "brand", model: "model", item_id: "item-id" }[field];
    const label = id ? document.querySelector(`label[for="${id}"]`) : null;
    return label ? label.textContent.trim() : field.replace(/_/g, " ");
  }

  function plainValidation(msg) {
    let m = /^String should have at least (\d+) characters?$/.exec(msg);
    if (m) return m[1] === "1" ? t("enter a value") : t("enter at least {n} characters", { n: m[1] });
    m = /^String should have at most (\d+) characters?$/.exec(msg);
    if (m) return t("at most {n} characters", { n: m[1] });
    if (msg === "Field required") return t("enter a value");
    if (/^Input should be /.test(msg)) return t("choose {what}", { what: msg.replace(/^Input should be /, "") });
    return msg;
  }

  /** The API's problem+json message (validation errors named by this form's labels), or the best words we have. */
  function problemOf(status, text) {
    try {
      const p = JSON.parse(text);
      if (p && typeof p.detail === "string") {
        if (status === 422 && Array.isArray(p.errors) && p.errors.length) {
          const words = p.errors
            .filter((e) => Array.isArray(e.loc) && e.loc[0] === "body")
            .map((e) => `${labelOf(String(e.loc[e.loc.length - 1]))}: ${plainValidation(String(e.msg))}`);
          if (words.length) return { title: t("Check the form"), detail: words.join(t("; ")) };
        }
        return { title: p.title || t("Error {status}", { status }), detail: p.detail };
      }
    } catch (e) {
      /* not JSON */
    }
    return {
      title: t("Error {status}", { status }),
      detail: text ? text.slice(0, 300) : t("The server answered {status}.", { status }),
    };
  }

  class ApiError extends Error {
    constructor(title, detail) {
      super(detail);
      this.title = title;
      this.detail = detail;
    }
  }

  // --- photos --------------------------------------------------------------------------------

  function drawThumbs() {
    for (const u of objectUrls.splice(0)) URL.revokeObjectURL(u);
    thumbs.replaceChildren(
      ...files.map((f, i) => {
        const url = URL.createObjectURL(f);
        objectUrls.push(url);
        const remove = el("button", { type: "button", class: "secondary", "aria-label": t("Remove {name}", { name: f.name }) }, "×");
        remove.addEventListener("click", () => {
          files.splice(i, 1);
          drawThumbs();
          schedulePreview(0);
        });
        return el("li", {}, el("img", { src: url, alt: t("Selected photo {name}", { name: f.name }) }), remove, f.name);
      })
    );
    const n = photoCount();
    count.textContent = n
      ? n === 1
        ? t("1 photo selected (at most {max}).", { max: maxPhotos })
        : t("{n} photos selected (at most {max}).", { n, max: maxPhotos })
      : t("No photos yet.");
  }

  function addFiles(list) {
    const refused = [];
    for (const f of list) {
      if (f.size > maxPhotoBytes) refused.push(tooLarge(f));
      else files.push(f);
    }
    drawThumbs();
    if (refused.length) count.textContent += " " + t("Not added: {why}.", { why: refused.join(t("; ")) });
    schedulePreview(0);
  }

  picker.addEventListener("change", () => {
    addFiles(picker.files);
    picker.value = "";
  });
  camera.addEventListener("change", () => {
    addFiles(camera.files);
    camera.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files) addFiles(e.dataTransfer.files);
  });

  // --- slots: one per view of the item category's capture guide ------------------------------

  function currentCategory() {
    const m = mode();
    if (m === "kept") {
      const kept = keptItem();
      if (kept) return kept.category;
    }
    if (m === "existing") return existingCategory;
    return document.getElementById("category").value;
  }

  function photoCount() {
    return slotFiles.size + files.length;
  }

  function guideViews(category) {
    const guide = GUIDES[category];
    return guide ? [...guide.required, ...guide.optional] : [];
  }

  /** The photos to send, in order: each slot's (with its view), then the other photos (unspecified). */
  function photosToSend() {
    const out = [];
    for (const v of guideViews(guideCategory)) {
      if (slotFiles.has(v.id)) out.push({ file: slotFiles.get(v.id), view: v.id, viewName: v.name });
    }
    for (const f of files) out.push({ file: f, view: "unspecified", viewName: null });
    return out;
  }

  function refreshSlots() {
    if (!ready) return;
    const category = currentCategory();
    if (category === guideCategory) return;
    guideCategory = category;
    slotFiles.clear();
    drawSlots();
    drawThumbs();
    schedulePreview(0);
  }

  function drawSlots() {
    const section = document.getElementById("slots");
    const guide = GUIDES[guideCategory];
    section.hidden = !guide;
    if (!guide) return;
    const note = document.getElementById("guide-note");
    const validated = WORDS.validated || [];
    note.hidden = validated.includes(guideCategory) || !NOT_VALIDATED[guideCategory];
    note.textContent = note.hidden ? "" : NOT_VALIDATED[guideCategory];
    document.getElementById("slot-list").replaceChildren(...guide.required.map(slotNode));
    document.getElementById("optional-slot-list").replaceChildren(...guide.optional.map(slotNode));
    document.getElementById("more-slots").hidden = !guide.optional.length;
    drawMissing(null);
  }

  function slotNode(v) {
    const id = "slot-" + v.id;
    const camera = el("input", { type: "file", id: id + "-camera", accept: "image/*", capture: "environment", class: "slot-input" });
    const chooser = el("input", {
      type: "file",
      id: id + "-file",
      accept: "image/jpeg,image/png,image/webp,image/heic,image/heif",
      class: "slot-input",
    });
    const status = el("p", { class: "slot-status", id: id + "-status", "aria-live": "polite" }, t("No photo yet."));
    const shot = el("div", { class: "slot-shot", id: id + "-shot" });
    const li = el(
      "li",
      { class: "slot", id, "data-view": v.id, "data-state": "empty", "data-required": String(v.required) },
      v.outline ? el("img", { class: "outline", src: v.outline, alt: t("Drawing: how to frame the {view} photo", { view: v.name }), width: "80", height: "80" }) : null,
      el(
        "div",
        { class: "slot-body" },
        el("h3", { class: "slot-name" }, v.required ? v.name : t("{name} (optional)", { name: v.name })),
        el("p", { class: "slot-instruction" }, v.instruction),
        el("p", { class: "slot-gate hint" }, v.quality.checks),
        el(
          "div",
          { class: "pick slot-pick" },
          el("label", { class: "button", for: id + "-camera" }, t("Take photo")),
          camera,
          el("label", { class: "button secondary", for: id + "-file" }, t("Choose a file")),
          chooser
        ),
        shot,
        status
      )
    );
    for (const input of [camera, chooser]) {
      input.setAttribute("aria-label", t("{view}: photo", { view: v.name }));
      input.addEventListener("change", () => {
        const f = input.files && input.files[0];
        input.value = "";
        if (!f) return;
        if (f.size > maxPhotoBytes) {
          li.dataset.state = "retake";
          status.textContent = tooLarge(f);
          return;
        }
        slotFiles.set(v.id, f);
        drawSlotShot(v, li);
        drawThumbs();
        schedulePreview(0);
      });
    }
    if (slotFiles.has(v.id)) drawSlotShot(v, li);
    return li;
  }

  const slotUrls = new Map();

  function drawSlotShot(v, li) {
    const shot = li.querySelector(".slot-shot");
    const status = li.querySelector(".slot-status");
    const f = slotFiles.get(v.id);
    if (slotUrls.has(v.id)) URL.revokeObjectURL(slotUrls.get(v.id));
    slotUrls.delete(v.id);
    if (!f) {
      shot.replaceChildren();
      li.dataset.state = "empty";
      status.textContent = t("No photo yet.");
      return;
    }
    const url = URL.createObjectURL(f);
    slotUrls.set(v.id, url);
    const remove = el("button", { type: "button", class: "secondary", "aria-label": t("Remove {name}", { name: f.name }) }, "×");
    remove.addEventListener("click", () => {
      slotFiles.delete(v.id);
      drawSlotShot(v, li);
      drawThumbs();
      schedulePreview(0);
    });
    shot.replaceChildren(el("img", { src: url, alt: t("{view}: your photo {name}", { view: v.name, name: f.name }) }), remove);
    li.dataset.state = "checking";
    status.textContent = t("Checking…");
  }

  /** A slot's answer from the preview: usable, or why it was set aside and what a retake should show. */
  function drawSlotCheck(view, photo) {
    const li = document.getElementById("slot-" + view);
    if (!li) return;
    const status = li.querySelector(".slot-status");
    if (!photo) {
      li.dataset.state = slotFiles.has(view) ? "checking" : "empty";
      return;
    }
    if (onlyForALab(photo)) {
      li.dataset.state = "ok";
      status.textContent = t("✓ Good photo. {why}", { why: photo.reasons.map(reasonText).join(" ") });
    } else if (setAside(photo)) {
      li.dataset.state = "retake";
      const why = photo.reasons.filter((r) => !KEPT_CODES.has(r.code)).map(reasonText).join(" ");
      const hint = retakeFor(photo);
      const v = guideViews(guideCategory).find((x) => x.id === view);
      fill(
        status,
        el("strong", {}, t("Retake this photo.")),
        " ",
        why,
        " ",
        v ? t("It should show: {instruction}", { instruction: v.instruction }) : null,
        hint ? " " + t("Hint: {hint}.", { hint }) : null
      );
    } else {
      li.dataset.state = "ok";
      status.textContent = t("✓ Usable for the verdict.");
    }
  }

  function drawMissing(missing) {
    const box = document.getElementById("missing-views");
    if (!missing || !missing.length) {
      box.textContent = "";
      return;
    }
    box.textContent = t("Still missing: {views}.", { views: missing.map((m) => nameOfView(m.id, m.name)).join(t(", ")) });
  }

  function nameOfView(id, fallback) {
    const v = guideViews(guideCategory).find((x) => x.id === id);
    return v ? v.name : fallback || id;
  }

  /** A reason's words in the page's language (the API answers English). */
  function reasonText(r) {
    if (r.code === "category_not_validated") {
      const category = guideCategory && NOT_VALIDATED[guideCategory] ? guideCategory : null;
      if (category) return NOT_VALIDATED[category];
    }
    if (r.code === "missing_views") return REASON_WORDS.missing_views || r.message;
    const base = REASON_WORDS[r.code];
    if (!base) return r.message;
    const detail = r.message.startsWith(MESSAGES_EN[r.code] || "\u0000") ? r.message.slice((MESSAGES_EN[r.code] || "").length) : "";
    return base + detail;
  }
  const MESSAGES_EN = WORDS.messages_en || {};

  document.getElementById("category").addEventListener("change", refreshSlots);
  const itemIdInput = document.getElementById("item-id");
  itemIdInput.addEventListener("change", async () => {
    existingCategory = null;
    const id = itemIdInput.value.trim();
    if (id) {
      try {
        const response = await fetch("/v1/items/" + encodeURIComponent(id), { headers: { Accept: "application/json" } });
        if (response.ok) existingCategory = (await response.json()).category;
      } catch (e) {
        /* no slots for an item we cannot read */
      }
    }
    refreshSlots();
  });

  // --- preview: nothing stored ---------------------------------------------------------------

  let previewTimer = null;
  let lastPreview = null; // { signature, promise }

  function signature(key) {
    return (
      key + "\n" + guideCategory + "\n" +
      photosToSend().map((p) => `${p.view}:${p.file.name}:${p.file.size}:${p.file.lastModified}`).join("\n")
    );
  }

  /** The multipart body: the photos in order, with their views when any slot has a photo. */
  function photoForm(sent, withCategory) {
    const body = new FormData();
    for (const p of sent) body.append("photos", p.file, p.file.name);
    if (sent.some((p) => p.view !== "unspecified")) {
      for (const p of sent) body.append("views", p.view);
      if (withCategory && guideCategory) body.append("category", guideCategory);
    }
    return body;
  }

  function schedulePreview(delay) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => {
      preview().catch(() => {
        /* shown in the preview box */
      });
    }, delay);
  }

  function setAside(photo) {
    return photo.reasons.some((r) => !KEPT_CODES.has(r.code));
  }

  /** What a retake should show, in the page's language (None when retaking would not help). */
  function retakeFor(photo) {
    for (const r of photo.reasons) if (retakeHints[r.code]) return retakeHints[r.code];
    return photo.retake || null;
  }

  /** Set aside only because its category gets no verdict (a watch): a good photo, kept for the lab. */
  function onlyForALab(photo) {
    const codes = photo.reasons.filter((r) => !KEPT_CODES.has(r.code)).map((r) => r.code);
    return codes.length > 0 && codes.every((c) => c === "category_not_validated");
  }

  function reasonItems(reasons) {
    return reasons.map((r) => el("li", { "data-code": r.code }, reasonText(r)));
  }

  function viewLine(sentPhoto) {
    return sentPhoto && sentPhoto.viewName ? el("p", { class: "photo-view" }, t("View: {view}", { view: sentPhoto.viewName })) : null;
  }

  function retakeLine(photo, sentPhoto) {
    const retake = retakeFor(photo);
    if (!retake) return null;
    if (sentPhoto && sentPhoto.viewName) {
      const v = guideViews(guideCategory).find((x) => x.id === sentPhoto.view);
      return el("p", { class: "retake" }, t("A retake should show: {instruction} Hint: {hint}.", { instruction: v ? v.instruction : "", hint: retake }));
    }
    return el("p", { class: "retake" }, t("A retake should show {hint}.", { hint: retake }));
  }

  function photoCheck(photo, name, sentPhoto) {
    const li = el("li", { "data-set-aside": String(setAside(photo)), "data-view": sentPhoto ? sentPhoto.view : "unspecified" },
      el("p", { class: "photo-name" }, name), viewLine(sentPhoto));
    if (setAside(photo)) {
      li.append(el("p", { class: "set-aside" }, t("Set aside, not used for the verdict (no score):")));
      li.append(el("ul", {}, ...reasonItems(photo.reasons)));
      const retake = retakeLine(photo, sentPhoto);
      if (retake) li.append(retake);
    } else {
      li.append(
        el("p", { class: "ok" }, photo.category
          ? t("✓ Usable: looks like a {category}.", { category: CATEGORY_WORDS[photo.category] || photo.category })
          : t("✓ Usable."))
      );
      for (const r of photo.reasons) li.append(el("p", { "data-code": r.code }, reasonText(r)));
    }
    return li;
  }

  function drawPreview(answer, sent) {
    document.getElementById("preview-photos").replaceChildren(
      ...answer.photos.map((p, i) => photoCheck(p, p.file || sent[i]?.file.name || t("photo {n}", { n: i + 1 }), sent[i]))
    );
    const checked = new Map();
    answer.photos.forEach((p, i) => {
      if (sent[i] && sent[i].view !== "unspecified") checked.set(sent[i].view, p);
    });
    for (const v of guideViews(guideCategory)) drawSlotCheck(v.id, checked.get(v.id));
    drawMissing(answer.missing_views);
    const box = document.getElementById("preview-verdict");
    box.dataset.recordable = String(answer.recordable);
    if (!answer.recordable) {
      previewStatus.textContent = t("Nothing can be recorded from these photos; nothing was recorded.");
      fill(box, el("p", { class: "alert" }, answer.refusal));
      return;
    }
    const [, words] = DECISIONS[answer.decision] || ["?", answer.decision];
    const score = percent(answer.probability_authentic);
    previewStatus.textContent = t("Checked; nothing is recorded until you press “Record the verdict”.");
    fill(
      box,
      el("p", {}, el("strong", { id: "provisional-decision", "data-decision": answer.decision },
        t("If you record these photos now: {decision}.", { decision: words })),
        score ? " " + t("Score {score}.", { score }) : ""),
      ...answer.reasons.map((r) => el("p", { "data-code": r.code }, reasonText(r)))
    );
  }

  /** Check the current photos; resolves to { answer } or { error: {title, detail} } (cached per photo set and key). */
  function preview() {
    const key = keyInput.value.trim();
    const sent = photosToSend();
    if (!key || !sent.length) {
      previewBox.hidden = true;
      lastPreview = null;
      return Promise.resolve(null);
    }
    if (sent.length > maxPhotos) {
      previewBox.hidden = false;
      previewStatus.textContent = t("Send at most {max} photos: remove some.", { max: maxPhotos });
      return Promise.resolve({ error: { title: t("Too many photos"), detail: t("Send at most {max} photos.", { max: maxPhotos }) } });
    }
    const sig = signature(key);
    if (lastPreview && lastPreview.signature === sig) return lastPreview.promise;
    previewBox.hidden = false;
    previewStatus.textContent = t("Checking your photos… nothing is recorded.");
    document.getElementById("preview-photos").replaceChildren();
    document.getElementById("preview-verdict").replaceChildren();
    const body = photoForm(sent, true);
    const promise = fetch("/v1/assessments/preview", {
      method: "POST",
      headers: { Authorization: "Bearer " + key, Accept: "application/json" },
      body,
    })
      .then(async (response) => {
        const text = await response.text();
        if (!response.ok) return { error: problemOf(response.status, text) };
        return { answer: JSON.parse(text) };
      })
      .catch(() => ({ error: { title: t("Network error"), detail: t("The photos could not be checked: the service did not answer.") } }))
      .then((outcome) => {
        if (lastPreview && lastPreview.signature === sig) {
          if (outcome.answer) drawPreview(outcome.answer, sent);
          else {
            previewStatus.textContent = t("The photos could not be checked: {why}", { why: outcome.error.detail });
            document.getElementById("preview-verdict").replaceChildren();
          }
          document.body.dataset.preview = outcome.answer ? "done" : "failed";
        }
        return outcome;
      });
    lastPreview = { signature: sig, promise };
    return promise;
  }

  // --- recording -----------------------------------------------------------------------------

  async function registerItem(key) {
    const item = {
      category: document.getElementById("category").value,
      brand: document.getElementById("brand").value.trim(),
      model: document.getElementById("model").value.trim(),
    };
    const response = await fetch("/v1/items", {
      method: "POST",
      headers: {
        Authorization: "Bearer " + key,
        "Content-Type": "application/json",
        Accept: "application/json",
        "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random(),
      },
      body: JSON.stringify(item),
    });
    const text = await response.text();
    if (!response.ok) {
      const p = problemOf(response.status, text);
      throw new ApiError(p.title, p.detail);
    }
    const id = JSON.parse(text).id;
    // Offered first on the next visit: a retry reuses this item instead of registering another one.
    keepItem({ id, ...item, recorded: false, at: new Date().toISOString() });
    choose("kept");
    return id;
  }

  function upload(key, itemId, sent) {
    return new Promise((resolve, reject) => {
      const body = photoForm(sent, false);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/v1/items/${encodeURIComponent(itemId)}/assessments?heatmaps=true`);
      xhr.setRequestHeader("Authorization", "Bearer " + key);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Idempotency-Key", crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          progress.value = Math.round((e.loaded / e.total) * 100);
          progressLabel.textContent = t("Uploading… {n}%", { n: progress.value });
        }
      });
      xhr.upload.addEventListener("load", () => {
        progress.removeAttribute("value");
        progressLabel.textContent = t("Uploaded; the model is looking at the photos…");
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(JSON.parse(xhr.responseText));
        } else {
          const p = problemOf(xhr.status, xhr.responseText);
          reject(new ApiError(p.title, p.detail));
        }
      });
      xhr.addEventListener("error", () => reject(new ApiError(t("Network error"), t("The upload did not reach the service."))));
      xhr.send(body);
    });
  }

  async function heatmapImage(key, url, name) {
    const response = await fetch(url, { headers: { Authorization: "Bearer " + key } });
    if (!response.ok) return null;
    const blobUrl = URL.createObjectURL(await response.blob());
    return el("figure", {}, el("img", { src: blobUrl, alt: t("Heat map of {name}: the regions that moved the score most", { name }) }),
      el("figcaption", {}, t("Heat map: what moved the score")));
  }

  async function labList() {
    try {
      const response = await fetch("/v1/labs", { headers: { Accept: "application/json" } });
      if (!response.ok) return null;
      return (await response.json()).labs;
    } catch (e) {
      return null;
    }
  }

  function labsBlock(labs) {
    if (labs === null) return el("p", {}, t("The list of labs could not be loaded: see /v1/labs."));
    if (!labs.length) return el("p", {}, t("No lab is registered with this service yet: ask its operator which labs it works with."));
    return el(
      "ul",
      { class: "labs", id: "lab-list" },
      ...labs.map((lab) => el("li", {}, el("strong", {}, lab.name), t(", accreditation: {accreditation}", { accreditation: lab.accreditation })))
    );
  }

  /** Every verdict ends with a next step. */
  async function drawNextStep(a) {
    const box = document.getElementById("next-step");
    const page = "/t/" + encodeURIComponent(a.item_id);
    const what = () =>
      el("p", {}, t("What to send: the item itself, with its item id {id} and the link to its record, {link}.", { id: a.item_id, link: location.origin + page }),
        " ", el("a", { href: page }, t("Open the record")), " ",
        t("The lab inspects it in person and attaches a signed certificate to this item; the certificate replaces this photo result on the item's badge and public page."));
    const labs = a.decision === "authentic" ? null : await labList();
    if (a.decision === "inconclusive") {
      const retake = a.photos.some(setAside);
      fill(
        box,
        el("h3", {}, t("Next step: a lab inspection")),
        el("p", {}, NOT_VALIDATED[a.category] && (a.reasons || []).some((r) => r.code === "category_not_validated")
          ? NOT_VALIDATED[a.category] + " " + t("Send the item to one of these registered labs:")
          : t("The photos did not allow a verdict. Send the item to one of these registered labs:")),
        labsBlock(labs),
        what(),
        retake ? el("p", {}, t("Or retake the photos that were set aside (see below) and record them for this same item.")) : null
      );
    } else if (a.decision === "counterfeit") {
      const scored = a.photos
        .map((p, i) => ({ p, name: p.file || t("photo {n}", { n: i + 1 }) }))
        .filter((x) => !setAside(x.p) && typeof x.p.probability_authentic === "number")
        .sort((x, y) => x.p.probability_authentic - y.p.probability_authentic);
      fill(
        box,
        el("h3", {}, t("Why the model says counterfeit")),
        el("p", {}, t("The score, {score}, is below {below}, under which the model calls an item counterfeit.", {
          score: percent(a.probability_authentic),
          below: percent(a.thresholds.counterfeit_below),
        })),
        scored.length
          ? el("p", {}, t("Lowest-scoring photos: {photos}. The heat maps below show the regions that moved the score.", {
              photos: scored.slice(0, 3).map((x) => `${x.name} (${percent(x.p.probability_authentic)})`).join(t(", ")),
            }))
          : null,
        el("h3", {}, t("How to contest it")),
        el("p", {}, t("This result is in the item's public record. To contest it, send the item to a registered lab for an inspection in person:")),
        labsBlock(labs),
        what()
      );
    } else {
      fill(
        box,
        el("h3", {}, t("Next step")),
        el("p", {}, t("You can list the item: buyers see “AI-verified authentic” and a link to its record. A registered lab's inspection in person gives it the stronger “Lab certified” badge.")),
        el("p", {}, el("a", { href: "/v1/labs" }, t("Registered labs")))
      );
    }
  }

  function drawResultMissing(a) {
    const box = document.getElementById("result-missing");
    const missing = a.missing_views || [];
    box.hidden = !missing.length;
    if (!missing.length) {
      box.replaceChildren();
      return;
    }
    const views = guideViews(guideCategory);
    fill(
      box,
      el("h3", {}, t("Views not photographed")),
      el("p", {}, t("The guide asks for these photos too; take them and check the item again:")),
      el("ul", {}, ...missing.map((m) => {
        const v = views.find((x) => x.id === m.id);
        return el("li", { "data-view": m.id }, el("strong", {}, v ? v.name : m.name), ": ", v ? v.instruction : m.instruction);
      }))
    );
  }

  async function showResult(key, a, sent) {
    const [icon, words, cls] = DECISIONS[a.decision] || ["?", a.decision, "badge-inconclusive"];
    const box = document.getElementById("result-badge");
    box.className = "badge " + cls;
    box.querySelector(".badge-icon").textContent = icon;
    document.getElementById("decision").textContent = words;
    document.getElementById("decision").dataset.decision = a.decision;
    document.getElementById("probability").textContent =
      typeof a.probability_authentic === "number"
        ? t("Score {score} (authentic above {above}, counterfeit below {below}).", {
            score: percent(a.probability_authentic),
            above: percent(a.thresholds.authentic_above),
            below: percent(a.thresholds.counterfeit_below),
          })
        : t("No score: the photos did not allow one.");
    document.getElementById("reasons").replaceChildren(...reasonItems(a.reasons));
    document.getElementById("model-version").textContent = `${a.model.name || t("model")} ${a.model.version}`;
    document.getElementById("assessment-id").textContent = a.id;
    document.getElementById("result-item-id").textContent = a.item_id;
    document.getElementById("log-entry").textContent = t("#{index} of a tree of {size}", { index: a.receipt.index, size: a.receipt.tree_size });
    const lang = main.dataset.lang && main.dataset.lang !== "en" ? "?lang=" + encodeURIComponent(main.dataset.lang) : "";
    document.getElementById("trace-link").href = "/t/" + encodeURIComponent(a.item_id) + lang;
    drawResultMissing(a);
    await drawNextStep(a);
    const items = [];
    for (let i = 0; i < a.photos.length; i++) {
      const p = a.photos[i];
      const name = p.file || t("photo {n}", { n: i + 1 });
      const local = sent[i] ? sent[i].file : null;
      const imgs = el("div", { class: "imgs" });
      if (local) {
        imgs.append(el("figure", {}, el("img", { src: URL.createObjectURL(local), alt: t("Your photo {name}", { name }) }), el("figcaption", {}, t("Your photo"))));
      }
      const aside = setAside(p);
      if (p.heatmap_url && !aside) {
        const fig = await heatmapImage(key, p.heatmap_url, name);
        if (fig) imgs.append(fig);
      }
      const li = el("li", { class: "photo-result", "data-set-aside": String(aside), "data-view": p.view || "unspecified" },
        el("h4", {}, name), viewLine(sent[i]));
      if (aside) {
        li.append(el("p", { class: "set-aside" }, t("Set aside, not used for the verdict (no score):")));
        li.append(el("ul", {}, ...reasonItems(p.reasons)));
        const retake = retakeLine(p, sent[i]);
        if (retake) li.append(retake);
      } else {
        li.append(el("p", {}, p.category
          ? t("Score: {score}, looks like a {category}", { score: percent(p.probability_authentic), category: CATEGORY_WORDS[p.category] || p.category })
          : t("Score: {score}", { score: percent(p.probability_authentic) })));
        li.append(
          p.reasons.length
            ? el("ul", {}, ...reasonItems(p.reasons))
            : el("p", { class: "ok" }, t("✓ Usable: no quality problems found."))
        );
      }
      li.append(imgs);
      items.push(li);
    }
    document.getElementById("result-photos").replaceChildren(...items);
    result.hidden = false;
    result.focus();
  }

  ready = true;
  refreshSlots();

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const key = keyInput.value.trim();
    const sent = photosToSend();
    if (!key) return showError(t("API key missing"), t("Enter your platform API key."));
    if (!sent.length) return showError(t("No photos"), t("Add at least one photo of the item."));
    if (sent.length > maxPhotos) return showError(t("Too many photos"), t("Send at most {max} photos.", { max: maxPhotos }));
    const total = sent.reduce((n, p) => n + p.file.size, 0);
    if (total > maxBodyBytes) {
      return showError(t("The photos are too large together"), t("They add up to {total}; one upload can be at most {max}. Send fewer or smaller photos.", { total: mb(total), max: mb(maxBodyBytes) }));
    }
    const m = mode();
    if (m === "new") {
      for (const id of ["brand", "model"]) {
        if (!document.getElementById(id).value.trim()) {
          document.getElementById(id).focus();
          return showError(t("Check the form"), t("{field}: enter a value.", { field: labelOf(id) }));
        }
      }
    }
    submit.disabled = true;
    result.hidden = true;
    try {
      // The check first: photos that cannot be recorded never register an item.
      const checked = await preview();
      if (checked && checked.error) throw new ApiError(checked.error.title, checked.error.detail);
      if (checked && checked.answer && !checked.answer.recordable) throw new ApiError(t("Nothing to record"), checked.answer.refusal);
      let itemId;
      const kept = keptItem();
      if (m === "kept" && kept) {
        itemId = kept.id;
      } else if (m === "existing") {
        itemId = document.getElementById("item-id").value.trim();
        if (!itemId) throw new ApiError(t("Check the form"), t("{field}: enter the id of the item you registered.", { field: labelOf("item_id") }));
      } else {
        itemId = await registerItem(key);
      }
      progressBox.hidden = false;
      progress.value = 0;
      progressLabel.textContent = t("Uploading…");
      const answer = await upload(key, itemId, sent);
      const now = keptItem();
      if (now && now.id === itemId) keepItem({ ...now, recorded: true });
      await showResult(key, answer, sent);
    } catch (err) {
      if (err instanceof ApiError) showError(err.title, err.detail);
      else showError(t("Something went wrong"), err.message);
    } finally {
      submit.disabled = false;
      progressBox.hidden = true;
    }
  });
})();
