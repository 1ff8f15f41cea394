// normandy ui: a run's page follows the run while it goes on (task states by server-sent
// events, the timeline redrawn, open logs followed); a task's details load when it opens;
// the diff hides unchanged tasks. Nothing is fetched but from this server.
(function () {
  "use strict";

  function get(url, then, failed) {
    var request = new XMLHttpRequest();
    request.open("GET", url);
    request.onload = function () {
      if (request.status === 200) then(request.responseText);
      else if (failed) failed("the server answered " + request.status);
    };
    request.onerror = function () { if (failed) failed("the server could not be reached"); };
    request.send();
  }

  // a task's details, loaded when its row opens
  function load(row) {
    var body = row.querySelector(".task-body[data-src]");
    if (!body || body.getAttribute("data-loaded")) return;
    body.setAttribute("data-loaded", "1");
    get(body.getAttribute("data-src") + "&fragment=1", function (html) {
      var box = document.createElement("div");
      box.innerHTML = html;
      var loaded = box.querySelector(".task-body");
      if (loaded) body.innerHTML = loaded.innerHTML;
      follow(row);
    });
  }
  document.querySelectorAll(".task-row").forEach(function (row) {
    row.addEventListener("toggle", function () { if (row.open) load(row); });
    if (row.open) load(row);
  });

  // an open task's log: read, then followed while the run goes on
  function follow(row) {
    var pre = row.querySelector("pre[data-log]");
    if (!pre) return;
    var offset = -1;
    pre.textContent = "";
    function more() {
      get(pre.getAttribute("data-log") + "&offset=" + offset, function (text) {
        var data = JSON.parse(text);
        if (data.text) {
          pre.textContent += data.text;
          pre.scrollTop = pre.scrollHeight;
        } else if (offset < 0 && !data.text) {
          pre.textContent = data.note || "(empty)";
        }
        offset = data.offset;
        if (live() && row.open) setTimeout(more, 1000);
      });
    }
    more();
  }

  // a big run's timeline and flows picture: drawn by requests of their own, after the page
  function loadPart(box, then) {
    get(box.getAttribute("data-part"), function (html) {
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var part = holder.firstElementChild;
      if (!part) return;
      part.setAttribute("data-part", box.getAttribute("data-part"));
      box.replaceWith(part);
      if (window.normandyZoomable) window.normandyZoomable(part);
      if (then) then();
    }, function (why) {  // said where it would be, not left "drawing…"
      box.innerHTML = '<p class="muted"></p>';
      box.firstChild.textContent = "Could not draw it (" + why + "): reload the page.";
      if (then) then();
    });
  }
  var parts = document.querySelectorAll("[data-part]");
  var waiting = parts.length;
  function partLoaded() {
    waiting -= 1;
    if (waiting === 0) document.documentElement.setAttribute("data-parts", "1");
  }
  if (!waiting) document.documentElement.setAttribute("data-parts", "1");
  parts.forEach(function (box) { loadPart(box, partLoaded); });

  var liveBox = document.getElementById("live");
  function live() { return liveBox && liveBox.getAttribute("data-live") === "1"; }
  if (live() && window.EventSource) {
    var run = liveBox.getAttribute("data-run");
    var events = new EventSource("/runs/" + encodeURIComponent(run) + "/events");
    var redrawn = 0;
    events.onmessage = function (event) {
      var data = JSON.parse(event.data);
      Object.keys(data.tasks).forEach(function (key) {
        var state = data.tasks[key];
        var row = document.querySelector('.task-row[data-key="' + CSS.escape(key) + '"]');
        if (!row) return;
        row.setAttribute("data-status", state[0]);
        var dot = row.querySelector("summary .dot");
        var badge = row.querySelector("summary .badge");
        if (dot) dot.className = "dot s-" + state[0].replace(/ /g, "-");
        if (badge) { badge.className = "badge s-" + state[0].replace(/ /g, "-"); badge.textContent = state[1]; }
      });
      var head = document.querySelector(".run-head .title .badge");
      if (head) { head.textContent = data.status; }
      if (Date.now() - redrawn > 2000) {  // the totals and the timeline, redrawn
        redrawn = Date.now();
        get(location.pathname, function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          ["totals", "timeline-box", "problems"].forEach(function (id) {
            var now = document.getElementById(id), then = page.getElementById(id);
            if (!now || !then) return;
            if (now.getAttribute("data-part")) loadPart(now);  // drawn apart: again
            else now.replaceWith(then);
          });
        });
      }
    };
    events.addEventListener("end", function () {
      events.close();
      liveBox.setAttribute("data-live", "0");
      location.reload();  // the run's end: its whole page, as it ended
    });
  }

  // compare: exactly two runs ticked
  var compare = document.getElementById("compare");
  if (compare) {
    compare.addEventListener("submit", function (event) {
      var ticked = compare.querySelectorAll('input[name="run"]:checked');
      if (ticked.length !== 2) { event.preventDefault(); alert("Tick two runs to compare them."); return; }
    });
  }

  var changedOnly = document.getElementById("changed-only");
  var diff = document.getElementById("diff");
  if (changedOnly && diff) {
    var apply = function () { diff.classList.toggle("changed-only", changedOnly.checked); };
    changedOnly.addEventListener("change", apply);
    apply();
  }

  document.documentElement.setAttribute("data-ui-ready", "1");
})();
