/*
 * The seller's upload page: photos by drag and drop, file picker or the phone camera; the API
 * key lives in this tab's session storage; the upload shows its progress; the verdict shows
 * per-photo reasons and heat maps. Every request goes to this service's public API, and every
 * error shown is the API's own problem+json message.
 */
"use strict";

(function () {
  const KEY_STORE = "authenticator.apiKey";
  const main = document.getElementById("main");
  const maxPhotos = Number(main.dataset.maxPhotos) || 12;
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
  const files = [];
  const objectUrls = [];

  const DECISIONS = {
    authentic: ["✓", "Authentic", "badge-ai_verified"],
    counterfeit: ["!", "Counterfeit", "badge-warning"],
    inconclusive: ["?", "Inconclusive: a lab inspection is needed", "badge-inconclusive"],
  };

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
  });

  for (const radio of form.querySelectorAll('input[name="item_mode"]')) {
    radio.addEventListener("change", () => {
      const existing = form.querySelector('input[name="item_mode"]:checked').value === "existing";
      document.getElementById("existing-item").hidden = !existing;
      document.getElementById("new-item").hidden = existing;
    });
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function showError(title, detail) {
    errorBox.replaceChildren(el("strong", {}, title), el("p", { id: "error-detail" }, detail));
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
  }

  function drawThumbs() {
    for (const u of objectUrls.splice(0)) URL.revokeObjectURL(u);
    thumbs.replaceChildren(
      ...files.map((f, i) => {
        const url = URL.createObjectURL(f);
        objectUrls.push(url);
        const remove = el("button", { type: "button", class: "secondary", "aria-label": "Remove " + f.name }, "×");
        remove.addEventListener("click", () => {
          files.splice(i, 1);
          drawThumbs();
        });
        return el("li", {}, el("img", { src: url, alt: "Selected photo " + f.name }), remove, f.name);
      })
    );
    count.textContent = files.length
      ? `${files.length} photo${files.length === 1 ? "" : "s"} selected (at most ${maxPhotos}).`
      : "No photos yet.";
  }

  function addFiles(list) {
    for (const f of list) files.push(f);
    drawThumbs();
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

  /** The API's problem+json message, or the best words we have. */
  async function problemOf(status, text) {
    try {
      const p = JSON.parse(text);
      if (p && typeof p.detail === "string") {
        return { title: p.title || "Error " + status, detail: p.detail };
      }
    } catch (e) {
      /* not JSON */
    }
    return { title: "Error " + status, detail: text ? text.slice(0, 300) : "The server answered " + status + "." };
  }

  class ApiError extends Error {
    constructor(title, detail) {
      super(detail);
      this.title = title;
      this.detail = detail;
    }
  }

  async function registerItem(key) {
    const response = await fetch("/v1/items", {
      method: "POST",
      headers: { Authorization: "Bearer " + key, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        category: document.getElementById("category").value,
        brand: document.getElementById("brand").value.trim(),
        model: document.getElementById("model").value.trim(),
      }),
    });
    const text = await response.text();
    if (!response.ok) {
      const p = await problemOf(response.status, text);
      throw new ApiError(p.title, p.detail);
    }
    return JSON.parse(text).id;
  }

  function upload(key, itemId) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      for (const f of files) body.append("photos", f, f.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/v1/items/${encodeURIComponent(itemId)}/assessments?heatmaps=true`);
      xhr.setRequestHeader("Authorization", "Bearer " + key);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Idempotency-Key", crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          progress.value = Math.round((e.loaded / e.total) * 100);
          progressLabel.textContent = `Uploading… ${progress.value}%`;
        }
      });
      xhr.upload.addEventListener("load", () => {
        progress.removeAttribute("value");
        progressLabel.textContent = "Uploaded; the model is looking at the photos…";
      });
      xhr.addEventListener("load", async () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(JSON.parse(xhr.responseText));
        } else {
          const p = await problemOf(xhr.status, xhr.responseText);
          reject(new ApiError(p.title, p.detail));
        }
      });
      xhr.addEventListener("error", () => reject(new ApiError("Network error", "The upload did not reach the service.")));
      xhr.send(body);
    });
  }

  async function heatmapImage(key, url, name) {
    const response = await fetch(url, { headers: { Authorization: "Bearer " + key } });
    if (!response.ok) return null;
    const blobUrl = URL.createObjectURL(await response.blob());
    return el("figure", {}, el("img", { src: blobUrl, alt: "Heat map of " + name + ": the regions that moved the score most" }),
      el("figcaption", {}, "Heat map: what moved the score"));
  }

  function percent(p) {
    return typeof p === "number" ? Math.round(p * 100) + "%" : "no score";
  }

  async function showResult(key, a, photoFiles) {
    const [icon, words, cls] = DECISIONS[a.decision] || ["?", a.decision, "badge-inconclusive"];
    const box = document.getElementById("result-badge");
    box.className = "badge " + cls;
    box.querySelector(".badge-icon").textContent = icon;
    document.getElementById("decision").textContent = words;
    document.getElementById("decision").dataset.decision = a.decision;
    document.getElementById("probability").textContent =
      `Probability authentic: ${percent(a.probability_authentic)} (authentic above ${percent(a.thresholds.authentic_above)}, counterfeit below ${percent(a.thresholds.counterfeit_below)}).`;
    document.getElementById("reasons").replaceChildren(...a.reasons.map((r) => el("li", { "data-code": r.code }, r.message)));
    document.getElementById("model-version").textContent = `${a.model.name || "model"} ${a.model.version}`;
    document.getElementById("assessment-id").textContent = a.id;
    document.getElementById("log-entry").textContent = `#${a.receipt.index} of a tree of ${a.receipt.tree_size}`;
    document.getElementById("trace-link").href = "/t/" + encodeURIComponent(a.item_id);
    const items = [];
    for (let i = 0; i < a.photos.length; i++) {
      const p = a.photos[i];
      const name = p.file || `photo ${i + 1}`;
      const local = photoFiles[i];
      const imgs = el("div", { class: "imgs" });
      if (local) {
        imgs.append(el("figure", {}, el("img", { src: URL.createObjectURL(local), alt: "Your photo " + name }), el("figcaption", {}, "Your photo")));
      }
      if (p.heatmap_url) {
        const fig = await heatmapImage(key, p.heatmap_url, name);
        if (fig) imgs.append(fig);
      }
      const reasons = p.reasons.length
        ? el("ul", {}, ...p.reasons.map((r) => el("li", { "data-code": r.code }, r.message)))
        : el("p", { class: "ok" }, "✓ Usable: no quality problems found.");
      items.push(
        el("li", { class: "photo-result" }, el("h4", {}, name), el("p", {}, "Score: " + percent(p.probability_authentic) + (p.category ? ", looks like a " + p.category : "")), reasons, imgs)
      );
    }
    document.getElementById("result-photos").replaceChildren(...items);
    result.hidden = false;
    result.focus();
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const key = keyInput.value.trim();
    if (!key) return showError("API key missing", "Enter your platform API key.");
    if (!files.length) return showError("No photos", "Add at least one photo of the item.");
    if (files.length > maxPhotos) return showError("Too many photos", `Send at most ${maxPhotos} photos.`);
    const existing = form.querySelector('input[name="item_mode"]:checked').value === "existing";
    submit.disabled = true;
    result.hidden = true;
    progressBox.hidden = false;
    progress.value = 0;
    progressLabel.textContent = "Uploading…";
    try {
      let itemId;
      if (existing) {
        itemId = document.getElementById("item-id").value.trim();
        if (!itemId) throw new ApiError("Item id missing", "Enter the id of the item you registered.");
      } else {
        itemId = await registerItem(key);
        // A retry after a failed upload reuses this item instead of registering another one.
        document.getElementById("item-id").value = itemId;
        form.querySelector('input[name="item_mode"][value="existing"]').click();
      }
      const answer = await upload(key, itemId);
      await showResult(key, answer, files.slice());
    } catch (err) {
      if (err instanceof ApiError) showError(err.title, err.detail);
      else showError("Something went wrong", err.message);
    } finally {
      submit.disabled = false;
      progressBox.hidden = true;
    }
  });
})();
