// weft's dashboard: keeps each live part of the page up to date from its Server-Sent
// Events stream. The server renders (and escapes) the HTML; this only puts it in place.
"use strict";
document.querySelectorAll("[data-live]").forEach(function (part) {
  var source = new EventSource(part.getAttribute("data-live"));
  source.addEventListener("update", function (event) {
    part.innerHTML = event.data;
  });
  source.addEventListener("end", function () {
    source.close();
  });
});
document.addEventListener("submit", function (event) {
  if (event.target.id === "cancel-form" && !window.confirm("Cancel this job? Its running tasks are stopped and its output removed.")) {
    event.preventDefault();
  }
});
