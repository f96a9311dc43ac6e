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
 */
"use strict";

(function () {
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
  const files = [];
  const objectUrls = [];
  let retakeHints = {};
  try {
    retakeHints = JSON.parse(document.getElementById("retake-hints").textContent);
  } catch (e) {
    retakeHints = {};
  }

  const DECISIONS = {
    authentic: ["✓", "Authentic", "badge-ai_verified"],
    counterfeit: ["!", "Counterfeit", "badge-warning"],
    inconclusive: ["?", "Inconclusive: a lab inspection is needed", "badge-inconclusive"],
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

  function mb(bytes) {
    const value = bytes / (1024 * 1024);
    const text = value >= 100 ? value.toFixed(0) : value.toFixed(1);
    return (text.endsWith(".0") ? text.slice(0, -2) : text) + " MB";
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
    document.getElementById("kept-label").textContent =
      `The item you registered here: ${kept.brand} ${kept.model} (${kept.category})` +
      (kept.recorded ? ", verdict recorded" : ", no verdict recorded yet");
  }

  for (const radio of form.querySelectorAll('input[name="item_mode"]')) {
    radio.addEventListener("change", () => {
      const m = mode();
      document.getElementById("existing-item").hidden = m !== "existing";
      document.getElementById("new-item").hidden = m !== "new";
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
    if (m) return m[1] === "1" ? "enter a value" : `enter at least ${m[1]} characters`;
    m = /^String should have at most (\d+) characters?$/.exec(msg);
    if (m) return `at most ${m[1]} characters`;
    if (msg === "Field required") return "enter a value";
    if (/^Input should be /.test(msg)) return msg.replace(/^Input should be /, "choose ");
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
          if (words.length) return { title: "Check the form", detail: words.join("; ") };
        }
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

  // --- photos --------------------------------------------------------------------------------

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
          schedulePreview(0);
        });
        return el("li", {}, el("img", { src: url, alt: "Selected photo " + f.name }), remove, f.name);
      })
    );
    count.textContent = files.length
      ? `${files.length} photo${files.length === 1 ? "" : "s"} selected (at most ${maxPhotos}).`
      : "No photos yet.";
  }

  function addFiles(list) {
    const refused = [];
    for (const f of list) {
      if (f.size > maxPhotoBytes) refused.push(`${f.name} is ${mb(f.size)}; a photo can be at most ${mb(maxPhotoBytes)}`);
      else files.push(f);
    }
    drawThumbs();
    if (refused.length) count.textContent += " Not added: " + refused.join("; ") + ".";
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

  // --- preview: nothing stored ---------------------------------------------------------------

  let previewTimer = null;
  let lastPreview = null; // { signature, promise }

  function signature(key) {
    return key + "\n" + files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join("\n");
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

  function retakeFor(photo) {
    if (photo.retake) return photo.retake;
    for (const r of photo.reasons) if (retakeHints[r.code]) return retakeHints[r.code];
    return null;
  }

  function photoCheck(photo, name) {
    const li = el("li", { "data-set-aside": String(setAside(photo)) }, el("p", { class: "photo-name" }, name));
    if (setAside(photo)) {
      li.append(el("p", { class: "set-aside" }, "Set aside, not used for the verdict (no score):"));
      li.append(el("ul", {}, ...photo.reasons.map((r) => el("li", { "data-code": r.code }, r.message))));
      const retake = retakeFor(photo);
      if (retake) li.append(el("p", { class: "retake" }, "A retake should show " + retake + "."));
    } else {
      li.append(el("p", { class: "ok" }, "✓ Usable" + (photo.category ? ": looks like a " + photo.category : "") + "."));
      for (const r of photo.reasons) li.append(el("p", { "data-code": r.code }, r.message));
    }
    return li;
  }

  function drawPreview(answer) {
    document.getElementById("preview-photos").replaceChildren(
      ...answer.photos.map((p, i) => photoCheck(p, p.file || files[i]?.name || `photo ${i + 1}`))
    );
    const box = document.getElementById("preview-verdict");
    box.dataset.recordable = String(answer.recordable);
    if (!answer.recordable) {
      previewStatus.textContent = "Nothing can be recorded from these photos; nothing was recorded.";
      fill(box, el("p", { class: "alert" }, answer.refusal));
      return;
    }
    const [, words] = DECISIONS[answer.decision] || ["?", answer.decision];
    const score = percent(answer.probability_authentic);
    previewStatus.textContent = "Checked; nothing is recorded until you press “Record the verdict”.";
    fill(
      box,
      el("p", {}, el("strong", { id: "provisional-decision", "data-decision": answer.decision }, "If you record these photos now: " + words + "."),
        score ? ` Score ${score}.` : ""),
      ...answer.reasons.map((r) => el("p", { "data-code": r.code }, r.message))
    );
  }

  /** Check the current photos; resolves to { answer } or { error: {title, detail} } (cached per photo set and key). */
  function preview() {
    const key = keyInput.value.trim();
    if (!key || !files.length) {
      previewBox.hidden = true;
      lastPreview = null;
      return Promise.resolve(null);
    }
    if (files.length > maxPhotos) {
      previewBox.hidden = false;
      previewStatus.textContent = `Send at most ${maxPhotos} photos: remove some.`;
      return Promise.resolve({ error: { title: "Too many photos", detail: `Send at most ${maxPhotos} photos.` } });
    }
    const sig = signature(key);
    if (lastPreview && lastPreview.signature === sig) return lastPreview.promise;
    previewBox.hidden = false;
    previewStatus.textContent = "Checking your photos… nothing is recorded.";
    document.getElementById("preview-photos").replaceChildren();
    document.getElementById("preview-verdict").replaceChildren();
    const body = new FormData();
    for (const f of files) body.append("photos", f, f.name);
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
      .catch(() => ({ error: { title: "Network error", detail: "The photos could not be checked: the service did not answer." } }))
      .then((outcome) => {
        if (lastPreview && lastPreview.signature === sig) {
          if (outcome.answer) drawPreview(outcome.answer);
          else {
            previewStatus.textContent = "The photos could not be checked: " + outcome.error.detail;
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
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(JSON.parse(xhr.responseText));
        } else {
          const p = problemOf(xhr.status, xhr.responseText);
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
    if (labs === null) return el("p", {}, "The list of labs could not be loaded: see /v1/labs.");
    if (!labs.length) return el("p", {}, "No lab is registered with this service yet: ask its operator which labs it works with.");
    return el(
      "ul",
      { class: "labs", id: "lab-list" },
      ...labs.map((lab) => el("li", {}, el("strong", {}, lab.name), ", accreditation: " + lab.accreditation))
    );
  }

  /** Every verdict ends with a next step. */
  async function drawNextStep(a) {
    const box = document.getElementById("next-step");
    const page = "/t/" + encodeURIComponent(a.item_id);
    const what = () =>
      el("p", {}, "What to send: the item itself, with its item id ", el("code", {}, a.item_id), " and the link to its record, ",
        el("a", { href: page }, location.origin + page),
        ". The lab inspects it in person and attaches a signed certificate to this item; the certificate replaces this photo result on the item's badge and public page.");
    const labs = a.decision === "authentic" ? null : await labList();
    if (a.decision === "inconclusive") {
      const retake = a.photos.some(setAside);
      fill(
        box,
        el("h3", {}, "Next step: a lab inspection"),
        el("p", {}, "The photos did not allow a verdict. Send the item to one of these registered labs:"),
        labsBlock(labs),
        what(),
        retake ? el("p", {}, "Or retake the photos that were set aside (see below) and record them for this same item.") : null
      );
    } else if (a.decision === "counterfeit") {
      const scored = a.photos
        .map((p, i) => ({ p, name: p.file || `photo ${i + 1}` }))
        .filter((x) => !setAside(x.p) && typeof x.p.probability_authentic === "number")
        .sort((x, y) => x.p.probability_authentic - y.p.probability_authentic);
      fill(
        box,
        el("h3", {}, "Why the model says counterfeit"),
        el("p", {}, `The score, ${percent(a.probability_authentic)}, is below ${percent(a.thresholds.counterfeit_below)}, under which the model calls an item counterfeit.`),
        scored.length
          ? el("p", {}, "Lowest-scoring photos: " + scored.slice(0, 3).map((x) => `${x.name} (${percent(x.p.probability_authentic)})`).join(", ") +
              ". The heat maps below show the regions that moved the score.")
          : null,
        el("h3", {}, "How to contest it"),
        el("p", {}, "This result is in the item's public record. To contest it, send the item to a registered lab for an inspection in person:"),
        labsBlock(labs),
        what()
      );
    } else {
      fill(
        box,
        el("h3", {}, "Next step"),
        el("p", {}, "You can list the item: buyers see “AI-verified authentic” and a link to its record. " +
          "A registered lab's inspection in person gives it the stronger “Lab certified” badge."),
        el("p", {}, el("a", { href: "/v1/labs" }, "Registered labs"))
      );
    }
  }

  async function showResult(key, a, photoFiles) {
    const [icon, words, cls] = DECISIONS[a.decision] || ["?", a.decision, "badge-inconclusive"];
    const box = document.getElementById("result-badge");
    box.className = "badge " + cls;
    box.querySelector(".badge-icon").textContent = icon;
    document.getElementById("decision").textContent = words;
    document.getElementById("decision").dataset.decision = a.decision;
    document.getElementById("probability").textContent =
      typeof a.probability_authentic === "number"
        ? `Score ${percent(a.probability_authentic)} (authentic above ${percent(a.thresholds.authentic_above)}, counterfeit below ${percent(a.thresholds.counterfeit_below)}).`
        : "No score: the photos did not allow one.";
    document.getElementById("reasons").replaceChildren(...a.reasons.map((r) => el("li", { "data-code": r.code }, r.message)));
    document.getElementById("model-version").textContent = `${a.model.name || "model"} ${a.model.version}`;
    document.getElementById("assessment-id").textContent = a.id;
    document.getElementById("result-item-id").textContent = a.item_id;
    document.getElementById("log-entry").textContent = `#${a.receipt.index} of a tree of ${a.receipt.tree_size}`;
    document.getElementById("trace-link").href = "/t/" + encodeURIComponent(a.item_id);
    await drawNextStep(a);
    const items = [];
    for (let i = 0; i < a.photos.length; i++) {
      const p = a.photos[i];
      const name = p.file || `photo ${i + 1}`;
      const local = photoFiles[i];
      const imgs = el("div", { class: "imgs" });
      if (local) {
        imgs.append(el("figure", {}, el("img", { src: URL.createObjectURL(local), alt: "Your photo " + name }), el("figcaption", {}, "Your photo")));
      }
      const aside = setAside(p);
      if (p.heatmap_url && !aside) {
        const fig = await heatmapImage(key, p.heatmap_url, name);
        if (fig) imgs.append(fig);
      }
      const li = el("li", { class: "photo-result", "data-set-aside": String(aside) }, el("h4", {}, name));
      if (aside) {
        li.append(el("p", { class: "set-aside" }, "Set aside, not used for the verdict (no score):"));
        li.append(el("ul", {}, ...p.reasons.map((r) => el("li", { "data-code": r.code }, r.message))));
        const retake = retakeFor(p);
        if (retake) li.append(el("p", { class: "retake" }, "A retake should show " + retake + "."));
      } else {
        li.append(el("p", {}, "Score: " + percent(p.probability_authentic) + (p.category ? ", looks like a " + p.category : "")));
        li.append(
          p.reasons.length
            ? el("ul", {}, ...p.reasons.map((r) => el("li", { "data-code": r.code }, r.message)))
            : el("p", { class: "ok" }, "✓ Usable: no quality problems found.")
        );
      }
      li.append(imgs);
      items.push(li);
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
    const total = files.reduce((n, f) => n + f.size, 0);
    if (total > maxBodyBytes) {
      return showError("The photos are too large together", `They add up to ${mb(total)}; one upload can be at most ${mb(maxBodyBytes)}. Send fewer or smaller photos.`);
    }
    const m = mode();
    if (m === "new") {
      for (const id of ["brand", "model"]) {
        if (!document.getElementById(id).value.trim()) {
          document.getElementById(id).focus();
          return showError("Check the form", `${labelOf(id)}: enter a value.`);
        }
      }
    }
    submit.disabled = true;
    result.hidden = true;
    try {
      // The check first: photos that cannot be recorded never register an item.
      const checked = await preview();
      if (checked && checked.error) throw new ApiError(checked.error.title, checked.error.detail);
      if (checked && checked.answer && !checked.answer.recordable) throw new ApiError("Nothing to record", checked.answer.refusal);
      let itemId;
      const kept = keptItem();
      if (m === "kept" && kept) {
        itemId = kept.id;
      } else if (m === "existing") {
        itemId = document.getElementById("item-id").value.trim();
        if (!itemId) throw new ApiError("Check the form", `${labelOf("item_id")}: enter the id of the item you registered.`);
      } else {
        itemId = await registerItem(key);
      }
      progressBox.hidden = false;
      progress.value = 0;
      progressLabel.textContent = "Uploading…";
      const answer = await upload(key, itemId);
      const now = keptItem();
      if (now && now.id === itemId) keepItem({ ...now, recorded: true });
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
