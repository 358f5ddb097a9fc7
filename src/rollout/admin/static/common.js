/* The dashboard's shared code: the JSON API, live updates, notices and confirmations.
 *
 * Plain script, no build step. Every change goes through the JSON API with the page's CSRF
 * token; the server-sent events at /events only say *which* flags changed, and the pages fetch
 * those again. stateLabel and summary mirror admin/_page_views.py: keep them in step. */
"use strict";

window.Dashboard = (() => {
  const meta = (name) => {
    const element = document.querySelector(`meta[name="${name}"]`);
    return element ? element.content : "";
  };
  const base = meta("base-path");
  const csrf = meta("csrf-token");

  class ApiError extends Error {
    constructor(status, body) {
      const error = body && body.error;
      super(error && error.message ? error.message : `The server answered ${status}.`);
      this.status = status;
      this.field = error ? error.field : null;
    }
  }

  function signIn() {
    const here = location.pathname + location.search;
    location.assign(`${base}/login?next=${encodeURIComponent(here)}`);
  }

  /* One JSON API call: resolves to the parsed answer, rejects with an ApiError. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrf };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`${base}/api/v1${path}`, init);
    } catch (error) {
      throw new ApiError(0, { error: { message: "The server cannot be reached." } });
    }
    if (response.status === 401) signIn(); // the session ended: sign in again, then come back
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null; // an answer that is not JSON: the status says enough
    }
    if (!response.ok) throw new ApiError(response.status, payload);
    return payload;
  }

  const flagPath = (name) => `/flags/${encodeURIComponent(name)}`;
  const pageUrl = (name) => `${base}/flags/${encodeURIComponent(name)}`;

  /* 20, 12.5, 0.1: like Python's f"{x:g}". */
  const percent = (value) => String(Number(Number(value).toPrecision(6)));

  /* 100000 → "100,000". */
  const thousands = (n) => Number(n).toLocaleString("en-US");
  /* How many ids a flag lists: its ``counts`` (a flag page and a summary hold no whole list). */
  const count = (flag, field) => (flag.counts ? flag.counts[field] : flag[field].length);

  /* What decides a flag with variants, from any of its shapes (the flag page's carries flagd's
   * `definition`; the full shape maps variants to values; a summary lists names and says
   * `has_targeting`); null for an on/off flag. As _defined in _page_views.py. */
  function defined(flag) {
    const d = flag.definition;
    const found = d
      ? { names: Object.keys(d.variants || {}), fallback: d.defaultVariant,
          targeting: d.targeting !== null && d.targeting !== undefined,
          enabled: d.state !== "DISABLED" }
      : { names: Array.isArray(flag.variants) ? flag.variants : Object.keys(flag.variants || {}),
          fallback: flag.default_variant,
          targeting: (flag.targeting !== null && flag.targeting !== undefined) || !!flag.has_targeting,
          enabled: flag.enabled !== false };
    return found.names.length ? found : null;
  }

  /* What colours the badge: the on/off state, or for a flag with variants (its rule and default
   * variant decide it, not the on/off state) "variants" / "disabled". As _page_views.py. */
  function badgeState(flag) {
    const d = defined(flag);
    if (d) return d.enabled ? "variants" : "disabled";
    return flag.state;
  }

  function stateLabel(flag) {
    if (defined(flag)) return badgeState(flag);
    if (flag.state === "partial" && flag.percentage) return `partial ${percent(flag.percentage)}%`;
    return flag.state;
  }

  /* 1,000,000: counts with thousands separators (the server's number filter does the same). */
  const number = (value) => (value === null || value === undefined ? "-" : value.toLocaleString("en-US"));

  /* Works on both shapes of a flag (full and summary): both carry counts. */
  function summary(flag) {
    const d = defined(flag);
    if (d) {
      const more = d.names.length > 5 ? ` and ${number(d.names.length - 5)} more` : "";
      const line = [`variants ${d.names.slice(0, 5).join(", ")}${more}`];
      if (d.fallback !== null && d.fallback !== undefined) line.push(`default ${d.fallback}`);
      if (d.targeting) line.push("targeting");
      return line.join(" · ");
    }
    const parts = [];
    const counts = flag.counts;
    if (flag.state === "on") parts.push("everybody");
    else if (flag.percentage) parts.push(`${percent(flag.percentage)}% of users`);
    if (flag.percentage_of_time) parts.push(`${percent(flag.percentage_of_time)}% of the time`);
    if (counts.users) parts.push(`${number(counts.users)} ${counts.users === 1 ? "user" : "users"}`);
    if (flag.groups && flag.groups.length) parts.push(`groups ${flag.groups.join(", ")}`);
    else if (counts.groups) parts.push(`${number(counts.groups)} ${counts.groups === 1 ? "group" : "groups"}`);
    if (counts.excluded_users) parts.push(`${number(counts.excluded_users)} excluded`);
    return parts.length ? parts.join(" · ") : "nobody";
  }

  function description(flag) {
    const text = flag.data ? flag.data.description : flag.description;
    return typeof text === "string" ? text : "";
  }

  function renderBadge(element, flag) {
    element.textContent = stateLabel(flag);
    element.dataset.state = badgeState(flag);
  }

  /* Status line at the top of the page (role=status, so screen readers hear it). */
  let noticeTimer = 0;
  function notice(text, kind = "ok") {
    const element = document.getElementById("notice");
    if (!element) return;
    element.textContent = text;
    element.dataset.kind = kind;
    clearTimeout(noticeTimer);
    if (kind === "ok") noticeTimer = setTimeout(() => { element.textContent = ""; }, 4000);
  }

  /* Runs a change; an error becomes a notice instead of an uncaught rejection. */
  async function attempt(action) {
    try {
      return await action();
    } catch (error) {
      notice(error.message, "error");
      return undefined;
    }
  }

  /* The <dialog id="confirm"> of the page: resolves true when the person confirms. */
  function confirm({ title, text, ok, askReason = false }) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = ok;
    const reasonBox = document.getElementById("confirm-reason-box");
    if (reasonBox) {
      reasonBox.hidden = !askReason;
      // A hidden required box would block the confirmation: only the shown one is required.
      const input = document.getElementById("confirm-reason");
      input.disabled = !askReason;
      input.value = "";
      // Enter in the box confirms: a form's implicit submission would press its first button,
      // which is Cancel.
      input.onkeydown = (event) => {
        if (event.key !== "Enter" || event.isComposing) return;
        event.preventDefault();
        document.getElementById("confirm-ok").click();
      };
    }
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  /* "20%, 3 users and group admins": what the flag is on for, in words (either shape: a
   * summary names no groups, it counts them). */
  function reach(flag) {
    const parts = [];
    if (flag.percentage) parts.push(`${percent(flag.percentage)}%`);
    if (flag.percentage_of_time) parts.push(`${percent(flag.percentage_of_time)}% of the time`);
    const users = count(flag, "users");
    if (users) parts.push(`${thousands(users)} ${users === 1 ? "user" : "users"}`);
    if (flag.groups && flag.groups.length) {
      parts.push(`${flag.groups.length === 1 ? "group" : "groups"} ${flag.groups.join(", ")}`);
    } else if (!flag.groups && flag.counts.groups) {
      parts.push(`${thousands(flag.counts.groups)} ${flag.counts.groups === 1 ? "group" : "groups"}`);
    }
    if (!parts.length) return "nobody";
    return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;
  }

  /* Everybody or nobody is never one careless click: the dialog says what changes. Resolves
   * false when the person cancels (or the flag is in that state already). With ``askReason``
   * the dialog has a reason box (pages without their own): its text is then in ``reason``. */
  async function confirmEverybody(flag, on, { askReason = false } = {}) {
    if (flag.state === (on ? "on" : "off")) return false;
    const name = flag.flag;
    const today = flag.state === "off" ? "Today it is off." : `Today it is on for ${reach(flag)}.`;
    const excluded = count(flag, "excluded_users");
    const stay = excluded
      ? ` ${thousands(excluded)} excluded ${excluded === 1 ? "user stays" : "users stay"} excluded.`
      : "";
    return confirm(on ? {
      title: `Turn ${name} on for everybody?`,
      text: `${today}${stay}`,
      ok: "Turn on for everybody",
      askReason,
    } : {
      title: `Turn ${name} off for everybody?`,
      text: `${today} Turning it off clears its percentages, users, exclusions and groups ` +
        "(its data stays).",
      ok: "Turn off",
      askReason,
    });
  }

  /* The reason typed in the confirmation dialog ("" when none, or no box). */
  const confirmedReason = () => {
    const input = document.getElementById("confirm-reason");
    return input ? input.value.trim() : "";
  };

  /* Follow /events: onChanged(names) for each change of flags, onRules(names) (if given) for
   * each change of named rules (their own event: a rule's name is never a flag's), onResync()
   * whenever the stream reopens (changes made while it was closed were not announced), and when
   * it first opens if anything changed since the page was drawn. */
  function listen(onChanged, onResync, onRules) {
    const indicator = document.getElementById("live");
    const show = (state, text) => {
      if (!indicator) return;
      indicator.dataset.live = state;
      indicator.textContent = text;
    };
    let source = null;
    // The count of changes the page was drawn at: the stream's first "hello" says the count
    // now, and equal means nothing changed in between, so the first opening fetches nothing
    // again. Every later (re)opening may have missed changes: it fetches.
    let drawnAt = document.body.dataset.generation;
    const connect = () => {
      source = new EventSource(`${base}/events`);
      source.addEventListener("open", () => show("open", "Live"));
      source.addEventListener("hello", (event) => {
        const unchanged = String(JSON.parse(event.data).generation) === drawnAt;
        drawnAt = undefined;
        if (!unchanged) onResync();
      });
      source.addEventListener("flags", (event) => onChanged(JSON.parse(event.data).changed));
      if (onRules) {
        source.addEventListener("rules", (event) => onRules(JSON.parse(event.data).changed));
      }
      source.addEventListener("error", () => {
        show("closed", "Reconnecting…");
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (an error status, such as 401 when the session ended): check the
          // session through the API (which sends to sign-in on 401), then try again.
          api("GET", "/groups").catch(() => undefined);
          setTimeout(connect, 5000);
        }
      });
    };
    connect();
    window.addEventListener("pagehide", () => source && source.close());
  }

  /* Sign out: a POST with the CSRF header, which a plain form cannot send. */
  function setUpSignOut() {
    const form = document.getElementById("logout");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await fetch(form.action, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf },
        credentials: "same-origin",
      }).catch(() => undefined);
      location.assign(`${base}/login`);
    });
  }
  document.addEventListener("DOMContentLoaded", setUpSignOut);

  return {
    ApiError, api, attempt, base, confirm, confirmEverybody, confirmedReason, count, description,
    flagPath, listen, notice, number, pageUrl, percent, reach, renderBadge, stateLabel, summary,
    thousands,
  };
})();
