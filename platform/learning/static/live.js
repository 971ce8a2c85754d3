// Live progress: pages that show enrolments mark them with data-enrolment="<id>" and their
// figures with data-live="percent" (text), data-live="bar" (a <progress>) or data-live="status";
// a lesson's row carries data-lesson="<id>" and its cell data-live="done". The server streams
// each change the viewer may see; the page follows without a reload.
(function () {
  if (!window.EventSource || !document.querySelector("[data-enrolment]")) return;
  var source = new EventSource("/portal/learning/live");
  // Marks the page once it follows the stream (tests and styles may wait for it).
  source.addEventListener("open", function () { document.documentElement.setAttribute("data-live-state", "open"); });
  source.addEventListener("progress", function (event) {
    var change = JSON.parse(event.data);
    document.querySelectorAll('[data-enrolment="' + change.enrolment + '"]').forEach(function (scope) {
      scope.querySelectorAll('[data-live="percent"]').forEach(function (el) { el.textContent = change.percent + "%"; });
      scope.querySelectorAll('[data-live="bar"]').forEach(function (el) { el.value = change.percent; });
      scope.querySelectorAll('[data-live="status"]').forEach(function (el) { el.textContent = change.status.replace("_", " "); });
      if (change.lesson_done) {
        scope.querySelectorAll('[data-lesson="' + change.lesson + '"] [data-live="done"]').forEach(function (el) { el.textContent = "done"; });
      }
    });
  });
})();
