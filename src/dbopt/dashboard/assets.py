"""The dashboard's stylesheet and script, served from the dashboard itself (no CDN, no inline).

The stylesheet is the HTML report's (:mod:`dbopt.report.html_assets`) plus
the navigation and controls of a live page; the script is the report's
table sorting plus the page's actions (EXPLAIN, advisor run, polling),
which send the CSRF value of the page's ``<meta name="dbopt-csrf">``.
"""

from __future__ import annotations

from dbopt.report.html_assets import CSS as REPORT_CSS
from dbopt.report.html_assets import SCRIPT as REPORT_SCRIPT

__all__ = ["CSS", "SCRIPT"]

CSS = (
    REPORT_CSS
    + """
body { max-width: 1280px; }
nav.top { position: sticky; top: 0; background: #fff; z-index: 2; }
nav.top a { padding: 4px 8px; border-radius: 6px; }
nav.top a[aria-current="page"] { background: #e6eefb; font-weight: 600; }
.brand { font-weight: 700; margin-right: 10px; }
button, .button { font: inherit; padding: 4px 12px; border: 1px solid #2456b3;
  background: #2f62c9; color: #fff; border-radius: 6px; cursor: pointer; }
button[disabled] { opacity: .6; cursor: progress; }
button.small { padding: 1px 8px; font-size: 12px; }
.pager { display: flex; gap: 12px; margin: 8px 0; }
.ok { color: #2f9e5b; } .bad { color: #c8553d; font-weight: 600; }
.status-ok { background: #2f9e5b; } .status-warn { background: #d99a1e; }
.status-critical { background: #c8553d; } .status-skipped, .status-unknown { background: #7a8694; }
.bar { height: 10px; background: #e6eefb; border-radius: 5px; min-width: 80px; }
.bar > span { display: block; height: 10px; background: #3b6fd4; border-radius: 5px; }
.w0 { width: 0 } .w1 { width: 10% } .w2 { width: 20% } .w3 { width: 30% } .w4 { width: 40% }
.w5 { width: 50% } .w6 { width: 60% } .w7 { width: 70% } .w8 { width: 80% } .w9 { width: 90% }
.w10 { width: 100% }
.finding { border-left: 3px solid #d99a1e; padding: 4px 10px; margin: 8px 0; }
.finding.n_plus_one { border-color: #c8553d; }
.progress { color: var(--muted); margin-left: 10px; }
.error { color: #c8553d; }
"""
)

SCRIPT = (
    REPORT_SCRIPT
    + """
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="dbopt-csrf"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-Dbopt-Csrf": csrf, "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, error: "HTTP " + r.status }; });
    });
  }
  document.querySelectorAll("button[data-explain]").forEach(function (button) {
    button.addEventListener("click", function () {
      var out = document.getElementById(button.getAttribute("data-target"));
      button.disabled = true;
      out.textContent = "explaining...";
      post(button.getAttribute("data-explain"), {
        request: button.getAttribute("data-request"), index: button.getAttribute("data-index")
      }).then(function (data) {
        button.disabled = false;
        out.textContent = data.ok ? data.plan : (data.error || "not explained");
        out.setAttribute("data-done", data.ok ? "plan" : "error");
      });
    });
  });
  var advise = document.querySelector("button[data-advise]");
  if (advise) {
    var progress = document.getElementById("advisor-progress");
    var poll = function () {
      fetch(advise.getAttribute("data-status"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (job) {
          progress.textContent = job.state + (job.elapsed_s !== null ?
            " (" + job.elapsed_s.toFixed(1) + " s)" : "") + (job.error ? ": " + job.error : "");
          if (job.state === "running") { setTimeout(poll, 500); }
          else if (job.state === "done" || job.state === "failed") { window.location.reload(); }
        });
    };
    advise.addEventListener("click", function () {
      advise.disabled = true;
      progress.textContent = "starting...";
      post(advise.getAttribute("data-advise"), {}).then(function (data) {
        if (!data.ok) { progress.textContent = data.error; advise.disabled = false; return; }
        poll();
      });
    });
    if (advise.getAttribute("data-running") === "1") { advise.disabled = true; poll(); }
  }
  var live = document.querySelector("[data-poll]");
  if (live) {
    var refresh = function () {
      fetch(live.getAttribute("data-poll"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          live.textContent = s.requests.toLocaleString() + " requests recorded";
        })
        .catch(function () {});
    };
    setInterval(refresh, 5000);
  }
  document.documentElement.setAttribute("data-dashboard-ready", "1");
})();
"""
)
