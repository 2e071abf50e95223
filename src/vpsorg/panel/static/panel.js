// The panel's only script: statuses that update by themselves, and one submit per form.
(() => {
  "use strict";
  const BUSY = ["provisioning", "starting", "stopping", "rebooting"];
  const FAST = 1500; // ms between polls while an action runs
  const SLOW = 15000; // otherwise, to notice changes made elsewhere

  const feed = document.querySelector("[data-status-feed]");

  function busyShown() {
    return [...document.querySelectorAll("[data-server-status]")].some((badge) =>
      BUSY.includes(badge.textContent.trim()),
    );
  }

  function show(server) {
    for (const badge of document.querySelectorAll(`[data-server-status="${server.id}"]`)) {
      if (badge.textContent.trim() !== server.status) {
        badge.textContent = server.status;
        badge.className = `status status-${server.status}`;
      }
    }
    for (const ip of document.querySelectorAll(`[data-server-ip="${server.id}"]`)) {
      ip.textContent = server.ip_address || "—";
    }
    for (const button of document.querySelectorAll(`[data-server="${server.id}"][data-enabled-when]`)) {
      button.disabled = button.dataset.enabledWhen !== server.status;
    }
  }

  async function poll() {
    try {
      const response = await fetch(feed.dataset.statusFeed, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (response.ok) {
        const body = await response.json();
        body.servers.forEach(show);
      }
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
    window.setTimeout(poll, busyShown() ? FAST : SLOW);
  }

  if (feed) {
    window.setTimeout(poll, busyShown() ? FAST : SLOW);
  }

  // A second click while the first submit is on its way does nothing (the server also
  // answers a repeated form with the first one's result).
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "yes";
    for (const button of form.querySelectorAll("button[type=submit]")) {
      button.setAttribute("aria-busy", "true");
    }
  });
})();
