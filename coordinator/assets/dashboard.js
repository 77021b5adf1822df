// weft's dashboard: keeps each live part of the page up to date from its Server-Sent
// Events stream. The server renders (and escapes) the HTML; this only puts it in place.
//
// When a stream is lost (the coordinator stopped, or a standby took over as the leader),
// the page says so and asks for itself again every few seconds; once its address answers,
// it loads again: a restarted coordinator serves it, and a standby sends it on to the
// leader's dashboard.
"use strict";
var looking = null;
function lookForTheLeader() {
  if (looking !== null) {
    return;
  }
  var notice = document.createElement("p");
  notice.className = "lost";
  notice.textContent = "Lost the coordinator: looking for the leader…";
  document.body.insertBefore(notice, document.body.firstChild);
  looking = window.setInterval(function () {
    window.fetch(window.location.href, { cache: "no-store", redirect: "manual", credentials: "same-origin" })
      .then(function (answer) {
        // A coordinator's answer (a page, a redirect, a standby's 503 page that looks
        // again by itself), not a proxy's 502 or 504 for one that is still gone.
        if (answer.ok || answer.type === "opaqueredirect" || answer.status === 503) {
          window.location.reload();
        }
      }, function () { /* not answering yet */ });
  }, 3000);
}
document.querySelectorAll("[data-live]").forEach(function (part) {
  var source = new EventSource(part.getAttribute("data-live"));
  var ended = false;
  source.addEventListener("update", function (event) {
    part.innerHTML = event.data;
  });
  source.addEventListener("end", function () {
    ended = true;
    source.close();
  });
  source.addEventListener("error", function () {
    if (!ended && source.readyState !== EventSource.OPEN) {
      source.close();
      lookForTheLeader();
    }
  });
});
document.addEventListener("submit", function (event) {
  if (event.target.id === "cancel-form" && !window.confirm("Cancel this job? Its running tasks are stopped and its output removed.")) {
    event.preventDefault();
  }
});
