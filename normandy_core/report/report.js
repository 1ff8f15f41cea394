// Normandy report: small conveniences over a page that reads fine without them.
// A click on a timeline bar, a task of the flows picture or a listed task opens that
// task's details; the task list can be filtered. Nothing is fetched.
(function () {
  "use strict";

  function show(id) {
    var row = document.getElementById(id);
    if (!row) return;
    row.open = true;
    row.classList.add("highlight");
    row.scrollIntoView({ block: "center" });
    setTimeout(function () { row.classList.remove("highlight"); }, 1600);
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-target]");
    if (!target) return;
    event.preventDefault();
    show(target.getAttribute("data-target"));
    if (history.replaceState) history.replaceState(null, "", "#" + target.getAttribute("data-target"));
  });

  // hovering a task's row lights up its bar on the timeline (looked up as it is hovered:
  // normandy ui draws a big run's timeline after its page)
  function bar(row) {
    return document.querySelector('.timeline .bar[data-target="' + row.id + '"]');
  }
  document.querySelectorAll(".task-row").forEach(function (row) {
    row.addEventListener("mouseenter", function () { var b = bar(row); if (b) b.classList.add("highlight"); });
    row.addEventListener("mouseleave", function () { var b = bar(row); if (b) b.classList.remove("highlight"); });
  });

  var filter = document.getElementById("filter");
  var problemsOnly = document.getElementById("problems-only");
  var problems = { failed: 1, tolerated: 1, interrupted: 1 };
  function applyFilter() {
    var words = (filter && filter.value || "").toLowerCase().split(/\s+/).filter(Boolean);
    var onlyProblems = problemsOnly && problemsOnly.checked;
    document.querySelectorAll(".task-row").forEach(function (row) {
      var text = (row.getAttribute("data-key") + " " + row.getAttribute("data-status")).toLowerCase();
      var visible = words.every(function (w) { return text.indexOf(w) >= 0; }) &&
        (!onlyProblems || problems[row.getAttribute("data-status")]);
      row.classList.toggle("hidden", !visible);
    });
  }
  if (filter) filter.addEventListener("input", applyFilter);
  if (problemsOnly) problemsOnly.addEventListener("change", applyFilter);

  // a flows picture wider than the page is scaled down to fit; a button shows it at its
  // actual size (scrolling), and back
  function zoomable(root) {
    root.querySelectorAll(".graph-scroll").forEach(function (box) {
      var svg = box.querySelector("svg.graph");
      var button = box.querySelector("[data-zoom]");
      if (!svg || !button) return;
      var wide = Number(svg.getAttribute("width")) > box.clientWidth;
      button.hidden = !wide;
      button.addEventListener("click", function () {
        var fit = box.classList.toggle("fit");
        button.textContent = fit ? "actual size" : "fit to page";
      });
    });
  }
  zoomable(document);
  window.normandyZoomable = zoomable;  // for a flows picture drawn after the page

  if (location.hash && location.hash.indexOf("#task-") === 0) show(location.hash.slice(1));

  // for tests and tools: the script ran to its end, and what the timeline holds
  var root = document.documentElement;
  root.setAttribute("data-ready", "1");
  root.setAttribute("data-bars", String(document.querySelectorAll(".timeline .bar").length));
})();
