// The report's one script, inline and small: it loads nothing and sends nothing (the page's
// Content-Security-Policy allows this script by its hash and nothing else). Without it the
// page still reads: groups open and close by hand, and every card is there.
//
// What it does:
// - a jump to a card (a matrix cell, a #job-… link) opens the groups the card is in, and
//   lands below the sticky bar (its height is measured into --nav-h for scroll-margin-top);
// - the filters hide the cards of other classes, builds, guests and scenarios, and each
//   group says how many of its cards are shown; groups with none are hidden;
// - "open all" / "close all"; and a copy button beside each command.

export const REPORT_SCRIPT = `(function () {
  var d = document;
  function navHeight() {
    var nav = d.querySelector('nav.toc');
    if (nav) d.documentElement.style.setProperty('--nav-h', nav.getBoundingClientRect().height + 'px');
  }
  function reveal() {
    var id;
    try { id = decodeURIComponent(location.hash.slice(1)); } catch (e) { return; }
    var el = id && d.getElementById(id);
    if (!el) return;
    for (var p = el.parentElement; p; p = p.parentElement) if (p.tagName === 'DETAILS') p.open = true;
    if (el.tagName === 'DETAILS') el.open = true;
    el.scrollIntoView();
  }
  function filter() {
    var sel = {};
    d.querySelectorAll('select[data-filter]').forEach(function (s) { if (s.value) sel[s.getAttribute('data-filter')] = s.value; });
    var shown = 0, total = 0;
    d.querySelectorAll('#divergences [data-job]').forEach(function (c) {
      var ok = true;
      for (var k in sel) if (c.getAttribute('data-' + k) !== sel[k]) ok = false;
      c.hidden = !ok;
      total++;
      if (ok) shown++;
    });
    d.querySelectorAll('#divergences details[data-count]').forEach(function (g) {
      var n = g.querySelectorAll('[data-job]:not([hidden])').length;
      g.hidden = n === 0;
      var out = g.querySelector(':scope > summary .shown');
      if (out) out.textContent = n === Number(g.getAttribute('data-count')) ? '' : ' (' + n + ' shown)';
    });
    var all = d.getElementById('filter-count');
    if (all) all.textContent = shown === total ? 'all ' + total + ' shown' : shown + ' of ' + total + ' shown';
  }
  d.addEventListener('change', function (e) { if (e.target.matches('select[data-filter]')) filter(); });
  d.addEventListener('click', function (e) {
    var t = e.target;
    if (t.matches('button[data-open]')) {
      var open = t.getAttribute('data-open') === 'all';
      d.querySelectorAll('#divergences details.group, #divergences details.bgroup').forEach(function (g) { g.open = open; });
    } else if (t.matches('button[data-copy]')) {
      var pre = d.getElementById(t.getAttribute('data-copy'));
      var text = pre ? pre.textContent : '';
      // The command is selected at once (Ctrl+C copies it wherever the clipboard API is
      // refused or waits for a permission), then copied where the API allows.
      var r = d.createRange(); r.selectNodeContents(pre); var s = getSelection(); s.removeAllRanges(); s.addRange(r);
      t.textContent = 'selected';
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(function () { t.textContent = 'copied'; }, function () {});
    }
  });
  addEventListener('hashchange', reveal);
  addEventListener('resize', navHeight);
  navHeight();
  filter();
  reveal();
})();`;

