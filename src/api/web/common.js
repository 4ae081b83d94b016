// Shared by the agent desktop and the supervisor dashboard: the bearer
// token (kept for this tab only), API calls with clear errors, and the
// event stream read with fetch (EventSource cannot send a bearer token).
"use strict";

const outdial = {
  token() {
    return sessionStorage.getItem("outdial.token") || "";
  },

  async api(method, path, body) {
    const headers = { Authorization: "Bearer " + outdial.token() };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new Error("the dialer does not answer (" + error.message + ")");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const why = data && data.error ? data.error : text || response.statusText;
      const error = new Error(why);
      error.status = response.status;
      // A definition's problems, each with its key (400 from /api/campaigns).
      error.problems = data && Array.isArray(data.problems) ? data.problems : [];
      throw error;
    }
    return data;
  },

  // Resolves once the browser has gathered its ICE candidates (they go in
  // the offer: no trickle), or after two seconds with what it has.
  candidatesGathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, 2000);
    });
  },

  // Calls onEvent with every event of the stream at `path`, reconnecting
  // after errors; onState(true/false) says whether the stream is up.
  async listen(path, onEvent, onState) {
    for (;;) {
      try {
        const response = await fetch(path, {
          headers: { Authorization: "Bearer " + outdial.token(), Accept: "text/event-stream" },
        });
        if (!response.ok) {
          throw new Error("events: HTTP " + response.status);
        }
        onState(true);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const chunk = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            for (const line of chunk.split("\n")) {
              if (line.startsWith("data:")) {
                try {
                  onEvent(JSON.parse(line.slice(5)));
                } catch (_) {
                  // A line we cannot read is skipped, not fatal.
                }
              }
            }
          }
        }
      } catch (_) {
        // Reconnect below.
      }
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  },

  // Replaces `container`'s children with `nodes` only when what they show
  // changed: a button redrawn under the mouse loses the click. Handlers
  // must depend only on what the markup shows (put ids in data- attributes).
  replaceIfChanged(container, nodes) {
    const signature = nodes.map((n) => n.outerHTML).join("");
    if (container.dataset.signature === signature) return;
    container.dataset.signature = signature;
    container.replaceChildren(...nodes);
  },

  // Brings the table body `tbody` to `rows` (each keyed by its `keyAttr`
  // attribute) while keeping the rows already there: their cells' text and
  // class are updated and their buttons only enabled or disabled, so a
  // button under the mouse stays the same element across refreshes (the
  // figures change every refresh). A row whose cells or buttons differ in
  // shape is replaced.
  patchRows(tbody, rows, keyAttr) {
    const buttons = (row) => Array.from(row.querySelectorAll("button"));
    const shape = (row) => row.cells.length + ":" + buttons(row).map((b) => b.textContent).join("|");
    const existing = new Map(Array.from(tbody.rows).map((r) => [r.getAttribute(keyAttr), r]));
    const kept = rows.map((row) => {
      const old = existing.get(row.getAttribute(keyAttr));
      if (!old || shape(old) !== shape(row)) return row;
      Array.from(row.cells).forEach((cell, i) => {
        const target = old.cells[i];
        const fresh = buttons(cell);
        if (fresh.length > 0) {
          const current = buttons(target);
          fresh.forEach((b, j) => {
            current[j].disabled = b.disabled;
          });
          return;
        }
        if (target.textContent !== cell.textContent) target.textContent = cell.textContent;
        if (target.className !== cell.className) target.className = cell.className;
      });
      return old;
    });
    const same = kept.length === tbody.rows.length && kept.every((r, i) => tbody.rows[i] === r);
    if (!same) tbody.replaceChildren(...kept);
  },

  el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
  },

  percent(fraction) {
    return (100 * (fraction || 0)).toFixed(2) + " %";
  },
};
