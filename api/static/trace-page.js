/*
 * The trace page: fetch the item's trace JSON, verify it with TraceVerify against the log key
 * printed on the page, and redraw the timeline from what was verified: ✓ or ✗ per event with
 * a short reason (under "Technical details", opened where a check failed), and "This history is
 * complete and untampered" only when every check holds. That answers "can I trust this
 * record?", never "is the item authentic?" (the page's first section, from the record).
 */
"use strict";

(function () {
  const t = TraceVerify.t; // the page's language (its embedded catalogue), as the verifier's messages
  const TYPE_WORDS = {
    "item.registered": t("Registered"),
    "assessment.recorded": t("Photo assessment"),
    "certificate.attached": t("Lab certificate"),
    "certificate.revoked": t("Lab certificate revoked"),
    "listing.published": t("Listed for sale"),
    "listing.closed": t("Listing closed"),
    "custody.transferred": t("Custody transfer"),
    "model.registered": t("Model registered"),
    "photos.erased": t("Photos erased"),
  };

  const main = document.getElementById("main");
  const itemId = main.dataset.itemId;
  const traceUrl = main.dataset.traceUrl;

  // No public address configured: the server printed paths only (it never trusts the Host
  // header). Put this browser's own origin in front of them, for the address and the CLI hint.
  if (main.dataset.relativeAddress === "true" && /^https?:$/.test(location.protocol)) {
    const page = document.getElementById("page-address");
    if (page && page.dataset.path) page.textContent = new URL(page.dataset.path, location.origin).href;
    const hint = document.getElementById("cli-hint");
    if (hint && hint.dataset.path) {
      hint.textContent = "authenticator trace verify " + new URL(hint.dataset.path, location.origin).href + " --key KEY";
      const note = document.getElementById("cli-hint-note");
      if (note) note.remove();
    }
  }
  const logKey = document.getElementById("log-key").textContent.trim();
  // The witnesses' keys the page shows; ?min_witnesses=K asks that at least K of them cosigned.
  const witnessKeys = Array.from(document.querySelectorAll("#witness-keys code"), (c) => c.textContent.trim());
  // A policy the page cannot read fails the check rather than falling back to no policy.
  const minWitnessesParam = new URLSearchParams(location.search).get("min_witnesses");
  const minWitnessesValid = minWitnessesParam === null || /^\d{1,3}$/.test(minWitnessesParam);
  const minWitnesses = minWitnessesValid && minWitnessesParam !== null ? parseInt(minWitnessesParam, 10) : 0;
  let words = {};
  try {
    words = JSON.parse(document.getElementById("event-words").textContent);
  } catch (e) {
    words = {};
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

  function setVerdict(state, icon, text, detail) {
    const box = document.getElementById("verdict");
    box.className = "verdict verdict-" + state;
    box.querySelector(".verdict-icon").textContent = icon;
    document.getElementById("verdict-text").textContent = text;
    document.getElementById("verdict-detail").textContent = detail;
    document.body.dataset.verification = state === "ok" ? "verified" : "failed";
  }

  function setMark(row, ok, reason) {
    row.dataset.state = ok ? "ok" : "fail";
    const mark = row.querySelector(".mark");
    mark.textContent = ok ? "✓" : "✗";
    mark.setAttribute("aria-hidden", "true");
    row.querySelector(".check-label").textContent = ok ? t("✓ Checked:") : t("✗ Failed:");
    row.querySelector(".reason").textContent = reason;
  }

  function eventRow(check) {
    const known = check.leafHash && words[check.leafHash] && words[check.leafHash].index === check.index;
    const w = known ? words[check.leafHash] : null;
    const type = check.type || (w && w.type) || "unknown";
    const title = w ? w.title : TYPE_WORDS[type] || t("Log entry");
    const time = w ? w.time : check.entry ? check.entry.time : "";
    const timeWords = w ? w.time_words : time;
    const lines = w ? w.lines : [t("The server did not describe these exact bytes.")];
    const tech = [t("log entry #{index}", { index: check.index === null ? "?" : check.index }), ...(w && w.tech ? w.tech : [])];
    const meta = el("p", { class: "event-meta" });
    if (time) meta.append(el("time", { datetime: time }, timeWords));
    const details = el(
      "details",
      { class: "tech" },
      el("summary", {}, t("Technical details")),
      el("ul", { class: "tech-lines" }, ...tech.map((l) => el("li", {}, l))),
      el("p", { class: "check" }, el("span", { class: "check-label" }, t("Check:")), " ", el("span", { class: "reason" }, ""))
    );
    if (!check.ok) details.open = true;
    const body = el(
      "div",
      { class: "event-body" },
      el("h3", { class: "event-title" }, title),
      meta,
      lines.length ? el("ul", { class: "event-lines" }, ...lines.map((l) => el("li", {}, l))) : null,
      check.ok ? null : el("p", { class: "event-failed" }, t("✗ This event does not match the signed record.")),
      details
    );
    const row = el("li", { class: "event", "data-index": String(check.index), "data-position": String(check.position) },
      el("span", { class: "mark", "aria-hidden": "true" }, "…"), body);
    const reason = check.ok
      ? check.position === 0
        ? t("bytes match the leaf hash, in the signed tree, first entry of this item")
        : t("bytes match the leaf hash, in the signed tree, linked to the event before")
      : check.problems.join(t("; "));
    setMark(row, check.ok, reason);
    return row;
  }

  const STORE = "authenticator.checkpoint." + logKey;

  function kept() {
    try {
      const value = JSON.parse(localStorage.getItem(STORE) || "null");
      return value && typeof value.note === "string" && Number.isSafeInteger(value.size) ? value : null;
    } catch (e) {
      return null;
    }
  }

  function keep(note, size) {
    try {
      localStorage.setItem(STORE, JSON.stringify({ note, size, seen: new Date().toISOString() }));
    } catch (e) {
      /* storage off: nothing to compare with next time */
    }
  }

  async function load(url) {
    const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(t("the server answered {status}", { status: response.status }));
    return response.json();
  }

  function distrustStanding() {
    const standing = document.getElementById("standing");
    if (standing && !standing.querySelector(".standing-note")) {
      standing.classList.add("standing-unconfirmed");
      standing.append(
        el("p", { class: "standing-note" }, t("What this page says about the item rests on a record that did not check out: do not rely on it."))
      );
    }
  }

  function failAll(text, detail) {
    for (const row of document.querySelectorAll("#timeline .event, #checkpoint-check")) {
      row.dataset.state = "unchecked";
      row.querySelector(".reason").textContent = t("not checked: {why}", { why: text });
    }
    distrustStanding();
    setVerdict("fail", "✗", t("Not verified: this history could not be checked"), detail);
  }

  async function run() {
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      failAll(
        t("this page is not in a secure context"),
        t("Your browser only offers its cryptography to pages opened over HTTPS (or from this computer). Open the page over HTTPS to check it.")
      );
      return;
    }
    if (!minWitnessesValid) {
      failAll(
        t("the witness policy in the address is not a number"),
        t("min_witnesses in the page's address must be a whole number of witnesses, such as 1.")
      );
      return;
    }
    const before = kept();
    let trace;
    try {
      try {
        trace = await load(before ? `${traceUrl}?since=${before.size}` : traceUrl);
      } catch (e) {
        if (!before) throw e;
        trace = await load(traceUrl); // e.g. the log is now smaller than what we saw: the check says so
      }
    } catch (e) {
      failAll(t("the trace could not be loaded"), t("The trace could not be loaded ({why}). Try again later.", { why: e.message }));
      return;
    }
    if (trace && trace.item_id !== itemId) {
      failAll(t("wrong item"), t("The server sent the trace of another item."));
      return;
    }
    let report;
    try {
      report = await TraceVerify.verifyTrace(trace, logKey, before ? before.note : undefined, {
        witnesses: witnessKeys,
        minWitnesses,
      });
    } catch (e) {
      failAll(t("the check could not run"), t("Your browser could not run the check: {why}", { why: e.message }));
      return;
    }
    const list = document.getElementById("timeline");
    list.replaceChildren(...report.events.map(eventRow));
    const cpRow = document.getElementById("checkpoint-check");
    const cp = report.checkpoint;
    setMark(
      cpRow,
      cp.ok,
      cp.ok
        ? t("signed by {name} with the key shown below; tree of {size} entries", { name: cp.keyName, size: cp.size })
        : cp.problems.join(t("; "))
    );
    const whole = report.completeness;
    if (whole) {
      setMark(
        document.getElementById("completeness-check"),
        whole.ok,
        whole.ok
          ? whole.count === 1
            ? t("the checkpoint records 1 event for this item, and it is shown")
            : t("the checkpoint records {n} events for this item, and all are shown", { n: whole.count })
          : whole.problems.join(t("; "))
      );
    }
    const cons = report.consistency;
    if (cons) {
      const row = document.getElementById("consistency-check");
      row.hidden = false;
      const when = before.seen ? t(" on {time} UTC", { time: before.seen.slice(0, 16).replace("T", " ") }) : "";
      setMark(
        row,
        cons.ok,
        !cons.ok
          ? cons.problems.join(t("; "))
          : cons.from === cons.to
            ? t("the same tree of {size} entries that your browser verified{when}", { size: cons.to, when })
            : t("the log grew from {from} to {to} entries since your browser's last check{when}, rewriting nothing", {
                from: cons.from,
                to: cons.to,
                when,
              })
      );
    }
    const wit = report.witnesses;
    const witRow = document.getElementById("witness-check"); // shown where the server names witnesses
    if (wit && witRow) {
      const row = witRow;
      const when = (t) => new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
      if (!wit.ok) {
        setMark(row, false, wit.problems.join(t("; ")));
      } else if (wit.by.length) {
        const who = wit.by.map((w) => t("{name} (cosigned {time})", { name: w.name, time: when(w.timestamp) }));
        setMark(row, true, t("Witnessed by {who}", { who: who.join(t(", ")) }));
      } else {
        row.dataset.state = "unchecked";
        row.querySelector(".check-label").textContent = t("Not yet:");
        row.querySelector(".reason").textContent = t(
          "no witness has cosigned this checkpoint yet (it may be moments old); the checks above do not depend on it"
        );
      }
    }
    if (report.ok) keep(trace.checkpoint, cp.size);
    const failed =
      report.events.filter((e) => !e.ok).length +
      (cp.ok ? 0 : 1) +
      report.problems.length +
      (cons && !cons.ok ? 1 : 0) +
      (whole && !whole.ok ? 1 : 0) +
      (wit && !wit.ok ? 1 : 0);
    if (report.ok) {
      const n = report.events.length;
      const checked =
        n === 1
          ? t("Your browser checked the 1 event of this item against the public log's signed record: nothing was changed, left out or put out of order")
          : t("Your browser checked all {n} events of this item against the public log's signed record: nothing was changed, left out or put out of order", { n });
      setVerdict(
        "ok",
        "✓",
        t("This history is complete and untampered"),
        checked + (cons ? t(", and the log only grew since your last visit.") : t("."))
      );
    } else {
      distrustStanding();
      if (!cp.ok || (cons && !cons.ok) || (whole && !whole.ok) || (wit && !wit.ok) || report.problems.length) {
        document.getElementById("technical").open = true;
      }
      const said = [
        ...report.problems,
        ...(whole && !whole.ok ? whole.problems : []),
        ...(wit && !wit.ok ? wit.problems : []),
      ];
      const extra = said.length ? " " + said.join(t("; ")) + t(".") : "";
      setVerdict(
        "fail",
        "✗",
        t("Not verified: this history does not check out"),
        (failed === 1
          ? t("1 check failed (marked ✗ below). Do not rely on this history.")
          : t("{n} checks failed (marked ✗ below). Do not rely on this history.", { n: failed })) + extra
      );
    }
  }

  run();
})();
