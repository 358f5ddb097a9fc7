/* A flag's page: on/off, the two percentage sliders, users and exclusions, groups, data, delete,
 * and its history, all kept current live. Every change goes through the JSON API. */
"use strict";

(() => {
  const D = window.Dashboard;
  const MAX_SHOWN = 500; // as admin/_pages.py MAX_SHOWN
  let flag = JSON.parse(document.getElementById("flag-data").textContent);
  const name = flag.flag;
  const path = D.flagPath(name);
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const blank = () => ({
    flag: name, state: "off", percentage: 0, percentage_of_time: 0,
    users: [], excluded_users: [], groups: [], data: {},
    counts: { users: 0, excluded_users: 0, groups: 0 },
  });

  // Rendering ------------------------------------------------------------------------------

  function render(next, exists) {
    flag = next;
    $("#missing").hidden = exists;
    D.renderBadge($('[data-field="state"]'), flag);
    $('[data-field="summary"]').textContent = D.summary(flag);
    $('[data-field="description"]').textContent = D.description(flag);
    $('[data-action="toggle"]').setAttribute("aria-checked", flag.state === "off" ? "false" : "true");
    sliders.forEach((slider) => slider.render());
    $$("[data-ids]").forEach(renderIds);
    renderGroups();
    renderData();
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

  async function reload() {
    const number = ticket();
    try {
      show(number, await D.api("GET", path), true);
    } catch (error) {
      if (error.status !== 404) throw error;
      show(number, blank(), false); // deleted (or never created): the history still tells
    }
    await reloadHistory();
  }

  let historyIssued = 0;
  let historyShown = 0;
  async function reloadHistory() {
    const number = ++historyIssued;
    const url = new URL(location.href);
    url.searchParams.set("fragment", "history");
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    const text = await response.text();
    if (!response.ok || number < historyShown) return;
    historyShown = number;
    $("#history").innerHTML = text; // our own server's template, autoescaped: safe as HTML
  }

  /* A change through the API: show the flag it returns (true once done), then its history. */
  async function change(method, suffix, body, message) {
    return D.attempt(async () => {
      const number = ticket();
      show(number, await D.api(method, path + suffix, body), true);
      if (message) D.notice(message);
      D.attempt(reloadHistory); // not awaited: the person may go on meanwhile
      return true;
    });
  }

  // On/off ---------------------------------------------------------------------------------

  $('[data-action="toggle"]').addEventListener("click", async (event) => {
    const toggle = event.currentTarget;
    toggle.disabled = true;
    const number = ticket();
    const result = await D.attempt(() =>
      D.setActive(name, toggle.getAttribute("aria-checked") !== "true"));
    toggle.disabled = false;
    if (result) {
      show(number, result, true);
      D.attempt(reloadHistory);
    }
    toggle.focus();
  });

  // Percentages: the slider for coarse moves, the number box for exact values --------------

  const sliders = $$("[data-slider]").map((element) => {
    const field = element.dataset.slider;
    const range = $('input[type="range"]', element);
    const exact = $('input[type="number"]', element);
    const label = $("label", element).textContent.toLowerCase();
    let editing = false; // while the person moves it, live updates leave it alone
    let timer = 0;

    const commit = (value) => {
      clearTimeout(timer);
      // Arrow keys fire a change per press: send the value they settle on, once.
      timer = setTimeout(async () => {
        await change("PUT", `/${field}`, { percentage: value }, `${label}: ${D.percent(value)}%`);
        editing = false;
        render(flag, !$("#missing").hidden);
      }, 250);
    };
    range.addEventListener("input", () => {
      editing = true;
      exact.value = range.value;
    });
    range.addEventListener("change", () => commit(Number(range.value)));
    exact.addEventListener("input", () => { editing = true; });
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

  // Users and excluded users ---------------------------------------------------------------

  /* "1, 2\n3" → ["1", "2", "3"]: commas, new lines and tabs separate; blanks and repeats go. */
  const parseIds = (text) =>
    [...new Set(text.split(/[,\n\r\t]+/).map((id) => id.trim()).filter(Boolean))];

  function renderIds(section) {
    const ids = flag[section.dataset.ids];
    const list = $(".chips", section);
    const verb = list.dataset.verb;
    const hadFocus = list.contains(document.activeElement);
    list.replaceChildren(...ids.slice(0, MAX_SHOWN).map((id) => {
      const item = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = id;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "chip-remove";
      remove.dataset.id = id;
      remove.setAttribute("aria-label", `Remove ${verb} ${id}`);
      remove.textContent = "×";
      item.append(text, remove);
      return item;
    }));
    $('[data-field="count"]', section).textContent = String(ids.length);
    const more = $('[data-field="more"]', section);
    more.hidden = ids.length <= MAX_SHOWN;
    more.textContent = `${ids.length - MAX_SHOWN} more not shown: paste ids below to remove them.`;
    if (hadFocus) $("textarea", section).focus(); // the button pressed is gone with its chip
  }

  $$("[data-ids]").forEach((section) => {
    const field = section.dataset.ids; // "users" or "excluded_users"
    const input = $("textarea", section);
    const what = field === "users" ? "users" : "excluded users";
    const send = async (remove, ids) => {
      if (!ids.length) return;
      const typed = input.value;
      const suffix = `/${field}${remove ? "/remove" : ""}`;
      const message = `${remove ? "Removed" : "Added"} ${ids.length} ${what}.`;
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
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("form", section).requestSubmit();
      }
    });
    $(".chips", section).addEventListener("click", (event) => {
      const button = event.target.closest(".chip-remove");
      if (button) send(true, [button.dataset.id]);
    });
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
    await D.attempt(async () => {
      // The editor shows the whole data, so saving replaces it: one write, keys deleted in
      // the editor removed with it.
      const saved = await D.api("PUT", `${path}/data/replace`, { data: value });
      show(ticket(), saved, true);
      D.notice("Data saved.");
      D.attempt(reloadHistory);
    });
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
    const deleted = await D.attempt(() => D.api("DELETE", path));
    if (deleted) location.assign(`${D.base}/`);
  });

  validate();
  D.listen(
    (names) => { if (names.includes(name)) D.attempt(reload); },
    () => D.attempt(reload),
  );
})();
