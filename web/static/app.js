// semcurate's web browser: the little JavaScript it needs, served locally (no CDN).
"use strict";
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-toggle-all]");
  if (toggle) {
    const open = toggle.dataset.toggleAll === "open";
    document.querySelectorAll("#tree details").forEach((details) => { details.open = open; });
  }
  const confirming = event.target.closest("[data-confirm]");
  if (confirming && !window.confirm(confirming.dataset.confirm)) {
    event.preventDefault();
  }
});
