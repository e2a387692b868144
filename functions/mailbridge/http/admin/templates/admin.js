// Copy buttons: <button data-copy="ID"> copies the value of the input with that id.
// Served from the admin function so the page's CSP can allow scripts from 'self' only.
(function () {
  "use strict";
  function announce(button, text) {
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    if (status) { status.textContent = text; }
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var input = document.getElementById(button.getAttribute("data-copy"));
      if (!input) { return; }
      input.focus();
      input.select();
      var done = function () { announce(button, "Copied to the clipboard."); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          announce(button, "Press Ctrl+C (or Cmd+C) to copy the selected text.");
        });
      } else {
        try { document.execCommand("copy"); done(); } catch (e) {
          announce(button, "Press Ctrl+C (or Cmd+C) to copy the selected text.");
        }
      }
    });
  });
})();
