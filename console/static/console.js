// The Sent page refreshes its statuses every 15 seconds while it is open
// and visible: it fetches the same page (same origin, with the session
// cookie) and copies each row's status into the page as it is, leaving
// everything else (focus, scroll, the filter being typed) alone. Without
// script the page works as well, and shows the statuses of its loading.
(function () {
  "use strict";
  var table = document.querySelector("table[data-refresh]");
  if (!table || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = 1000 * (parseInt(table.getAttribute("data-refresh"), 10) || 15);
  function refresh() {
    if (document.visibilityState === "hidden") {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (!html) {
          return;
        }
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("[data-row]").forEach(function (fresh) {
          var key = fresh.getAttribute("data-row");
          var cell = document.querySelector('[data-row="' + CSS.escape(key) + '"]');
          if (cell && cell.textContent !== fresh.textContent) {
            cell.textContent = fresh.textContent;
            cell.className = fresh.className;
          }
        });
      })
      .catch(function () {});
  }
  window.setInterval(refresh, every);
})();
