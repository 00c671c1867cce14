// backorder dashboard: charts from JSON embedded in the page (no inline script: CSP script-src 'self').
(function () {
  "use strict";
  function drawSkuCharts() {
    var data = document.getElementById("chart-data");
    if (!data || typeof Chart === "undefined") { return; }
    var d = JSON.parse(data.textContent);
    var p = document.getElementById("projection-chart");
    if (p) {
      new Chart(p, {
        type: "bar",
        data: {
          labels: d.projection.map(function (r) { return r.week; }),
          datasets: [
            { type: "line", label: "Projected free stock", data: d.projection.map(function (r) { return r.projected; }), borderColor: "#0b5cad", backgroundColor: "#0b5cad", tension: 0.1 },
            { label: "Free on hand now", data: d.projection.map(function (r) { return r.on_hand; }), backgroundColor: "#7fa7cf" },
            { label: "Incoming (POs by expected date)", data: d.projection.map(function (r) { return r.incoming; }), backgroundColor: "#3c9a5f" },
            { label: "Waiting demand (now)", data: d.projection.map(function (r) { return -r.backorder_demand; }), backgroundColor: "#c0504d" }
          ]
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { title: { display: true, text: "units" } } } }
      });
    }
    var q = document.getElementById("demand-chart");
    if (q) {
      new Chart(q, {
        type: "bar",
        data: { labels: d.demand.map(function (r) { return r.day; }), datasets: [{ label: "Units ordered per day", data: d.demand.map(function (r) { return r.units; }), backgroundColor: "#6b7a8f" }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { x: { ticks: { maxTicksLimit: 10 } } } }
      });
    }
  }
  function selectAll() {
    document.addEventListener("change", function (e) {
      var box = e.target;
      if (box && box.id === "select-all") {
        document.querySelectorAll("input[name=sel]").forEach(function (c) { c.checked = box.checked; });
      }
    });
  }
  // A button with data-confirm asks first (cancelling lines emails customers; a sent PO cannot be
  // taken back). Without JavaScript the action runs as before.
  function confirmations() {
    document.addEventListener("click", function (e) {
      var button = e.target.closest ? e.target.closest("button[data-confirm]") : null;
      if (button && !window.confirm(button.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  }
  // Sending a draft PO sends its saved quantities: typed but unsaved ones would be lost silently.
  function unsavedQuantities() {
    var form = document.getElementById("po-lines");
    if (!form) { return; }
    var dirty = false;
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("submit", function () { dirty = false; });
    document.addEventListener("click", function (e) {
      var button = e.target.closest ? e.target.closest("button[data-needs-saved]") : null;
      if (button && dirty) {
        window.alert("Save the quantities you changed first: the purchase order is sent as saved.");
        e.preventDefault();
        e.stopImmediatePropagation();
      }
    }, true);
  }
  document.addEventListener("DOMContentLoaded", function () {
    drawSkuCharts(); selectAll(); confirmations(); unsavedQuantities();
  });
})();
