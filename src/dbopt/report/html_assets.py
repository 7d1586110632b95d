"""The stylesheet and the one small script of the HTML report (inline, no network)."""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root { --fg: #1d2430; --muted: #5f6b7a; --line: #dde3ea; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); margin: 0 auto; max-width: 1100px; padding: 24px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 2px 0; color: var(--muted); }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0; }
.tile { background: var(--bg); border: 1px solid var(--line); border-radius: 8px;
        padding: 10px 14px; min-width: 140px; }
.tile .v { font-size: 20px; font-weight: 600; }
.tile .k { color: var(--muted); font-size: 12px; }
nav { display: flex; flex-wrap: wrap; gap: 6px 14px; padding: 8px 0 16px;
      border-bottom: 1px solid var(--line); }
nav a { color: #2456b3; text-decoration: none; }
section { padding: 8px 0 18px; border-bottom: 1px solid var(--line); }
h2 { font-size: 19px; margin: 18px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--bg); cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--bg); padding: 8px; border-radius: 6px; overflow-x: auto;
      margin: 4px 0; white-space: pre-wrap; }
td pre { margin: 0; padding: 4px 6px; overflow-wrap: anywhere; }
td { overflow-wrap: break-word; }
td code { overflow-wrap: anywhere; }
.chart { width: 100%; height: auto; display: block; margin: 6px 0 10px; }
.chart .lbl { font: 12px ui-monospace, Menlo, Consolas, monospace; fill: var(--fg); }
.chart .val, .chart .tick { font: 11px system-ui, sans-serif; fill: var(--muted); }
.note { color: var(--muted); font-style: italic; margin: 4px 0; }
.empty { color: var(--muted); }
.sev { white-space: nowrap; border-radius: 4px; padding: 1px 6px; font-size: 12px;
       color: #fff; background: #7a8694; }
.sev-error, .sev-critical { background: #c8553d; }
.sev-warning, .sev-warn { background: #d99a1e; }
.sev-info { background: #3b6fd4; }
.nowrap { white-space: nowrap; }
.slow { border-left: 3px solid #c8553d; padding-left: 10px; margin: 10px 0; }
details summary { cursor: pointer; color: #2456b3; }
"""

SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var text = cell.textContent.trim().replace(/,/g, "");
    var n = parseFloat(text);
    return isNaN(n) || !/^-?[0-9.]+/.test(text) ? text.toLowerCase() : n;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, index) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[index]), y = key(b.cells[index]);
          var r = x < y ? -1 : x > y ? 1 : 0;
          return asc ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  document.documentElement.setAttribute("data-report-ready", "1");
})();
"""
