/* A flag's page: off / partial / on for everybody, the two percentage sliders, users and
 * exclusions (a page at a time), groups, data, delete, "check a user", and its history, all
 * kept current live. Every change goes through the JSON API, with the reason typed, if any. */
"use strict";

(() => {
  const D = window.Dashboard;
  let flag = JSON.parse(document.getElementById("flag-data").textContent);
  const name = flag.flag;
  const path = D.flagPath(name);
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const reasonInput = $("#reason");

  /* The body of a change with the reason typed at the top of the page, if any. */
  const why = (body) => {
    const reason = reasonInput.value.trim();
    return reason ? { ...(body || {}), reason } : body;
  };

  /* Runs a change; an error becomes a notice (and a missing reason takes the focus there). */
  async function attempt(action) {
    try {
      return await action();
    } catch (error) {
      D.notice(error.message, "error");
      if (error.field === "reason") reasonInput.focus();
      return undefined;
    }
  }

  // Rendering ------------------------------------------------------------------------------

  function render(next, exists) {
    flag = next;
    $("#missing").hidden = exists;
    D.renderBadge($('[data-field="state"]'), flag);
    const timeBadge = $('[data-field="time-badge"]');
    timeBadge.hidden = !flag.percentage_of_time;
    timeBadge.textContent = `${D.percent(flag.percentage_of_time)}% of the time`;
    $('[data-field="summary"]').textContent = D.summary(flag);
    $('[data-field="description"]').textContent = D.description(flag);
    for (const button of $$("[data-set]")) {
      button.setAttribute("aria-pressed", String(button.dataset.set === flag.state));
    }
    $('[data-field="partial"]').dataset.current = String(flag.state === "partial");
    $('[data-field="partial-what"]').textContent =
      flag.state === "partial" ? `: ${D.summary(flag)}` : "";
    sliders.forEach((slider) => slider.render());
    idLists.forEach((list) => list.follow());
    renderGroups();
    renderData();
    // The definition's panel (definition.js) follows the flag too.
    document.dispatchEvent(new CustomEvent("flag:render", { detail: flag }));
  }

  // Answers can arrive out of order (a live update's fetch against a change's answer): each
  // request takes a ticket when it is sent, and an answer older than the one shown is dropped.
  let issued = 0;
  let shown = 0;
  const ticket = () => ++issued;
  function show(number, next, exists) {
    if (number < shown) return;
    shown = number;
    render(next, exists);
  }

  /* The page's own view of the flag (first pages of its users, and counts): a flag with a
   * million users is fetched in a few kilobytes. */
  async function fetchFragment(fragment) {
    const url = new URL(location.href);
    url.searchParams.set("fragment", fragment);
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) location.reload(); // the session ended: sign in again
    if (!response.ok) throw new D.ApiError(response.status, null);
    return response;
  }

  async function reload() {
    const number = ticket();
    const next = await (await fetchFragment("flag")).json();
    show(number, next, next.exists);
    await reloadHistory();
  }

  let historyIssued = 0;
  let historyShown = 0;
  async function reloadHistory() {
    const number = ++historyIssued;
    const text = await (await fetchFragment("history")).text();
    if (number < historyShown) return;
    historyShown = number;
    $("#history").innerHTML = text; // our own server's template, autoescaped: safe as HTML
  }

  /* A change through the API (with the reason, if one is typed), then the flag as it now is:
   * true once done. `message`: the notice, or a function making it from the flag shown. */
  async function change(method, suffix, body, message) {
    return attempt(async () => {
      // The answer is not shown (reload() fetches the page's own view): its summary, so a
      // change to a flag with a million users does not download them.
      await D.api(method, `${path}${suffix}?view=summary`, why(body));
      await attempt(reload);
      const text = typeof message === "function" ? message() : message;
      if (text) D.notice(text);
      return true;
    });
  }

  // Off / partial / on for everybody ---------------------------------------------------------

  /* Everybody or nobody is never one careless click: the dialog (common.js, as on the list)
   * says what changes; the reason is the one typed at the top of the page. */
  async function setEverybody(on) {
    if (!await D.confirmEverybody(flag, on)) return;
    await change("PUT", "/active", { active: on }, `${name} is ${on ? "on for everybody" : "off"}.`);
  }

  for (const button of $$("[data-set]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      await setEverybody(button.dataset.set === "on");
      button.disabled = false;
      button.focus();
    });
  }

  // Percentages: the slider for coarse moves, the number box for exact values --------------

  const sliders = $$("[data-slider]").map((element) => {
    const field = element.dataset.slider;
    const range = $('input[type="range"]', element);
    const exact = $('input[type="number"]', element);
    const label = $("label", element).textContent.toLowerCase();
    let editing = false; // while the person moves it, live updates leave it alone
    // Counts the person's edits: the answer to one change must not put back the value shown
    // over an edit made while it was on its way (the number half typed would be lost).
    let edits = 0;
    const edited = () => {
      editing = true;
      edits += 1;
    };
    let timer = 0;

    const commit = (value) => {
      clearTimeout(timer);
      const sent = edits;
      // Arrow keys fire a change per press: send the value they settle on, once.
      timer = setTimeout(async () => {
        await change("PUT", `/${field}`, { percentage: value }, `${label}: ${D.percent(value)}%`);
        if (edits !== sent) return; // edited since: that edit's own change settles the view
        editing = false;
        render(flag, !$("#missing").hidden);
      }, 250);
    };
    range.addEventListener("input", () => {
      edited();
      exact.value = range.value;
    });
    range.addEventListener("change", () => commit(Number(range.value)));
    exact.addEventListener("input", edited);
    exact.addEventListener("change", () => {
      const value = Number(exact.value);
      if (exact.value === "" || !(value >= 0 && value <= 100)) {
        D.notice(`The ${label} must be a number from 0 to 100.`, "error");
        editing = false;
        render(flag, !$("#missing").hidden);
        return;
      }
      range.value = String(value);
      commit(value);
    });
    return {
      render() {
        if (editing) return;
        range.value = String(flag[field]);
        exact.value = D.percent(flag[field]);
      },
    };
  });

  // Users and excluded users: a page at a time, searched and paged through the API --------

  /* "1, 2\n3" → ["1", "2", "3"]: commas, new lines and tabs separate; blanks and repeats go. */
  const parseIds = (text) =>
    [...new Set(text.split(/[,\n\r\t]+/).map((id) => id.trim()).filter(Boolean))];

  const idLists = $$("[data-ids]").map((section) => {
    const field = section.dataset.ids; // "users" or "excluded_users"
    const list = $(".chips", section);
    const verb = list.dataset.verb;
    const search = $(".ids-search", section);
    const more = $('[data-action="more"]', section);
    // What is shown: the flag's first page, or (searching, or paged on) pages from the API.
    // At first, what the server drew: the embedded flag's first page (no fetch needed).
    let view = {
      ids: flag[field],
      excluded: new Set(field === "users" ? flag.users_excluded : []),
      next: flag[`${field}_next_cursor`],
      total: D.count(flag, field),
    };
    let q = "";
    let paged = false;
    let asked = 0;

    function draw() {
      const hadFocus = list.contains(document.activeElement);
      list.replaceChildren(...view.ids.map((id) => {
        const item = document.createElement("li");
        const text = document.createElement("span");
        text.textContent = id;
        item.append(text);
        if (field === "users" && view.excluded.has(id)) {
          item.className = "excluded"; // listed, but excluded: the exclusion wins
          const tag = document.createElement("span");
          tag.className = "tag";
          tag.textContent = "excluded: off";
          item.append(tag);
        }
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip-remove";
        remove.dataset.id = id;
        remove.setAttribute("aria-label", `Remove ${verb} ${id}`);
        remove.textContent = "×";
        item.append(remove);
        return item;
      }));
      $('[data-field="count"]', section).textContent = D.thousands(D.count(flag, field));
      const matching = q ? ` matching “${q}”` : "";
      $('[data-field="shown"]', section).textContent =
        q && !view.total ? `No ids match “${q}”.`
        : view.total > view.ids.length
          ? `Showing ${D.thousands(view.ids.length)} of ${D.thousands(view.total)}${matching}.`
          : q ? `${D.thousands(view.total)}${matching}.` : "";
      more.hidden = !view.next;
      if (hadFocus) $("textarea", section).focus(); // the button pressed is gone with its chip
    }

    /* A page from the API: the first (again) when ``fresh``, else the one after those shown. */
    async function load(fresh, limit = 100) {
      const number = ++asked;
      const params = new URLSearchParams({ limit: String(limit) });
      if (q) params.set("q", q);
      if (!fresh && view.next) params.set("cursor", view.next);
      const page = await D.api("GET", `${path}/${field}?${params}`);
      if (number !== asked) return; // a newer search or page was asked for meanwhile
      const ids = fresh ? page.users : view.ids.concat(page.users);
      const excluded = new Set(fresh ? page.excluded : [...view.excluded, ...page.excluded]);
      view = { ids, excluded, next: page.next_cursor, total: page.total };
      draw();
    }

    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        q = search.value.trim();
        paged = false;
        if (q) attempt(() => load(true));
        else follow();
      }, 250);
    });
    more.addEventListener("click", () => {
      paged = true;
      attempt(() => load(false));
    });

    /* The flag changed: show its first page, or refresh the search or pages being looked at. */
    function follow() {
      if (q || paged) {
        attempt(() => load(true, Math.min(1000, Math.max(100, view.ids.length))));
        return;
      }
      asked += 1; // an answer still on its way is older than this
      view = {
        ids: flag[field],
        excluded: new Set(field === "users" ? flag.users_excluded : []),
        next: flag[`${field}_next_cursor`],
        total: D.count(flag, field),
      };
      draw();
    }

    const input = $("textarea", section);
    const what = field === "users" ? "users" : "excluded users";
    const send = async (remove, ids) => {
      if (!ids.length) return;
      const typed = input.value;
      const suffix = `/${field}${remove ? "/remove" : ""}`;
      // Counts what changed, not what was sent: ids listed already (or never) are no change.
      const listed = D.count(flag, field);
      const message = () => {
        const changed = Math.min(Math.abs(D.count(flag, field) - listed), ids.length);
        const same = ids.length - changed;
        return `${remove ? "Removed" : "Added"} ${D.thousands(changed)} ${what}` +
          (same ? ` (${D.thousands(same)} ${remove ? "not listed" : "listed already"}).` : ".");
      };
      // Emptied once sent, unless the person has typed something else meanwhile.
      if (await change("POST", suffix, { users: ids }, message) && input.value === typed) {
        input.value = "";
      }
    };
    $("form", section).addEventListener("submit", (event) => {
      event.preventDefault();
      send(false, parseIds(input.value));
    });
    $('[data-action="remove-ids"]', section).addEventListener("click", () =>
      send(true, parseIds(input.value)));
    input.addEventListener("keydown", (event) => {
      // Enter adds (a paste keeps its new lines); Shift+Enter starts a new line.
      if (event.key === "Enter" && !event.isComposing && !event.shiftKey) {
        event.preventDefault();
        $("form", section).requestSubmit();
      }
    });
    list.addEventListener("click", (event) => {
      const button = event.target.closest(".chip-remove");
      if (button) send(true, [button.dataset.id]);
    });
    return { follow };
  });

  // Check a user ----------------------------------------------------------------------------

  $("#check-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = $("#check-user").value.trim();
    if (!user) return;
    const result = $("#check-result");
    const answer = await attempt(() =>
      D.api("GET", `${path}/explain?user=${encodeURIComponent(user)}`));
    if (!answer) return;
    const verdict = document.createElement("strong");
    verdict.textContent = answer.active ? "On" : "Off";
    result.dataset.active = String(answer.active);
    // "on: user '42' is listed": the verdict is shown already, the rest says why.
    const because = answer.message.replace(/^(on|off): /, "");
    result.replaceChildren(verdict, ` for user ${answer.user}: ${because}`);
  });

  // Groups ---------------------------------------------------------------------------------

  const groupBoxes = $(".groups");

  function groupBox(group) {
    let box = $$("input[data-group]", groupBoxes).find((input) => input.dataset.group === group);
    if (!box) { // a group defined elsewhere (another service), first seen on this flag
      const label = document.createElement("label");
      label.className = "check";
      box = document.createElement("input");
      box.type = "checkbox";
      box.dataset.group = group;
      label.append(box, ` ${group}`);
      groupBoxes.append(label);
    }
    return box;
  }

  function renderGroups() {
    flag.groups.forEach(groupBox);
    for (const box of $$("input[data-group]", groupBoxes)) {
      box.checked = flag.groups.includes(box.dataset.group);
    }
  }

  groupBoxes.addEventListener("change", (event) => {
    const group = event.target.dataset.group;
    if (group === undefined) return;
    if (event.target.checked) change("POST", "/groups", { group }, `Added group ${group}.`);
    else change("DELETE", `/groups/${encodeURIComponent(group)}`, undefined, `Removed group ${group}.`);
  });

  /* Named rules are groups too, marked as segments: one defined elsewhere is offered, one
   * removed loses its mark (its box stays while the flag or a service's code names it). */
  async function reloadSegments() {
    const answer = await D.api("GET", "/rules");
    const rules = new Set(answer.rules.map((rule) => rule.rule));
    rules.forEach(groupBox);
    for (const box of $$("input[data-group]", groupBoxes)) {
      const mark = $(".segment", box.parentElement);
      if (mark && !rules.has(box.dataset.group)) mark.remove();
      if (!mark && rules.has(box.dataset.group)) {
        const added = document.createElement("span");
        added.className = "segment";
        added.title = "A named rule: on for the users it matches";
        added.textContent = "segment";
        box.parentElement.append(" ", added);
      }
    }
    const known = $("#known-groups");
    const offered = new Set($$("option", known).map((option) => option.value));
    for (const rule of rules) {
      if (!offered.has(rule)) known.append(new Option(rule, rule));
    }
  }

  $("#group-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("#group-input");
    const typed = input.value;
    const group = typed.trim();
    if (group && await change("POST", "/groups", { group }, `Added group ${group}.`) &&
        input.value === typed) {
      input.value = "";
    }
  });

  // Data -----------------------------------------------------------------------------------

  const dataInput = $("#data");
  const dataError = $("#data-error");
  let shownData = dataInput.value; // what the editor last showed of the flag's data

  const sortKeys = (value) => {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sortKeys(value[key])]));
    }
    return value;
  };
  const pretty = (data) => JSON.stringify(sortKeys(data), null, 2);

  function renderData() {
    const text = pretty(flag.data);
    if (dataInput.value === shownData) {
      dataInput.value = text; // not being edited: follow the flag
      validate();
    } else if (text !== shownData) {
      dataError.textContent = "The data was changed elsewhere while you were editing it.";
    }
    shownData = text;
  }

  function parseData() {
    let value;
    try {
      value = JSON.parse(dataInput.value);
    } catch (error) {
      return { error: `Not valid JSON: ${error.message}` };
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { error: 'The data must be a JSON object, like {"owner": "web"}.' };
    }
    return { value };
  }

  function validate() {
    const { error } = parseData();
    dataError.textContent = error || "";
    dataInput.setAttribute("aria-invalid", error ? "true" : "false");
    $("#data-save").disabled = Boolean(error);
    return !error;
  }

  dataInput.addEventListener("input", validate);

  $("#data-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!validate()) return;
    const { value } = parseData();
    const removed = Object.keys(flag.data).filter((key) => !(key in value));
    if (!removed.length && !Object.keys(value).length) return; // {} and nothing to remove
    shownData = dataInput.value; // handed over: live updates may replace the text again
    // The editor shows the whole data, so saving replaces it: one write, keys deleted in the
    // editor removed with it.
    await change("PUT", "/data/replace", { data: value }, "Data saved.");
  });

  $("#data-clear").addEventListener("click", async () => {
    const sure = await D.confirm({
      title: `Clear the data of ${name}?`,
      text: "Every key of its data is removed. Its targeting stays.",
      ok: "Clear data",
    });
    if (!sure) return;
    shownData = dataInput.value;
    await change("DELETE", "/data", undefined, "Data cleared.");
  });

  // Delete ---------------------------------------------------------------------------------

  $("#delete").addEventListener("click", async () => {
    const sure = await D.confirm({
      title: `Delete ${name}?`,
      text: "Its targeting and data are forgotten; its history stays. Services then see it as off.",
      ok: "Delete",
    });
    if (!sure) return;
    const deleted = await attempt(() => D.api("DELETE", path, why(undefined)));
    if (deleted) location.assign(`${D.base}/`);
  });

  /* What definition.js needs of this page: the flag shown, the reason typed, a reload. */
  window.FlagPage = { path, flag: () => flag, why, reload: () => attempt(reload) };

  validate();
  D.listen(
    (names) => { if (names.includes(name)) attempt(reload); },
    () => { attempt(reload); attempt(reloadSegments); },
    // A rule's own change: the segments offered. (This flag, if the rule changed its answers,
    // is named in a flags event too.)
    () => attempt(reloadSegments),
  );
})();
