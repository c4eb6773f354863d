// Keyboard users must be able to scroll what overflows: a wide table, a long code line, a
// notebook output. A region that scrolls becomes focusable (tabindex=0), so arrow keys
// scroll it once it has focus. Runs on every page load and again when the window resizes.
(function () {
  "use strict";
  // Everything in the page's content: code blocks, tables, notebook cells and outputs.
  var SELECTOR = ".md-content *";

  function scrolls(element) {
    var style = window.getComputedStyle(element);
    var x = /(auto|scroll)/.test(style.overflowX) && element.scrollWidth > element.clientWidth;
    var y = /(auto|scroll)/.test(style.overflowY) && element.scrollHeight > element.clientHeight;
    return x || y;
  }

  function update() {
    document.querySelectorAll(SELECTOR).forEach(function (element) {
      if (element.hasAttribute("tabindex") && !element.dataset.scrollFocus) return;
      if (scrolls(element)) {
        element.setAttribute("tabindex", "0");
        element.dataset.scrollFocus = "1";
      } else if (element.dataset.scrollFocus) {
        element.removeAttribute("tabindex");
        delete element.dataset.scrollFocus;
      }
    });
  }

  var timer = null;
  function later() {
    clearTimeout(timer);
    timer = setTimeout(update, 100);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", update);
  } else {
    update();
  }
  window.addEventListener("load", update);
  window.addEventListener("resize", later);
})();
