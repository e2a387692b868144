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

// Times: <time datetime> elements show relative words ("5 minutes ago"); the exact time, in the
// viewer's own time zone, is their tooltip.
(function () {
  "use strict";
  var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  function words(seconds) {
    var future = seconds < 0, abs = Math.abs(seconds);
    for (var i = 0; i < units.length; i++) {
      if (abs >= units[i][1]) {
        var n = Math.floor(abs / units[i][1]);
        var text = n + " " + units[i][0] + (n === 1 ? "" : "s");
        return future ? "in " + text : text + " ago";
      }
    }
    return "just now";
  }
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  document.querySelectorAll("time[datetime]").forEach(function (node) {
    var moment = new Date(node.getAttribute("datetime"));
    if (isNaN(moment.getTime())) { return; }
    node.textContent = words((Date.now() - moment.getTime()) / 1000);
    node.title = moment.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "long"}) + (zone ? " (" + zone + ")" : "");
  });
})();

// After a failed save the page comes back with the error at its field: bring that field into view.
(function () {
  "use strict";
  var invalid = document.querySelector("[aria-invalid=true]");
  if (invalid) { invalid.focus(); }
})();
