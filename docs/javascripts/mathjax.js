// MathJax 3 (its tex-svg component, shipped by the sphinx-mathjax-offline wheel and copied into
// site/assets/mathjax by docs/hooks.py): typesets the \( ... \) and \[ ... \] that pymdownx.arithmatex
// writes, as SVG drawn from the script itself (no web fonts: it works from file://, offline).
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
  svg: {fontCache: "global"}
};
