// Typesets the math of Markdown pages (pymdownx.arithmatex, generic mode: \( \) and \[ \]) with
// the MathJax 2 copy that hooks/mathjax.py puts into the site, so no page asks another host for
// it. Notebook pages (mkdocs-jupyter) load the same copy themselves; two MathJax on one page break
// each other, so this loader steps aside when the page already has one. The URL's query must stay
// the same as hooks/mathjax.py's MATHJAX_QUERY.
(function () {
  var already = Array.prototype.some.call(document.scripts, function (s) {
    return /MathJax\.js/.test(s.src);
  });
  if (already || window.MathJax || !document.querySelector(".arithmatex")) return;
  var me = document.currentScript.src;
  var root = me.slice(0, me.lastIndexOf("javascripts/mathjax-loader.js"));
  window.MathJax = {
    tex2jax: {
      inlineMath: [["\\(", "\\)"]],
      displayMath: [["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
      processClass: "arithmatex",  // only arithmatex's spans and divs,
      ignoreClass: ".*|"           // never code blocks or prose
    },
    messageStyle: "none"
  };
  var s = document.createElement("script");
  s.src = root + "assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,offline";
  document.head.appendChild(s);
})();
