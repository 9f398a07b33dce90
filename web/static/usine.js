// Usine — the few lines of script the workspace uses (htmx does the rest; every page works without both).
(function () {
  "use strict";
  // After a partial update, move the keyboard focus to the region's heading when the region asks
  // for it (data-focus-heading), so that screen-reader users hear what changed.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || !target.querySelector) { return; }
    var region = target.matches && target.matches("[data-focus-heading]") ? target : target.querySelector("[data-focus-heading]");
    if (!region) { return; }
    var heading = region.querySelector("h2, h3");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
  });
  // A live search field has already updated the list as it was typed into; the `change` it fires
  // when the person leaves it would fetch the same list again and, arriving while they tab into
  // it, replace the link they are on and drop their keyboard focus. That request is not made.
  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail && event.detail.triggeringEvent;
    if (trigger && trigger.type === "change" && trigger.target && trigger.target.matches
        && trigger.target.matches("[data-live-search]")) { event.preventDefault(); }
  });
  // The claim form: the amount is for an advance, the invoice lines for a balance.
  function syncClaimForm(form) {
    var kind = form.querySelector("input[name=kind]:checked");
    var advance = kind && kind.value === "advance";
    form.querySelectorAll("[data-for-kind]").forEach(function (el) {
      el.hidden = el.getAttribute("data-for-kind") !== (advance ? "advance" : "final");
    });
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-claim-form]");
    if (form) { syncClaimForm(form); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-claim-form]").forEach(syncClaimForm);
    // A refused form comes back with its message beside it: bring the eye (and the keyboard
    // focus) there, not to the top of the page.
    var refusal = document.querySelector("[data-refusal]");
    if (refusal) { refusal.scrollIntoView({block: "center"}); refusal.focus({preventScroll: true}); }
  });
})();
