/* The flag list: search as you type, the on/off switches, and rows kept current live. */
"use strict";

(() => {
  const D = window.Dashboard;
  const table = document.getElementById("flags");
  const tbody = table.tBodies[0];
  const search = document.getElementById("search");
  const count = document.getElementById("count");
  const empty = document.getElementById("empty");
  const template = document.getElementById("row-template");

  const rows = () => Array.from(tbody.rows);
  const rowFor = (name) => rows().find((row) => row.dataset.flag === name);

  /* Show the rows whose name or description contains the search text. */
  function filter() {
    const query = search.value.trim().toLowerCase();
    let shown = 0;
    const all = rows();
    for (const row of all) {
      row.hidden = Boolean(query) && !row.dataset.search.includes(query);
      if (!row.hidden) shown += 1;
    }
    count.textContent = query ? `${shown} of ${all.length}` : String(all.length);
    empty.hidden = shown > 0;
    empty.textContent = all.length
      ? "No flag matches the search."
      : "No flags yet: type a name above and press Open to create one.";
    const url = new URL(location.href);
    if (query) url.searchParams.set("q", search.value.trim());
    else url.searchParams.delete("q");
    history.replaceState(null, "", url);
  }

  function render(row, flag) {
    const text = D.description(flag);
    row.dataset.flag = flag.name;
    row.dataset.search = `${flag.name} ${text}`.toLowerCase();
    const link = row.querySelector('[data-field="link"]');
    link.textContent = flag.name;
    link.href = D.pageUrl(flag.name);
    row.querySelector('[data-field="description"]').textContent = text;
    D.renderBadge(row.querySelector('[data-field="state"]'), flag);
    row.querySelector('[data-field="summary"]').textContent = D.summary(flag);
    const toggle = row.querySelector('[data-action="toggle"]');
    toggle.setAttribute("aria-checked", flag.state === "off" ? "false" : "true");
    toggle.setAttribute("aria-label", flag.name);
  }

  // Answers can arrive out of order (a live update's fetch against a switch's answer): each
  // request takes a ticket when it is sent, and a row only shows answers newer than its own.
  let issued = 0;
  const ticket = () => ++issued;
  const removedAt = new Map(); // name -> the ticket that removed its row
  const newer = (row, number) => !row || number >= Number(row.dataset.ticket || 0);

  /* Update the flag's row, or add one in name order (the API sorts names the same way). */
  function upsert(flag, number) {
    let row = rowFor(flag.name);
    if (!newer(row, number) || number < (removedAt.get(flag.name) || 0)) return;
    if (!row) {
      row = template.content.firstElementChild.cloneNode(true);
      const after = rows().find((other) => other.dataset.flag > flag.name);
      tbody.insertBefore(row, after || null);
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

  async function refresh(names) {
    if (!names || names.length > 50) {
      const number = ticket();
      const { flags } = await D.api("GET", "/flags");
      const present = new Set(flags.map((flag) => flag.name));
      rows().filter((row) => !present.has(row.dataset.flag))
        .forEach((row) => remove(row.dataset.flag, number));
      flags.forEach((flag) => upsert(flag, number));
    } else {
      await Promise.all(names.map(async (name) => {
        const number = ticket();
        try {
          upsert(await D.api("GET", D.flagPath(name)), number);
        } catch (error) {
          if (error.status !== 404) throw error;
          remove(name, number); // deleted
        }
      }));
    }
    filter();
  }

  tbody.addEventListener("click", async (event) => {
    const toggle = event.target.closest('[data-action="toggle"]');
    if (!toggle) return;
    const name = toggle.closest("tr").dataset.flag;
    const on = toggle.getAttribute("aria-checked") !== "true";
    toggle.disabled = true;
    const number = ticket();
    const flag = await D.attempt(() => D.setActive(name, on));
    toggle.disabled = false;
    if (flag) upsert(flag, number);
    toggle.focus();
  });

  document.getElementById("new-flag").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = document.getElementById("new-flag-name").value.trim();
    if (name) location.assign(D.pageUrl(name));
  });

  search.addEventListener("input", filter);
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
