/* The flag list: search as you type, filter by state, sort by column, the on/off switches, and
 * rows kept current live. Rows show flags' summaries (GET /api/v1/flags: counts, never member
 * lists), so a flag with a million users costs the page a few hundred bytes. */
"use strict";

(() => {
  const D = window.Dashboard;
  const table = document.getElementById("flags");
  const tbody = table.tBodies[0];
  const search = document.getElementById("search");
  const count = document.getElementById("count");
  const empty = document.getElementById("empty");
  const template = document.getElementById("row-template");
  const stateFilter = document.getElementById("state-filter");
  const staleFilter = document.getElementById("stale-filter");
  const DAY_MS = 86_400_000;
  const headers = Array.from(table.tHead.querySelectorAll("th[data-sort]"));

  const rows = () => Array.from(tbody.rows);
  const rowFor = (name) => rows().find((row) => row.dataset.flag === name);

  /* The stale filter, as the API has it: unchecked_days=N (not seen checked for N days, or
   * never) or on_days=N (on for everybody for N days, from history). */
  function stale(row) {
    const [key, value] = staleFilter.value.split("=");
    if (!key) return true;
    const cutoff = Date.now() - Number(value) * DAY_MS;
    if (key === "unchecked_days") {
      return !row.dataset.checked || Date.parse(row.dataset.checked) <= cutoff;
    }
    return Boolean(row.dataset.onSince) && Date.parse(row.dataset.onSince) <= cutoff;
  }

  /* Show the rows whose name or description contains the search text, in the chosen state. */
  function filter() {
    const query = search.value.trim().toLowerCase();
    const state = stateFilter.value;
    let shown = 0;
    const all = rows();
    for (const row of all) {
      row.hidden = (Boolean(query) && !row.dataset.search.includes(query)) ||
        (Boolean(state) && row.dataset.state !== state) || !stale(row);
      if (!row.hidden) shown += 1;
    }
    const total = D.number(all.length);
    const narrowed = query || state || staleFilter.value;
    count.textContent = narrowed ? `${D.number(shown)} of ${total}` : total;
    empty.hidden = shown > 0;
    empty.textContent = all.length
      ? "No flag matches the search."
      : 'No flags yet: type a name in "New flag" above and press Create flag.';
    const url = new URL(location.href);
    if (query) url.searchParams.set("q", search.value.trim());
    else url.searchParams.delete("q");
    if (state) url.searchParams.set("state", state);
    else url.searchParams.delete("state");
    url.searchParams.delete("unchecked_days");
    url.searchParams.delete("on_days");
    const [staleKey, staleValue] = staleFilter.value.split("=");
    if (staleKey) url.searchParams.set(staleKey, staleValue);
    history.replaceState(null, "", url);
  }

  // Sorting: by name unless a column header was pressed (pressed again, the order reverses).
  // The states sort by how much of the audience has the flag: on, partial, off.
  let sortKey = "flag";
  let ascending = true;
  const STATE_ORDER = { on: 0, partial: 1, off: 2 };
  const sortValue = (row, key) => {
    if (key === "state") return STATE_ORDER[row.dataset.state];
    if (key === "checks") return row.dataset.checks === "" ? -1 : Number(row.dataset.checks);
    if (key === "flag") return row.dataset.flag;
    return row.dataset[key] || ""; // ISO 8601 times sort as text; never checked sorts first
  };
  function sort() {
    const sorted = rows().sort((a, b) => {
      const [x, y] = [sortValue(a, sortKey), sortValue(b, sortKey)];
      if (x !== y) return (x < y ? -1 : 1) * (ascending ? 1 : -1);
      return a.dataset.flag < b.dataset.flag ? -1 : 1; // ties by name, A to Z either way
    });
    sorted.forEach((row) => tbody.appendChild(row));
    headers.forEach((th) => {
      const active = th.dataset.sort === sortKey;
      th.setAttribute("aria-sort", active ? (ascending ? "ascending" : "descending") : "none");
    });
  }
  headers.forEach((th) => th.querySelector("button").addEventListener("click", () => {
    ascending = th.dataset.sort === sortKey ? !ascending : true;
    sortKey = th.dataset.sort;
    sort();
  }));

  const when = (value) => (value ? `${value.slice(0, 16).replace("T", " ")} UTC` : "never");

  function render(row, flag) {
    const text = D.description(flag);
    row.dataset.flag = flag.flag;
    row.dataset.search = `${flag.flag} ${text}`.toLowerCase();
    row.dataset.state = flag.state;
    row.dataset.changed = flag.last_changed || "";
    row.dataset.checked = flag.last_checked || "";
    row.dataset.onSince = flag.on_since || "";
    row.dataset.checks = flag.checks === null ? "" : String(flag.checks);
    const link = row.querySelector('[data-field="link"]');
    link.textContent = flag.flag;
    link.href = D.pageUrl(flag.flag);
    row.querySelector('[data-field="changed-at"]').textContent = when(flag.last_changed);
    row.querySelector('[data-field="changed-by"]').textContent =
      flag.last_changed_by ? `by ${flag.last_changed_by}` : "";
    row.querySelector('[data-field="checked-at"]').textContent = when(flag.last_checked);
    row.querySelector('[data-field="checks"]').textContent = D.number(flag.checks);
    row.querySelector('[data-field="description"]').textContent = text;
    D.renderBadge(row.querySelector('[data-field="state"]'), flag);
    row.querySelector('[data-field="summary"]').textContent = D.summary(flag);
    const states = row.querySelector('[data-field="states"]');
    states.setAttribute("aria-label", `Who gets ${flag.flag}`);
    for (const button of states.querySelectorAll("[data-set]")) {
      button.setAttribute("aria-pressed", String(button.dataset.set === flag.state));
    }
    states.querySelector('[data-field="partial"]').dataset.current = String(flag.state === "partial");
    row.summary = flag; // what the confirmation describes
  }

  // Answers can arrive out of order (a live update's fetch against a switch's answer): each
  // request takes a ticket when it is sent, and a row only shows answers newer than its own.
  let issued = 0;
  const ticket = () => ++issued;
  const removedAt = new Map(); // name -> the ticket that removed its row
  const newer = (row, number) => !row || number >= Number(row.dataset.ticket || 0);

  /* Update the flag's row, or add one in name order (the API sorts names the same way). */
  function upsert(flag, number) {
    let row = rowFor(flag.flag);
    if (!newer(row, number) || number < (removedAt.get(flag.flag) || 0)) return;
    if (!row) {
      row = template.content.firstElementChild.cloneNode(true);
      tbody.appendChild(row); // sort() puts it in its place
    }
    row.dataset.ticket = String(number);
    render(row, flag);
  }

  function remove(name, number) {
    const row = rowFor(name);
    if (row && newer(row, number)) {
      row.remove();
      removedAt.set(name, number);
    }
  }

  /* Every flag's summary, a page at a time (GET /api/v1/flags answers at most 1,000). */
  async function everySummary() {
    const all = [];
    let cursor = null;
    do {
      const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const page = await D.api("GET", `/flags?limit=1000${query}`);
      all.push(...page.flags);
      cursor = page.next_cursor;
    } while (cursor);
    return all;
  }

  async function refresh(names) {
    if (!names || names.length > 50) {
      const number = ticket();
      const flags = await everySummary();
      const present = new Set(flags.map((flag) => flag.flag));
      rows().filter((row) => !present.has(row.dataset.flag))
        .forEach((row) => remove(row.dataset.flag, number));
      flags.forEach((flag) => upsert(flag, number));
    } else {
      await Promise.all(names.map((name) => refreshOne(name, ticket())));
    }
    sort();
    filter();
  }

  async function refreshOne(name, number) {
    const { flags } = await D.api("GET", `/flags?flag=${encodeURIComponent(name)}`);
    if (flags.length) upsert(flags[0], number);
    else remove(name, number); // deleted
    sort();
    filter();
  }

  /* The summary a row shows: the one last rendered, or (a row the server drew) fetched. */
  async function summaryOf(row) {
    if (row.summary) return row.summary;
    const { flags } = await D.api("GET", `/flags?flag=${encodeURIComponent(row.dataset.flag)}`);
    if (!flags.length) throw new D.ApiError(404, { error: { message: "That flag is gone." } });
    return flags[0];
  }

  /* Off or on for everybody, as on the flag page: it asks first, saying what changes (with a
   * reason box, since the list has none of its own), then writes and shows the answer, which
   * is the flag's summary (?view=summary): a flag with a million users costs a few hundred
   * bytes. */
  async function setEverybody(row, on) {
    const name = row.dataset.flag;
    const flag = await summaryOf(row);
    if (!await D.confirmEverybody(flag, on, { askReason: true })) return;
    const reason = D.confirmedReason();
    const number = ticket();
    const body = reason ? { active: on, reason } : { active: on };
    const answer = await D.api("PUT", `${D.flagPath(name)}/active?view=summary`, body);
    upsert(answer, number);
    sort();
    filter();
    D.notice(`${name} is ${on ? "on for everybody" : "off"}.`);
  }

  tbody.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-set]");
    if (!button) return;
    const row = button.closest("tr");
    button.disabled = true;
    await D.attempt(() => setEverybody(row, button.dataset.set === "on"));
    button.disabled = false;
    button.focus();
  });

  document.getElementById("new-flag").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = document.getElementById("new-flag-name").value.trim();
    if (name) location.assign(D.pageUrl(name));
  });

  search.addEventListener("input", filter);
  stateFilter.addEventListener("change", filter);
  staleFilter.addEventListener("change", filter);
  document.addEventListener("keydown", (event) => {
    // "/" jumps to the search box, as on many sites, unless typing somewhere already.
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "/" && !typing) {
      event.preventDefault();
      search.focus();
    }
  });

  filter();
  D.listen(
    (names) => D.attempt(() => refresh(names)),
    () => D.attempt(() => refresh(null)),
  );
})();
