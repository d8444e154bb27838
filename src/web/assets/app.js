// tofulab dashboard: the one script. It keeps the first page of the run list current
// (new runs appear without reloading) and nothing else; every page works without it.
"use strict";
(function () {
  var live = document.getElementById("live");
  var body = document.getElementById("runs-body");
  if (!live || !body) return;
  var url = live.getAttribute("data-refresh");
  var every = 5000;
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) { live.textContent = "Signed out — reload to sign in"; live.className = "live stale"; return null; }
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        if (html !== body.innerHTML) body.innerHTML = html;
        live.className = "live";
        live.textContent = "● Live — updated " + new Date().toLocaleTimeString();
        setTimeout(tick, every);
      })
      .catch(function () {
        live.className = "live stale";
        live.textContent = "○ Not updating (server unreachable); retrying";
        setTimeout(tick, every * 3);
      });
  }
  setTimeout(tick, every);
})();
