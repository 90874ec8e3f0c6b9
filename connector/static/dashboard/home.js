// The dashboard's 30-day chart. A file of its own, not an inline script: the admin's
// Content-Security-Policy allows scripts from this site only (script-src 'self').
(function () {
  var canvas = document.getElementById("mlc-chart");
  var source = document.getElementById("mlc-chart-data");
  if (!canvas || !source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(JSON.parse(source.textContent));
  new Chart(canvas, {
    type: "bar",
    data: {labels: data.labels, datasets: [
      {label: "Posted", data: data.posted, backgroundColor: "#2e8b57"},
      {label: "Problems", data: data.problems, backgroundColor: "#c0392b"}]},
    options: {responsive: true, maintainAspectRatio: false, animation: false,
              scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}}
  });
  canvas.dataset.rendered = "1";
})();
