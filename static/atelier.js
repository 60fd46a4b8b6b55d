// Site-wide behaviour on top of htmx. Refusals (4xx) come back as partials with their message and
// are swapped in place (see the htmx-config meta tag); this only reports what has no partial:
// server errors and lost connections.
(() => {
  "use strict";

  function flash(text) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  document.addEventListener("htmx:responseError", (event) => {
    flash(`Something went wrong on our side (HTTP ${event.detail.xhr.status}). Nothing was lost; try again.`);
  });
  document.addEventListener("htmx:sendError", () => {
    flash("Atelier cannot be reached right now. Check your connection; this page retries by itself.");
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.successful) {
      const box = document.getElementById("flash");
      if (box && !box.hidden && event.detail.requestConfig && event.detail.requestConfig.verb === "get") box.hidden = true;
    }
  });
})();
