// mlpipe ui: the only script. While a run is in progress, re-fetch the page's live part
// (the element #live, from its data-src) every second and swap it in, so states change without a
// reload; it stops once the server says the run is no longer live. DAG boxes link to their rows.
(function () {
  "use strict";
  var PERIOD_MS = 1000;

  function linkDag(root) {
    // a run's DAG: a box scrolls to its node's row; a lineage graph: a box opens that artifact's lineage
    root.querySelectorAll("figure.lineage-graph g.node").forEach(function (g) {
      var link = document.querySelector('a[data-box="' + g.getAttribute("data-node") + '"]');
      if (link) g.addEventListener("click", function () { window.location.href = link.href; });
    });
    root.querySelectorAll("figure.dag:not(.lineage-graph) g.node").forEach(function (g) {
      var row = document.getElementById("node-" + g.getAttribute("data-node"));
      if (!row) return;
      g.addEventListener("click", function () {
        row.scrollIntoView({ block: "center" });
        var link = row.querySelector("a");
        if (link) link.focus();
      });
    });
  }

  function poll() {
    var live = document.getElementById("live");
    if (!live || live.getAttribute("data-live") !== "on") return;
    fetch(live.getAttribute("data-src"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#live");
        if (fresh && fresh.outerHTML !== live.outerHTML) {
          live.replaceWith(fresh);
          linkDag(document);
        }
      })
      .catch(function () { /* the server may be restarting: try again next period */ })
      .then(function () { setTimeout(poll, PERIOD_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    linkDag(document);
    setTimeout(poll, PERIOD_MS);
  });
})();
