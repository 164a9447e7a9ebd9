// Swaps in each section the server pushes; the server renders them all.
(() => {
  const live = document.getElementById("live");
  const source = new EventSource("events" + location.search);
  source.addEventListener("view", (event) => {
    const sections = JSON.parse(event.data);
    for (const [id, html] of Object.entries(sections)) {
      const element = document.getElementById(id);
      if (element) element.innerHTML = html;
    }
    live.textContent = "live";
    live.className = "live";
    document.body.dataset.updated = String(Date.now());
  });
  source.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.className = "down";
  });
})();
