// The supervisor dashboard: campaigns with their live figures and run
// controls, agents with their states; refreshed on every event and every
// two seconds.
"use strict";

// What the agent's row says beside a state with no reason: a transfer or
// a consultation under way, or the customer on hold and for how long.
function agentNote(a) {
  if (a.transferring_to) return "transferring to " + a.transferring_to;
  if (a.transferring_outside_to) return "transferring to " + a.transferring_outside_to + " (outside)";
  const c = a.consultation;
  if (c) {
    const who = c.role === "consulting" ? "consulting " + c.with : "consulted by " + c.with;
    return who + (c.conference ? " (conference)" : "");
  }
  if (a.on_hold_s !== null && a.on_hold_s !== undefined) {
    return "customer on hold " + outdial.duration(a.on_hold_s);
  }
  return "";
}

const $ = (id) => document.getElementById(id);
let refreshing = false;

function say(text) {
  $("message").textContent = text || "";
}

async function command(path) {
  try {
    await outdial.api("POST", path);
    say("");
    refresh();
  } catch (error) {
    say(error.message);
  }
}

function button(label, path, disabled) {
  // "command-start", "command-log-out": what the button does, for tests and styles.
  const action = "command-" + label.toLowerCase().replace(/ /g, "-");
  const node = outdial.el("button", { class: action, onclick: () => command(path) }, label);
  node.disabled = disabled;
  return node;
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const campaigns = await outdial.api("GET", "/api/campaigns");
    const rows = [];
    for (const c of campaigns) {
      let stats = null;
      try {
        stats = await outdial.api("GET", "/api/campaigns/" + encodeURIComponent(c.name) + "/stats");
      } catch (_) {
        stats = null; // never started in this process
      }
      const base = "/api/campaigns/" + encodeURIComponent(c.name);
      const s = stats || {};
      rows.push(
        outdial.el(
          "tr",
          { "data-campaign": c.name },
          outdial.el("td", {}, c.name),
          outdial.el("td", {}, c.mode),
          outdial.el("td", { class: "campaign-state" }, c.state),
          outdial.el("td", {}, stats ? s.dials : "–"),
          outdial.el("td", {}, stats ? s.live_answers : "–"),
          outdial.el("td", {}, stats ? s.abandoned : "–"),
          outdial.el("td", {}, stats ? outdial.percent(s.abandon_rate_us) : "–"),
          outdial.el("td", {}, stats ? outdial.percent(s.abandon_rate_uk) : "–"),
          outdial.el("td", { class: "all-nodes" }, await allNodes(c.name)),
          outdial.el("td", {}, stats ? s.lines_in_use : "–"),
          outdial.el(
            "td",
            {},
            stats
              ? String(s.answers_waiting_for_agent) +
                  (s.repeat_calls_waiting ? " · " + s.repeat_calls_waiting + " repeat" : "")
              : "–",
          ),
          outdial.el("td", {}, stats ? outdial.percent(s.occupancy) : "–"),
          outdial.el("td", { class: "muted" }, (stats && s.limit_reason) || ""),
          outdial.el("td", { class: "list-progress" }, await listProgress(c.name)),
          outdial.el(
            "td",
            {},
            outdial.el(
              "div",
              { class: "row" },
              button("Start", base + "/start", c.state === "running"),
              button("Pause", base + "/pause", c.state !== "running"),
              button("Stop", base + "/stop", c.state === "stopped"),
              outdial.el("button", { class: "export", onclick: () => download(base + "/export", c.name + "-records.csv") }, "Records CSV"),
              outdial.el("button", { class: "export", onclick: () => download(base + "/export?attempts=true", c.name + "-attempts.csv") }, "CDR CSV"),
              ...(c.source === "api"
                ? [
                    outdial.el("button", { class: "edit", onclick: () => editCampaign(c.name) }, "Edit"),
                    outdial.el("button", { class: "danger remove", onclick: () => removeCampaign(c.name) }, "Remove"),
                  ]
                : []),
            ),
          ),
        ),
      );
    }
    outdial.patchRows($("campaigns"), rows, "data-campaign");
    const names = campaigns.map((c) => c.name);
    const dncSelect = $("dnc-campaign");
    const dncNames = [""].concat(names);
    if (Array.from(dncSelect.options).map((o) => o.value).join(",") !== dncNames.join(",")) {
      const chosen = dncSelect.value;
      dncSelect.replaceChildren(
        outdial.el("option", { value: "" }, "internal (all campaigns)"),
        ...names.map((n) => outdial.el("option", { value: n }, n)),
      );
      if (dncNames.includes(chosen)) dncSelect.value = chosen;
    }
    const select = $("list-campaign");
    if (Array.from(select.options).map((o) => o.value).join(",") !== names.join(",")) {
      const chosen = select.value;
      select.replaceChildren(...names.map((n) => outdial.el("option", { value: n }, n)));
      if (names.includes(chosen)) select.value = chosen;
    }

    const agents = await outdial.api("GET", "/api/agents");
    renderAgentChoices(agents);
    const known = listening.session;
    const modeChanges = listening.modeChanges;
    const listenIns = await outdial.api("GET", "/api/listen-ins");
    if (known !== null && known === listening.session && !listenIns.some((l) => l.session === known)) {
      // The dialer ended it: the agent's phone went away (a logout, the
      // phone hanging up) or the supervisor's browser lost it.
      listening.session = null;
      stopListening("ended — " + listening.agent + "'s phone call ended, or the connection was lost");
    }
    const mine = listenIns.find((l) => l.session === listening.session);
    // Read before a mode change landed (or while one is on its way): the
    // change's own refresh shows the mode.
    if (mine && listening.changing === 0 && modeChanges === listening.modeChanges) showListenMode(mine.mode);
    const listenedIn = new Map(listenIns.map((l) => [l.agent, l.mode]));
    outdial.patchRows(
      $("agents"),
      agents.map((a) =>
        outdial.el(
          "tr",
          { "data-agent": a.id },
          outdial.el("td", {}, a.id),
          outdial.el("td", {}, a.name),
          outdial.el("td", { class: "agent-state state " + a.state }, a.state),
          outdial.el("td", {}, a.reason || agentNote(a)),
          outdial.el("td", {}, outdial.duration(a.seconds_in_state)),
          outdial.el("td", { class: "agent-customer" }, a.call ? (a.call.name || a.call.record) + " " + a.call.phone : ""),
          outdial.el(
            "td",
            { class: "agent-phone" },
            (a.phone_connected ? "connected" : "–") +
              (listenedIn.has(a.id) ? " · supervisor: " + listenedIn.get(a.id) : ""),
          ),
          outdial.el(
            "td",
            { class: "agent-campaigns", title: a.dialing_for ? "shared: counted by " + a.dialing_for + "'s pacing" : "" },
            a.campaigns.map((c) => (c === a.dialing_for ? c + " (dialing)" : c)).join(", "),
          ),
          outdial.el("td", { class: "shift-calls" }, a.shift.calls),
          outdial.el("td", {}, a.shift.average_handle_s == null ? "–" : outdial.duration(a.shift.average_handle_s)),
          outdial.el("td", {}, outdial.percent(a.shift.occupancy)),
          outdial.el(
            "td",
            {},
            button("Log out", "/api/agents/" + encodeURIComponent(a.id) + "/logout", a.state === "logged_out"),
            listenButton(a, listenedIn.has(a.id)),
          ),
        ),
      ),
      "data-agent",
    );
    renderCallbacks(await outdial.api("GET", "/api/callbacks?limit=200"));
    await refreshNodes();
  } catch (error) {
    say(error.message);
  } finally {
    refreshing = false;
  }
}

// Each campaign's list progress ("new · to retry · done"), read every 10 s.
const listCache = new Map();
async function listProgress(name) {
  const cached = listCache.get(name);
  if (cached && Date.now() - cached.at < 10000) return cached.text;
  let text = "–";
  try {
    const r = await outdial.api("GET", "/api/campaigns/" + encodeURIComponent(name) + "/records");
    const n = (state) => r.by_state[state] || 0;
    text = n("new") + " new · " + (n("retry") + n("callback")) + " to retry · " + (n("done") + n("exhausted") + n("removed")) + " done";
  } catch (_) {
    text = "–";
  }
  listCache.set(name, { at: Date.now(), text });
  return text;
}

// The campaign's abandonment on every node that dialed it (from the store;
// the columns before are this node's own), refreshed every 10 s.
const abandonmentCache = new Map();
async function allNodes(name) {
  const cached = abandonmentCache.get(name);
  if (cached && Date.now() - cached.at < 10000) return cached.text;
  let text = "–";
  try {
    const a = await outdial.api("GET", "/api/campaigns/" + encodeURIComponent(name) + "/abandonment");
    text =
      "US " + outdial.percent(a.us.rate) + " (" + a.us.abandoned + "/" + a.us.live_answers + ") · UK " +
      outdial.percent(a.uk.rate) + " · " + a.nodes.length + (a.nodes.length === 1 ? " node" : " nodes");
  } catch (_) {
    text = "–";
  }
  abandonmentCache.set(name, { at: Date.now(), text });
  return text;
}

// The form that defines a campaign, or (after Edit) changes one: the
// name of the campaign being changed, else null.
let editing = null;

// One checkbox per configured agent; rebuilt only when the agents change,
// so what is ticked stays ticked.
function renderAgentChoices(agents) {
  const box = $("define-agents");
  const ids = agents.map((a) => a.id);
  if (box.dataset.ids === ids.join(",")) return;
  const ticked = new Set(chosenAgents());
  box.dataset.ids = ids.join(",");
  box.replaceChildren(
    ...agents.map((a) => {
      const tick = outdial.el("input", { type: "checkbox", value: a.id, "data-agent-choice": a.id });
      tick.checked = ticked.has(a.id);
      return outdial.el("label", {}, tick, " " + a.id);
    }),
  );
}

function chosenAgents() {
  return Array.from($("define-agents").querySelectorAll("input:checked")).map((i) => i.value);
}

function definitionFromForm() {
  const definition = {
    mode: $("define-mode").value,
    abandon_target: Number($("define-target").value) / 100,
    lines_per_agent: Number($("define-lines").value),
    agent_reserved_at_dial: $("define-reserved-at-dial").checked,
    agent_share_weight: Number($("define-share-weight").value),
    call_hours: $("define-hours").value.trim(),
    call_days: Array.from($("define-days").querySelectorAll("input:checked")).map((i) => i.value),
    record_calls: $("define-record").checked,
    agents: chosenAgents(),
  };
  const callerId = $("define-caller-id").value.trim();
  definition.caller_id = callerId || null;
  definition.caller_ids = $("define-caller-ids").value.split(/[\s,;]+/).filter(Boolean);
  definition.local_presence = $("define-local-presence").checked;
  definition.machine_action = $("define-machine").value;
  definition.voicemail_prompt = $("define-voicemail").value.trim() || null;
  definition.abandon_prompt = $("define-abandon").value.trim() || null;
  definition.hold_music = $("define-hold").value.trim() || null;
  definition.max_attempts = Number($("define-attempts").value);
  definition.max_attempts_per_number = Number($("define-attempts-number").value);
  definition.max_attempts_per_day = optionalNumber("define-attempts-day");
  definition.retry = {
    busy_s: Math.round(60 * Number($("define-retry-busy").value)),
    no_answer_s: Math.round(60 * Number($("define-retry-no-answer").value)),
    machine_s: Math.round(60 * Number($("define-retry-machine").value)),
  };
  // Blank: as after no answer (null also clears it in an edit's merge patch).
  const abandoned = optionalNumber("define-retry-abandoned");
  definition.retry.abandoned_s = abandoned === null ? null : Math.round(60 * abandoned);
  // Ofcom's repeat-call rule; blank: off.
  definition.repeat_calls = {
    agent_after_abandoned_s: Math.round(3600 * (optionalNumber("define-repeat-abandoned") || 0)),
    agent_after_machine_s: Math.round(3600 * (optionalNumber("define-repeat-machine") || 0)),
  };
  definition.cpa = {
    sensitivity: $("define-cpa-sensitivity").value,
    machine_mode: $("define-cpa-machine-mode").value,
    max_analysis_ms: Math.round(1000 * Number($("define-cpa-max").value)),
    connect_first: $("define-cpa-connect-first").checked,
  };
  definition.preview_timeout_s = optionalNumber("define-preview-timeout");
  definition.preview_timeout_action = $("define-preview-action").value;
  definition.preview_allow_skip = $("define-preview-skip").checked;
  definition.preview_allow_remove = $("define-preview-remove").checked;
  definition.preview_variant = $("define-preview-variant").value;
  definition.wrap_up_timeout_s = optionalNumber("define-wrap-up");
  definition.disposition = dispositionsFromText($("define-dispositions").value);
  return definition;
}

function optionalNumber(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

// "CODE, label, effect" per line; the label may hold commas, the effect
// (final, retry, dnc or dead_number) may be left out for final. The server checks the
// codes and says which line's code is wrong.
function dispositionsFromText(text) {
  const effects = ["final", "retry", "dnc", "dead_number"];
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const parts = line.split(",").map((part) => part.trim());
      const code = parts.shift();
      const effect = parts.length > 1 && effects.includes(parts[parts.length - 1]) ? parts.pop() : "final";
      return { code, label: parts.join(", ") || code, effect };
    });
}

function dispositionsToText(dispositions) {
  return (dispositions || []).map((d) => d.code + ", " + d.label + ", " + d.effect).join("\n");
}

function resetForm() {
  editing = null;
  $("define-form").reset();
  $("define-name").readOnly = false;
  $("define-title").textContent = "Define a campaign";
  $("define-save").textContent = "Create";
  $("define-cancel").classList.add("hidden");
  for (const tick of $("define-agents").querySelectorAll("input")) tick.checked = false;
}

async function saveCampaign(event) {
  event.preventDefault();
  $("define-problems").replaceChildren();
  const definition = definitionFromForm();
  try {
    let saved;
    if (editing) {
      saved = await outdial.api("PATCH", "/api/campaigns/" + encodeURIComponent(editing), definition);
      say("campaign " + editing + " changed");
    } else {
      definition.name = $("define-name").value.trim();
      for (const key of Object.keys(definition)) {
        if (definition[key] === null) delete definition[key];
      }
      saved = await outdial.api("POST", "/api/campaigns", definition);
      say("campaign " + definition.name + " created: load a list, then start it");
    }
    resetForm();
    // Saved, but likely against the rules (no abandon message, hours
    // outside 08:00-21:00, a target over 3 %): shown under the form.
    for (const warning of saved.warnings || []) {
      $("define-problems").append(outdial.el("li", { class: "warning" }, "warning: " + warning));
    }
    refresh();
  } catch (error) {
    say(error.message);
    for (const p of error.problems || []) {
      $("define-problems").append(outdial.el("li", {}, (p.key ? p.key + ": " : "") + p.message));
    }
  }
}

async function editCampaign(name) {
  try {
    const d = await outdial.api("GET", "/api/campaigns/" + encodeURIComponent(name) + "/definition");
    editing = name;
    $("define-name").value = name;
    $("define-name").readOnly = true;
    $("define-mode").value = d.mode;
    $("define-target").value = (100 * d.abandon_target).toFixed(1);
    $("define-lines").value = d.lines_per_agent;
    $("define-reserved-at-dial").checked = d.agent_reserved_at_dial;
    $("define-share-weight").value = d.agent_share_weight;
    $("define-caller-id").value = d.caller_id || "";
    $("define-caller-ids").value = (d.caller_ids || []).join(" ");
    $("define-local-presence").checked = Boolean(d.local_presence);
    $("define-hours").value = d.call_hours;
    $("define-record").checked = d.record_calls;
    $("define-machine").value = d.machine_action;
    $("define-voicemail").value = d.voicemail_prompt || "";
    $("define-abandon").value = d.abandon_prompt || "";
    $("define-hold").value = d.hold_music || "";
    $("define-attempts").value = d.max_attempts;
    $("define-attempts-number").value = d.max_attempts_per_number;
    $("define-attempts-day").value = d.max_attempts_per_day ?? "";
    $("define-retry-busy").value = d.retry.busy_s / 60;
    $("define-retry-no-answer").value = d.retry.no_answer_s / 60;
    $("define-retry-machine").value = d.retry.machine_s / 60;
    $("define-retry-abandoned").value = d.retry.abandoned_s == null ? "" : d.retry.abandoned_s / 60;
    const repeat = d.repeat_calls || {};
    $("define-repeat-abandoned").value = repeat.agent_after_abandoned_s ? repeat.agent_after_abandoned_s / 3600 : "";
    $("define-repeat-machine").value = repeat.agent_after_machine_s ? repeat.agent_after_machine_s / 3600 : "";
    $("define-wrap-up").value = d.wrap_up_timeout_s ?? "";
    $("define-preview-timeout").value = d.preview_timeout_s ?? "";
    $("define-preview-action").value = d.preview_timeout_action;
    $("define-preview-skip").checked = d.preview_allow_skip;
    $("define-preview-remove").checked = d.preview_allow_remove;
    $("define-preview-variant").value = d.preview_variant;
    $("define-cpa-sensitivity").value = d.cpa.sensitivity;
    $("define-cpa-machine-mode").value = d.cpa.machine_mode;
    $("define-cpa-max").value = d.cpa.max_analysis_ms / 1000;
    $("define-cpa-connect-first").checked = d.cpa.connect_first;
    $("define-dispositions").value = dispositionsToText(d.disposition);
    for (const day of $("define-days").querySelectorAll("input")) day.checked = d.call_days.includes(day.value);
    for (const tick of $("define-agents").querySelectorAll("input")) tick.checked = d.agents.includes(tick.value);
    $("define-title").textContent = "Change campaign " + name;
    $("define-save").textContent = "Save changes";
    $("define-cancel").classList.remove("hidden");
    $("define-problems").replaceChildren();
    say("");
  } catch (error) {
    say(error.message);
  }
}

async function removeCampaign(name) {
  if (!window.confirm("Remove campaign " + name + "? Its records stay in the store.")) return;
  try {
    await outdial.api("DELETE", "/api/campaigns/" + encodeURIComponent(name));
    if (editing === name) resetForm();
    say("campaign " + name + " removed");
    refresh();
  } catch (error) {
    say(error.message);
  }
}

// The dialer nodes sharing the store and their heartbeats, read every 10 s.
let nodesReadAt = 0;
async function refreshNodes() {
  if (Date.now() - nodesReadAt < 10000) return;
  nodesReadAt = Date.now();
  const listed = await outdial.api("GET", "/api/nodes");
  const rows = listed.nodes.map((n) =>
    outdial.el(
      "tr",
      { "data-node": n.node },
      outdial.el("td", {}, n.node === listed.this ? n.node + " (this one)" : n.node),
      outdial.el("td", {}, n.host || "–"),
      outdial.el("td", {}, n.pid ? String(n.pid) : "–"),
      outdial.el("td", {}, n.seen_s_ago + " s ago"),
      outdial.el("td", n.alive ? {} : { class: "down" }, n.alive ? "alive" : "down"),
    ),
  );
  if (rows.length === 0) {
    rows.push(outdial.el("tr", {}, outdial.el("td", { colspan: "5", class: "muted" }, "no node on the store")));
  }
  outdial.replaceIfChanged($("nodes"), rows);
}

// Pending callbacks, soonest first; a supervisor may cancel any (the
// record goes back to the list) — changing one is the agent's, or the API's.
function renderCallbacks(callbacks) {
  const rows = callbacks.map((c) =>
    outdial.el(
      "tr",
      { "data-callback": String(c.id) },
      outdial.el("td", {}, new Date(c.at).toLocaleString()),
      outdial.el("td", {}, c.campaign),
      outdial.el("td", {}, c.name),
      outdial.el("td", {}, c.external_id),
      outdial.el("td", {}, c.phone || "the record's"),
      outdial.el("td", {}, c.agent || "any agent"),
      outdial.el(
        "td",
        {},
        outdial.el(
          "button",
          {
            class: "danger",
            onclick: async () => {
              try {
                await outdial.api("DELETE", "/api/callbacks/" + c.id);
                say("");
                refresh();
              } catch (error) {
                say(error.message);
              }
            },
          },
          "Cancel",
        ),
      ),
    ),
  );
  if (rows.length === 0) {
    rows.push(outdial.el("tr", {}, outdial.el("td", { colspan: "7", class: "muted" }, "no callbacks scheduled")));
  }
  outdial.replaceIfChanged($("callbacks"), rows);
}

// Downloads a CSV export (the API needs the bearer token, which a plain
// link cannot send).
async function download(path, file) {
  try {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + outdial.token() } });
    if (!response.ok) throw new Error((await response.text()) || response.statusText);
    const url = URL.createObjectURL(await response.blob());
    const link = outdial.el("a", { href: url, download: file });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    say("");
  } catch (error) {
    say("export: " + error.message);
  }
}

async function changeDnc(remove) {
  const numbers = $("dnc-numbers").value.split(/[\n,;]+/).map((n) => n.trim()).filter((n) => n);
  if (numbers.length === 0) return say("type the numbers first");
  const body = { numbers };
  if ($("dnc-campaign").value) body.campaign = $("dnc-campaign").value;
  try {
    const data = await outdial.api("POST", remove ? "/api/dnc/remove" : "/api/dnc", body);
    say("");
    const verb = remove ? "removed" : "added";
    let text = data.changed + " " + verb + ", " + data.unchanged + " unchanged";
    if (data.rejected.length) {
      text += "; rejected: " + data.rejected.map((r) => r.number + " (" + r.reason + ")").join("; ");
    }
    $("dnc-result").textContent = text;
    if (!data.rejected.length) $("dnc-numbers").value = "";
  } catch (error) {
    say(error.message);
  }
}

async function uploadList() {
  const file = $("list-file").files[0];
  if (!file) return say("choose a CSV file first");
  const campaign = $("list-campaign").value;
  $("list-result").textContent = "loading " + file.name + "…";
  $("list-rejected").replaceChildren();
  try {
    const mapping = $("list-mapping").value.trim().replace(/^\?/, "");
    const query = mapping ? "?" + mapping : "";
    const response = await fetch("/api/campaigns/" + encodeURIComponent(campaign) + "/list" + query, {
      method: "POST",
      headers: { Authorization: "Bearer " + outdial.token(), "Content-Type": "text/csv" },
      body: file,
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    say("");
    listCache.delete(campaign);
    refresh();
    $("list-result").textContent =
      campaign + ": " + data.imported + " imported, " + data.updated + " updated, " + data.rejected.length + " rejected";
    $("list-rejected").replaceChildren(
      ...data.rejected.map((r) => outdial.el("li", {}, "line " + r.line + ": " + r.reason)),
    );
  } catch (error) {
    $("list-result").textContent = "";
    say(error.message);
  }
}

// A supervisor listening in on an agent from this browser (WebRTC): the
// dialer mixes the agent and the customer for it; in whisper the agent
// hears the supervisor's microphone, in barge both do. The microphone is
// muted here too while monitoring. `attempt` names the current try: one
// that was stopped or replaced while it waited (the microphone prompt, the
// dialer's answer) cleans up after itself and touches nothing else.
// `modeChanges` counts mode changes, so a refresh that read the dialer's
// mode before the latest change landed does not undo it.
const listening = { attempt: null, pc: null, stream: null, session: null, agent: null, modeChanges: 0, changing: 0 };

function listenButton(agent, listened) {
  const node = outdial.el("button", { class: "command-listen", onclick: () => listenIn(agent.id) }, "Listen");
  node.disabled = !agent.phone_connected || listened;
  return node;
}

function listenState(text) {
  $("listen-state").textContent = text;
}

function endListeningOnDialer(session, keepalive) {
  if (session === null || session === undefined) return;
  fetch("/api/listen-ins/" + encodeURIComponent(session), {
    method: "DELETE",
    headers: { Authorization: "Bearer " + outdial.token() },
    keepalive,
  }).catch(() => {});
}

// Ends the current listening in, here and on the dialer; `text` stays on
// screen (why it ended), none hides the panel.
function stopListening(text) {
  endListeningOnDialer(listening.session, false);
  if (listening.pc) listening.pc.close();
  if (listening.stream) listening.stream.getTracks().forEach((track) => track.stop());
  Object.assign(listening, { attempt: null, pc: null, stream: null, session: null });
  $("listen-in").classList.toggle("hidden", !text);
  listenState(text || "");
}

async function listenIn(agent) {
  stopListening("");
  const attempt = {};
  listening.attempt = attempt;
  listening.agent = agent;
  const current = () => listening.attempt === attempt;
  // What this try opened, closed by itself if it is no longer current.
  let pc = null;
  let stream = null;
  let session = null;
  const abandon = () => {
    if (pc) pc.close();
    if (stream) stream.getTracks().forEach((track) => track.stop());
    endListeningOnDialer(session, false);
  };
  $("listen-agent").textContent = agent;
  $("listen-in").classList.remove("hidden");
  document.querySelector('input[name="listen-mode"][value="monitor"]').checked = true;
  listenState("connecting…");
  try {
    if (!navigator.mediaDevices || !window.RTCPeerConnection) {
      throw new Error("this page needs HTTPS (or localhost) for the microphone");
    }
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    if (!current()) return abandon();
    pc = new RTCPeerConnection({ iceServers: [] });
    Object.assign(listening, { pc, stream });
    stream.getAudioTracks().forEach((track) => {
      track.enabled = false;
      pc.addTrack(track, stream);
    });
    pc.addEventListener("track", (event) => {
      const audio = $("listen-audio");
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      audio.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => {
      if (!current()) return;
      if (pc.connectionState === "connected") listenState("hearing " + agent);
      else if (pc.connectionState === "failed") stopListening("the connection was lost");
    });
    await pc.setLocalDescription(await pc.createOffer());
    await outdial.candidatesGathered(pc);
    if (!current()) return abandon();
    const path = "/api/agents/" + encodeURIComponent(agent) + "/listen";
    const answer = await outdial.api("POST", path, { sdp: pc.localDescription.sdp, mode: "monitor" });
    session = answer.session;
    if (!current()) return abandon();
    listening.session = session;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    refresh();
  } catch (error) {
    if (!current()) return abandon();
    stopListening("cannot listen in: " + error.message);
  }
}

// The mode the dialer has (it turns a barge into a whisper when the agent's
// next customer is connected): the radio button and the microphone follow.
function showListenMode(mode) {
  const radio = document.querySelector('input[name="listen-mode"][value="' + mode + '"]');
  if (radio && !radio.checked) radio.checked = true;
  // The microphone is live only where someone hears it.
  if (listening.stream) listening.stream.getAudioTracks().forEach((track) => (track.enabled = mode !== "monitor"));
}

async function setListenMode(mode) {
  if (listening.session === null) return;
  listening.modeChanges += 1;
  listening.changing += 1;
  try {
    await outdial.api("PATCH", "/api/listen-ins/" + listening.session, { mode });
    showListenMode(mode);
    say("");
  } catch (error) {
    say(error.message);
  } finally {
    listening.changing -= 1;
    listening.modeChanges += 1;
    refresh();
  }
}

function open() {
  $("signin").classList.add("hidden");
  $("dashboard").classList.remove("hidden");
  refresh();
  outdial.listen("/api/events", () => refresh(), (up) => {
    $("stream").textContent = up ? "live" : "reconnecting…";
  });
  setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("outdial.token", $("token").value);
    open();
  });
  $("list-upload").addEventListener("click", uploadList);
  $("activity-export").addEventListener("click", () =>
    download("/api/agent-activity?format=csv", "agent-activity.csv"),
  );
  $("define-form").addEventListener("submit", saveCampaign);
  $("define-cancel").addEventListener("click", resetForm);
  $("dnc-add").addEventListener("click", () => changeDnc(false));
  $("dnc-remove").addEventListener("click", () => changeDnc(true));
  for (const radio of document.querySelectorAll('input[name="listen-mode"]')) {
    radio.addEventListener("change", () => setListenMode(radio.value));
  }
  $("listen-stop").addEventListener("click", () => {
    stopListening("");
    refresh();
  });
  // Leaving the page ends the listening in (the browser's side is gone).
  window.addEventListener("pagehide", () => endListeningOnDialer(listening.session, true));
  if (outdial.token()) open();
});
