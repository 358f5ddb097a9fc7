/* A flag's variants and targeting (flagd's definition): shown, edited as JSON (errors inline,
 * with the JSON path the server names), and an "evaluate for this context" preview. Loaded
 * after flag.js, whose page it joins through window.FlagPage and the "flag:render" event. */
"use strict";

(() => {
  const D = window.Dashboard;
  const page = window.FlagPage;
  const $ = (selector, root = document) => root.querySelector(selector);
  const editor = $("#definition");
  const error = $("#definition-error");
  const save = $("#definition-save");
  const pretty = (value) => JSON.stringify(value, null, 2);
  /* Variants by name, as `rollout variants` lists them: the same order on every page. */
  const byName = (variants) =>
    Object.fromEntries(Object.keys(variants).sort().map((name) => [name, variants[name]]));

  /* What the editor holds: the definition without its metadata (the data panel edits that). */
  function editable(definition) {
    if (!Object.keys(definition.variants).length) {
      // An on/off flag: a starting point, saved only when the person says so.
      return { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "off", targeting: {} };
    }
    return {
      state: definition.state,
      variants: byName(definition.variants),
      defaultVariant: definition.defaultVariant,
      targeting: definition.targeting || {},
    };
  }

  let shownText = ""; // what the editor last showed of the flag's definition

  function render(flag) {
    const definition = flag.definition;
    const defined = Object.keys(definition.variants).length > 0;
    $('[data-field="no-variants"]').hidden = defined;
    $('[data-field="definition-note"]').hidden = !defined;
    $('[data-field="definition-shown"]').hidden = !defined;
    $('[data-field="def-state"]').textContent = definition.state;
    $('[data-field="def-default"]').textContent =
      definition.defaultVariant === null ? "none (the caller's default)" : definition.defaultVariant;
    $('[data-field="def-variants"]').replaceChildren(...Object.entries(byName(definition.variants)).map(
      ([variant, value]) => {
        const row = document.createElement("tr");
        const name = document.createElement("th");
        name.scope = "row";
        name.textContent = variant;
        const cell = document.createElement("td");
        const code = document.createElement("code");
        code.textContent = JSON.stringify(value);
        cell.append(code);
        row.append(name, cell);
        return row;
      }));
    $('[data-field="def-targeting"]').textContent =
      definition.targeting ? pretty(definition.targeting) : "none";
    $("#targeting-clear").hidden = !definition.targeting;
    const text = pretty(editable(definition));
    if (editor.value === shownText) {
      editor.value = text; // not being edited: follow the flag
      validate();
    } else if (text !== shownText) {
      error.textContent = "The definition was changed elsewhere while you were editing it.";
    }
    shownText = text;
  }

  function parse(input, what) {
    let value;
    try {
      value = JSON.parse(input.value);
    } catch (problem) {
      return { error: `Not valid JSON: ${problem.message}` };
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { error: `The ${what} must be a JSON object.` };
    }
    return { value };
  }

  function showError(element, input, text) {
    element.textContent = text || "";
    input.setAttribute("aria-invalid", text ? "true" : "false");
  }

  function validate() {
    const { error: problem } = parse(editor, "definition");
    showError(error, editor, problem);
    save.disabled = Boolean(problem);
    return !problem;
  }

  editor.addEventListener("input", validate);

  /* A change through the API; the server's refusal (with its JSON path) shown under the editor. */
  async function send(method, suffix, body, message) {
    try {
      await D.api(method, `${page.path}${suffix}`, page.why(body));
    } catch (problem) {
      if (problem.field === "reason") {
        D.notice(problem.message, "error");
        $("#reason").focus();
      } else {
        showError(error, editor, problem.message);
      }
      return;
    }
    shownText = editor.value; // handed over: live updates may replace the text again
    D.notice(message);
    await page.reload();
  }

  $("#definition-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!validate()) return;
    await send("PUT", "/definition", parse(editor, "definition").value, "Definition saved.");
  });

  $("#targeting-clear").addEventListener("click", () =>
    send("DELETE", "/targeting", undefined, "Targeting removed."));

  // Evaluate for this context --------------------------------------------------------------

  const contextInput = $("#evaluate-context");
  const contextError = $("#evaluate-error");
  const result = $("#evaluate-result");

  $("#evaluate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const { value, error: problem } = parse(contextInput, "context");
    showError(contextError, contextInput, problem);
    if (problem) return;
    let answer;
    try {
      answer = await D.api("POST", `${page.path}/evaluate`, { context: value });
    } catch (failure) {
      showError(contextError, contextInput, failure.message);
      return;
    }
    $('[data-field="eval-value"]').textContent = JSON.stringify(answer.value);
    $('[data-field="eval-variant"]').textContent = answer.variant === null ? "none" : answer.variant;
    $('[data-field="eval-reason"]').textContent = answer.error_code
      ? `${answer.reason} (${answer.error_code}: ${answer.error_message || ""})`
      : answer.reason;
    result.hidden = false;
  });

  document.addEventListener("flag:render", (event) => render(event.detail));
  render(page.flag());
})();
