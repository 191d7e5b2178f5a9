//! The HTML report's style sheet and script, inlined into every page (no file is fetched).
//! The script sorts the groups table by a clicked header (numbers by value, text in natural
//! order, blanks last), filters it by the box above it and a box per column, opens a group's
//! details when its link is followed, and marks the page ready (`data-ready="yes"` on the
//! root element) as its last step, which the browser test waits for.

pub(super) const STYLE: &str = r#"
:root{--fg:#1d2433;--muted:#667085;--line:#d0d5dd;--head:#f2f4f7;--accent:#1f77b4}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fafbfc}
header{background:#12304f;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:21px}header p{margin:4px 0 0;opacity:.85}
main{padding:8px 24px 40px}
h2{font-size:18px;margin:24px 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:16px 0 4px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}dt{color:var(--muted)}dd{margin:0}
.hint,.muted{color:var(--muted)}
#filter{width:min(420px,100%);padding:6px 10px;margin:4px 0 8px;border:1px solid var(--line);border-radius:6px;font:inherit}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
#groups th,#groups td{padding:4px 8px;border-bottom:1px solid #eaecf0;white-space:nowrap;max-width:18em;overflow:hidden;text-overflow:ellipsis;text-align:left}
#groups thead th{background:var(--head);position:sticky;top:0}
#groups th.sort{cursor:pointer;user-select:none}
#groups th.sort:hover{color:var(--accent)}
#groups th[aria-sort=ascending]::after{content:" ▲"}#groups th[aria-sort=descending]::after{content:" ▼"}
#groups tr.filters input{width:100%;min-width:5em;font:12px system-ui,sans-serif;padding:2px 4px;border:1px solid var(--line);border-radius:4px}
#groups tbody tr:nth-child(even){background:#f9fafb}
#groups tbody tr:hover{background:#eef4fb}
#groups td.label{max-width:24em}
td.bar{background:linear-gradient(90deg,#d6e6f5 calc(var(--v)*100%),transparent 0)}
.charts{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
svg.chart{width:420px;max-width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
svg.confusion{width:300px}svg.wide{width:auto;max-width:100%;height:290px}
svg text{font-family:system-ui,sans-serif;fill:#1d2433}
svg .title{font-size:13px;font-weight:600;text-anchor:middle}
svg .tick,svg .tx,svg .ty{font-size:10px;fill:#475467}svg .tx{text-anchor:middle}svg .ty{text-anchor:end}svg .axis{font-size:11px}svg .count{font-size:22px;font-weight:600}
svg .grid{stroke:#eaecf0;fill:none}svg .frame{fill:none;stroke:#98a2b3}svg .chance{stroke:#98a2b3;stroke-dasharray:4 3}
svg .legend{fill:#fff;fill-opacity:.9;stroke:#d0d5dd}svg .paxis{stroke:#475467;stroke-width:1.5}
details.group{background:#fff;border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:6px 12px}
details.group summary{cursor:pointer;font-size:14px}
details.group:target{outline:2px solid var(--accent)}
table.jobs{font-size:12px;margin:6px 0}table.jobs th,table.jobs td{padding:2px 8px;border-bottom:1px solid #eaecf0;text-align:left}
.bad{color:#b42318;font-weight:600}.warn{color:#b54708}
code{font-size:12px}
"#;

pub(super) const SCRIPT: &str = r#"
(function () {
  var table = document.getElementById('groups');
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var all = document.getElementById('filter');
  var boxes = Array.prototype.slice.call(table.querySelectorAll('tr.filters input'));
  var shown = document.getElementById('shown');
  function apply() {
    var needle = all.value.toLowerCase().trim();
    var count = 0;
    rows.forEach(function (row) {
      var keep = !needle || row.textContent.toLowerCase().indexOf(needle) >= 0;
      boxes.forEach(function (box) {
        var v = box.value.toLowerCase().trim();
        if (keep && v && row.cells[+box.dataset.col].textContent.toLowerCase().indexOf(v) < 0) keep = false;
      });
      row.hidden = !keep;
      if (keep) count++;
    });
    shown.textContent = count;
  }
  [all].concat(boxes).forEach(function (box) {
    box.addEventListener('input', apply);
    box.addEventListener('change', apply);
  });
  var heads = Array.prototype.slice.call(table.querySelectorAll('th.sort'));
  heads.forEach(function (th) {
    th.addEventListener('click', function () {
      var col = th.cellIndex;
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var numeric = th.dataset.type === 'num';
      function key(row) {
        var cell = row.cells[col];
        return cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), c;
        if (numeric) {
          x = x === '' ? NaN : +x; y = y === '' ? NaN : +y;
          if (isNaN(x) || isNaN(y)) return isNaN(x) === isNaN(y) ? 0 : (isNaN(x) ? 1 : -1);
          c = x - y;
        } else {
          c = x.localeCompare(y, undefined, { numeric: true });
        }
        return ascending ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  function openTarget() {
    var target = document.getElementById(location.hash.slice(1));
    if (target && target.tagName === 'DETAILS') target.open = true;
  }
  window.addEventListener('hashchange', openTarget);
  openTarget();
  document.documentElement.dataset.ready = 'yes';
})();
"#;
