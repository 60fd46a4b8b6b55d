// Site-wide behaviour on top of htmx. Refusals (4xx) come back as partials with their message and
// are swapped in place (see the htmx-config meta tag); this reports what has no partial (server
// errors, lost connections) and keeps what the buyer types across a session that ended.
(() => {
  "use strict";

  function flash(text, { sticky = false } = {}) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    clearTimeout(flash.timer);
    if (sticky) {
      // A server error stays until dismissed: its message is what the buyer needs to read.
      const close = document.createElement("button");
      close.type = "button";
      close.className = "link flash-close";
      close.textContent = "Dismiss";
      close.addEventListener("click", () => { box.hidden = true; });
      box.append(" ", close);
    } else {
      flash.timer = setTimeout(() => { box.hidden = true; }, 8000);
    }
    box.hidden = false;
  }

  // The server's own sentence: the JSON envelope's `error`, or the error page's first paragraph.
  function serverMessage(xhr) {
    const body = xhr.responseText || "";
    try {
      const parsed = JSON.parse(body);
      if (parsed && typeof parsed.error === "string") return parsed.error;
    } catch { /* not JSON */ }
    const page = new DOMParser().parseFromString(body, "text/html");
    const said = page.querySelector("[role=alert], .error-page p");
    return said ? said.textContent.trim() : "";
  }

  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const said = serverMessage(xhr);
    flash(`${said || "Something went wrong on our side."} (HTTP ${xhr.status}) Nothing you typed was lost; try again.`, { sticky: true });
  });
  document.addEventListener("htmx:sendError", () => {
    flash("Atelier cannot be reached right now. Check your connection; this page retries by itself.");
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.successful) {
      const box = document.getElementById("flash");
      const get = event.detail.requestConfig && event.detail.requestConfig.verb === "get";
      if (box && !box.hidden && get && !box.classList.contains("session-ended") && !box.querySelector(".flash-close")) box.hidden = true;
    }
  });

  // Drafts: what is typed into a page's htmx forms is kept in this tab's sessionStorage until the
  // server accepts the form, so a session that ended (sign in, come back) loses nothing.
  const DRAFT = "draft:";
  const draftKey = (field) => `${DRAFT}${location.pathname}#${field.id}`;
  const drafted = (field) =>
    field.id && field.form && field.form.hasAttribute("hx-post") && (field.tagName === "TEXTAREA" || field.type === "text");

  document.addEventListener("input", (event) => {
    const field = event.target;
    if (!drafted(field)) return;
    try {
      if (field.value) sessionStorage.setItem(draftKey(field), field.value);
      else sessionStorage.removeItem(draftKey(field));
    } catch { /* storage full or off: nothing to keep */ }
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    const xhr = event.detail.xhr;
    if (!(form instanceof HTMLFormElement) || !event.detail.successful || xhr.getResponseHeader("HX-Redirect")) return;
    for (const field of form.elements) {
      if (drafted(field)) try { sessionStorage.removeItem(draftKey(field)); } catch { /* ignore */ }
    }
  });
  function restoreDrafts() {
    for (const field of document.querySelectorAll("form[hx-post] textarea[id], form[hx-post] input[type=text][id]")) {
      let kept = null;
      try { kept = sessionStorage.getItem(draftKey(field)); } catch { /* ignore */ }
      if (kept && !field.value) {
        field.value = kept;
        const folded = field.closest("details");
        if (folded) folded.open = true;
      }
    }
  }
  document.addEventListener("DOMContentLoaded", restoreDrafts);
})();
