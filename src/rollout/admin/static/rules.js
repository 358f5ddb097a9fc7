/* The named rules: each with its JSON editor (errors inline, with the JSON path the server
 * names), remove, and a form for a new one. Changes go through /api/v1/rules. */
"use strict";

(() => {
  const D = window.Dashboard;
  const $ = (selector, root = document) => root.querySelector(selector);
  const list = $("#rules");
  const template = $("#rule-template");
  const reasonInput = $("#reason");
  const rulePath = (name) => `/rules/${encodeURIComponent(name)}`;
  const pretty = (value) => JSON.stringify(value, null, 2);
  const why = (body) => {
    const reason = reasonInput.value.trim();
    return reason ? { ...(body || {}), reason } : body;
  };

  function parse(text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (problem) {
      return { error: `Not valid JSON: ${problem.message}` };
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { error: "A rule must be a JSON object, like {\"==\": [{\"var\": \"plan\"}, \"pro\"]}." };
    }
    return { value };
  }

  function showError(element, input, text) {
    element.textContent = text || "";
    input.setAttribute("aria-invalid", text ? "true" : "false");
  }

  /* PUT or DELETE a rule: true once done; a refusal shown in ``errorElement``. */
  async function send(method, name, body, errorElement, input) {
    try {
      await D.api(method, rulePath(name), why(body));
    } catch (problem) {
      if (problem.field === "reason") {
        D.notice(problem.message, "error");
        reasonInput.focus();
      } else {
        showError(errorElement, input, problem.message);
      }
      return false;
    }
    return true;
  }

  const editors = new Map(); // name -> {section, input, shown}

  function render(rules) {
    const names = new Set(rules.map((rule) => rule.rule));
    for (const [name, editor] of editors) {
      if (!names.has(name)) {
        editor.section.remove();
        editors.delete(name);
      }
    }
    for (const { rule: name, logic } of rules) {
      let editor = editors.get(name);
      if (!editor) {
        const section = template.content.firstElementChild.cloneNode(true);
        section.dataset.rule = name;
        $('[data-field="name"]', section).textContent = name;
        const input = $('[data-field="logic"]', section);
        input.setAttribute("aria-label", `Rule ${name}`);
        editor = { section, input, shown: "" };
        editors.set(name, editor);
        wire(name, editor);
      }
      const text = pretty(logic);
      if (editor.input.value === editor.shown) editor.input.value = text; // not being edited
      editor.shown = text;
    }
    list.replaceChildren(...[...editors.keys()].sort().map((name) => editors.get(name).section));
    $("#count").textContent = D.thousands(editors.size);
  }

  function wire(name, editor) {
    const error = $('[data-field="error"]', editor.section);
    editor.input.addEventListener("input", () =>
      showError(error, editor.input, parse(editor.input.value).error));
    $("form", editor.section).addEventListener("submit", async (event) => {
      event.preventDefault();
      const { value, error: problem } = parse(editor.input.value);
      showError(error, editor.input, problem);
      if (problem) return;
      if (await send("PUT", name, { logic: value }, error, editor.input)) {
        editor.shown = editor.input.value;
        D.notice(`Rule ${name} saved.`);
        await reload();
      }
    });
    $('[data-action="remove"]', editor.section).addEventListener("click", async () => {
      const sure = await D.confirm({
        title: `Remove the rule ${name}?`,
        text: "Groups of its name match nobody any more. (A rule that a flag's targeting " +
          "refers to cannot be removed: change that flag first.)",
        ok: "Remove",
      });
      if (sure && await send("DELETE", name, undefined, error, editor.input)) {
        D.notice(`Rule ${name} removed.`);
        await reload();
      }
    });
  }

  async function reload() {
    const answer = await D.attempt(() => D.api("GET", "/rules"));
    if (answer) render(answer.rules);
  }

  const newName = $("#new-rule-name");
  const newLogic = $("#new-rule-logic");
  const newError = $("#new-rule-error");
  $("#new-rule").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = newName.value.trim();
    const { value, error: problem } = parse(newLogic.value);
    showError(newError, newLogic, problem);
    if (!name || problem) return;
    if (await send("PUT", name, { logic: value }, newError, newLogic)) {
      newName.value = "";
      newLogic.value = "";
      D.notice(`Rule ${name} defined.`);
      await reload();
    }
  });

  render(JSON.parse($("#rules-data").textContent));
  // A change of rules (here or elsewhere: the API, the CLI, another process) or a reopened
  // stream reads them again; changes of flags alone change nothing shown here.
  D.listen(() => undefined, () => reload(), () => reload());
})();
