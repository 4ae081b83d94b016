// The agent desktop: the agent's view (GET /api/agents/{id}) is the source
// of truth and is fetched again after every event of the agent's stream.
"use strict";

const desk = {
  id: sessionStorage.getItem("outdial.agent") || "",
  view: null,
  viewAt: 0,
  screenPop: null,
  campaigns: [],
  // The call guide's answers for the current call, in order, and the call
  // they belong to ("call/record").
  guideAnswers: [],
  guideCall: null,
  // The agent's pending personal callbacks; the one being edited.
  callbacks: [],
  editing: null,
};

const $ = (id) => document.getElementById(id);
// "Transfer to" values naming an outside number (no agent id starts so:
// the configuration's check reserves it).
const OUTSIDE = "outside ";

function say(text) {
  $("message").textContent = text || "";
}

function log(line) {
  const item = outdial.el("li", {}, new Date().toLocaleTimeString() + "  " + line);
  $("log").prepend(item);
  while ($("log").children.length > 30) $("log").lastChild.remove();
}

async function act(path, body, method = "POST") {
  try {
    desk.view = await outdial.api(method, "/api/agents/" + encodeURIComponent(desk.id) + path, body);
    desk.viewAt = Date.now();
    say("");
    render();
  } catch (error) {
    say(error.message);
  }
}

async function refresh() {
  try {
    desk.view = await outdial.api("GET", "/api/agents/" + encodeURIComponent(desk.id));
    desk.viewAt = Date.now();
    desk.campaigns = await outdial.api("GET", "/api/campaigns");
    desk.callbacks = await outdial.api("GET", "/api/callbacks");
    render();
    renderCallbacks();
  } catch (error) {
    say(error.message);
    if (error.status === 401 || error.status === 403) signOut();
  }
}

// How a record delivered as a scheduled callback says so.
function callbackNote(record) {
  // Ofcom: this number was abandoned or taken for a machine lately, and
  // the agent was reserved for the call from the dial.
  const repeat = record.repeat_call ? " (repeat call after an abandoned or machine call)" : "";
  if (record.personal_callback) return " (your personal callback)" + repeat;
  return (record.callback ? " (callback)" : "") + repeat;
}

function fields(list, object) {
  list.replaceChildren();
  for (const [key, value] of Object.entries(object || {})) {
    list.append(outdial.el("dt", {}, key), outdial.el("dd", {}, value === null ? "" : value));
  }
}

// The contact the agent handles: the record on the preview screen, else
// the customer of the call (or wrap-up).
function handledContact() {
  if (!desk.view) return null;
  return desk.view.preview || currentPop();
}

// The contact editor, filled from the contact handled now.
function openContactEditor() {
  const contact = handledContact();
  if (!contact) return;
  desk.editingContact = contact.custom || {};
  $("contact-name").value = contact.name || "";
  $("contact-fields").value = Object.entries(desk.editingContact)
    .map(([key, value]) => key + " = " + (value === null ? "" : value))
    .join("\n");
  $("contact-edit").classList.remove("hidden");
}

// Sends the name and the fields that changed (removed ones as null).
async function saveContact() {
  const custom = {};
  const kept = new Set();
  for (const line of $("contact-fields").value.split("\n")) {
    const at = line.indexOf("=");
    if (at < 0) continue;
    const key = line.slice(0, at).trim();
    if (!key) continue;
    kept.add(key);
    const value = line.slice(at + 1).trim();
    if (String(desk.editingContact[key] ?? "") !== value) custom[key] = value;
  }
  for (const key of Object.keys(desk.editingContact)) {
    if (!kept.has(key)) custom[key] = null;
  }
  // The name only when changed (a record imported without one keeps it
  // blank: a blank name is refused).
  const body = { custom };
  const name = $("contact-name").value.trim();
  if (name && name !== (handledContact() || {}).name) body.name = name;
  if (body.name === undefined && Object.keys(custom).length === 0) {
    $("contact-edit").classList.add("hidden");
    return;
  }
  try {
    desk.view = await outdial.api("PATCH", "/api/agents/" + encodeURIComponent(desk.id) + "/contact", body);
    desk.viewAt = Date.now();
    // The screen pop event is older than the change: the view has it.
    desk.screenPop = null;
    $("contact-edit").classList.add("hidden");
    say("");
    log("contact updated");
    render();
  } catch (error) {
    say(error.message);
  }
}

// The customer of the agent's call: from the screen pop event, else from
// the agent's view (a desktop opened or reloaded mid-call saw no event).
function currentPop() {
  return desk.screenPop || (desk.view && desk.view.call) || null;
}

function render() {
  const view = desk.view;
  if (!view) return;
  const state = view.state;
  $("state").textContent = state.replace("_", " ");
  $("state").className = "state " + state;
  $("reason").textContent = view.reason ? "(" + view.reason + ")" : "";
  if (view.connection === "per_call") {
    $("phone").textContent = view.phone_connected ? "on a call" : "rung for each customer";
  } else {
    $("phone").textContent = view.phone_connected ? "connected" : "not connected";
  }
  // A supervisor the agent hears (a silent monitor is never shown).
  const coached = { whisper: "your supervisor is coaching you (the customer does not hear)", barge: "your supervisor is on the call (the customer hears)" };
  $("supervisor-note").textContent = coached[view.supervisor] || "";
  $("supervisor-note").classList.toggle("hidden", !coached[view.supervisor]);
  // The configured reasons, when there are (else the built-in choices).
  if (view.not_ready_reasons.length > 0) {
    const select = $("reason-select");
    const shown = Array.from(select.options).map((o) => o.value).join("\n");
    if (shown !== view.not_ready_reasons.join("\n")) {
      select.replaceChildren(...view.not_ready_reasons.map((r) => outdial.el("option", { value: r }, r)));
    }
  }
  const shift = view.shift;
  $("shift").textContent =
    "this shift: " + shift.calls + (shift.calls === 1 ? " call" : " calls") +
    (shift.average_handle_s == null ? "" : ", " + outdial.duration(shift.average_handle_s) + " per call") +
    ", occupancy " + outdial.percent(shift.occupancy);
  $("logout-pending").textContent =
    view.logout_pending_ms !== null ? "logging out in " + Math.ceil(view.logout_pending_ms / 1000) + " s" : "";
  $("login").disabled = state !== "logged_out";
  $("ready").disabled = state !== "not_ready";
  $("not-ready").disabled = state === "logged_out" || state === "not_ready";
  $("logout").disabled = state === "logged_out";
  const mine = desk.campaigns.filter((c) => view.campaigns.includes(c.name));
  const toJoin = view.to_join || [];
  const previewCampaign = mine.some((c) => c.mode === "preview" && c.state === "running" && !toJoin.includes(c.name));
  $("get-record").disabled = !(state === "ready" && previewCampaign);

  const rows = mine.map((c) => {
    const path = "/campaigns/" + encodeURIComponent(c.name);
    let join = "";
    if ((view.to_join || []).includes(c.name)) {
      join = outdial.el("button", { class: "primary join", "data-campaign": c.name, onclick: () => act(path + "/join") }, "Join");
    } else if (state !== "logged_out") {
      join = outdial.el("button", { class: "leave", "data-campaign": c.name, onclick: () => act(path + "/leave") }, "Leave");
    }
    const stateCell = outdial.el("td", {}, c.state);
    if (c.held_back) stateCell.append(outdial.el("span", { class: "muted held-back" }, " — " + c.held_back));
    return outdial.el("tr", {}, outdial.el("td", {}, c.name), outdial.el("td", {}, c.mode), stateCell, outdial.el("td", {}, join));
  });
  outdial.replaceIfChanged($("campaigns"), rows);

  const preview = view.preview;
  $("preview").classList.toggle("hidden", !preview);
  if (preview) {
    $("preview-name").textContent = preview.name;
    $("preview-phone").textContent = preview.phone;
    $("preview-record").textContent = preview.record + callbackNote(preview);
    $("preview-campaign").textContent = preview.campaign;
    $("preview-attempts").textContent = preview.attempts;
    $("preview-local-time").textContent = localTime(preview.time_zones);
    fields($("preview-custom"), preview.custom);
    $("preview-skip").disabled = !preview.can_skip;
    $("preview-remove").disabled = !preview.can_remove;
    $("preview-call").textContent = preview.pushed ? "Accept" : "Call";
    const ids = preview.caller_ids || [];
    $("preview-caller-id-label").classList.toggle("hidden", ids.length === 0);
    const select = $("preview-caller-id");
    const shown = Array.from(select.options).map((o) => o.value).join(",");
    if (shown !== ids.join(",")) {
      select.replaceChildren(...ids.map((id) => outdial.el("option", { value: id }, id)));
    }
    $("preview-decline").textContent = preview.pushed ? "Reject" : "Decline";
  }

  // A call the agent is reserved for from the dial (a previewed record, a
  // repeat call) is popped at the dial: shown while it rings.
  const known = currentPop();
  const onCall = ["connecting", "on_call", "wrap_up"].includes(state) || (state === "reserved" && known);
  const pop = onCall ? known : null;
  $("call").classList.toggle("hidden", !pop);
  // Popped at the dial and not answered yet (SPEC §2: the record pops
  // first, "connecting…" until the customer answers).
  $("call-connecting").classList.toggle(
    "hidden",
    !(pop && state === "reserved" && !desk.view.consultation),
  );
  if (pop) {
    $("call-name").textContent = pop.name;
    $("call-phone").textContent = pop.phone;
    $("call-record").textContent = pop.record + callbackNote(pop);
    $("call-campaign").textContent = pop.campaign;
    $("call-local-time").textContent = localTime(pop.time_zones);
    fields($("call-custom"), pop.custom);
  }
  guideFor(pop);
  renderGuide(pop);
  renderDispositions(pop);
  // A call placed for the agent may be cancelled while it rings (Webex:
  // "the ringing status is replaced by the Cancel button").
  // A consultation: this agent consults another about its customer, or
  // is consulted (reserved for the call, the pop shown).
  const consultation = desk.view.consultation;
  const consulting = Boolean(consultation) && consultation.role === "consulting";
  const ringing = Boolean(pop) && state === "reserved" && !consultation;
  // While the customer is being transferred nothing acts on it here.
  // (to an agent, or to an outside number while it rings)
  const transferring = desk.view.transferring_to || desk.view.transferring_outside_to;
  $("hangup").disabled = !((state === "on_call" && !transferring && !consulting) || ringing);
  $("hangup").textContent = ringing ? "Cancel call" : "Hang up";
  // Hold: the customer hears the hold audio and the agent nobody.
  const held = desk.view.on_hold_s !== null && desk.view.on_hold_s !== undefined;
  $("hold").disabled = state !== "on_call" || Boolean(transferring);
  $("hold").textContent = consulting
    ? (held ? "Conference" : "Hold (private)")
    : (held ? "Resume" : "Hold");
  // Voicemail drop: the campaign's recorded message into the machine.
  $("drop-voicemail").disabled =
    state !== "on_call" || Boolean(transferring) || consulting || !desk.view.voicemail_drop;
  $("on-hold").classList.toggle("hidden", !held);
  // Recording pause (a card number read out): silence is recorded meanwhile.
  const paused = Boolean(desk.view.recording_paused);
  $("pause-recording").disabled =
    state !== "on_call" || Boolean(transferring) || !desk.view.call_recorded;
  $("pause-recording").title = desk.view.call_recorded
    ? "PCI DSS: pause while a card number is read out"
    : "this call is not recorded";
  $("pause-recording").textContent = paused ? "Resume recording" : "Pause recording";
  $("recording-paused").classList.toggle("hidden", !paused);
  // Transfer: to a Ready agent picked from the list, or to the campaign's
  // next one; the list is the view's (Ready agents on a reservation call).
  // The campaign's outside numbers follow (a blind transfer through the
  // trunk; no consultation), by name.
  const targets = desk.view.transfer_to || [];
  const outside = desk.view.outside_transfers || [];
  const select = $("transfer-to");
  const picked = select.value;
  // "The campaign's next Ready agent" only while one of its agents is Ready.
  const options = (targets.some((t) => t.in_campaign)
    ? [{ id: "", name: "next Ready agent of the campaign" }]
    : [])
    .concat(targets.map((t) => ({ id: t.id, name: t.name + " (" + t.id + ")" })))
    .concat(outside.map((name) => ({ id: OUTSIDE + name, name: name + " (outside number)" })));
  const shown = Array.from(select.options).map((o) => o.value + "=" + o.textContent);
  if (shown.join("\n") !== options.map((o) => o.id + "=" + o.name).join("\n")) {
    select.replaceChildren(...options.map((o) => outdial.el("option", { value: o.id }, o.name)));
    select.value = options.some((o) => o.id === picked) ? picked : options.length ? options[0].id : "";
  }
  $("transfer").disabled = state !== "on_call" || Boolean(transferring) || consulting ||
    targets.length + outside.length === 0;
  $("consult").disabled = $("transfer").disabled || targets.length === 0 ||
    select.value.startsWith(OUTSIDE);
  select.disabled = $("transfer").disabled;
  $("consultation").classList.toggle("hidden", !consultation);
  if (consultation) {
    const customer = consultation.conference ? "all three of you talk" : "the customer is on hold";
    $("consultation-note").textContent = consulting
      ? "Consulting " + consultation.with + ": " + customer
      : consultation.with + " consults you about this customer: " + customer;
  }
  $("complete-transfer").classList.toggle("hidden", !consulting);
  // Digits to the customer: on the line, not on hold.
  const keys =
    !desk.view.customer_on_line || Boolean(transferring) || consulting || held;
  for (const key of document.querySelectorAll("#keypad button.key")) key.disabled = keys;
  $("transferring").textContent = transferring ? "Transferring to " + transferring + "…" : "";
  $("transferring").classList.toggle("hidden", !transferring);
  // An outside number may be called off while it rings.
  $("cancel-transfer").classList.toggle("hidden", !desk.view.transferring_outside_to);
  $("wrapup").classList.toggle("hidden", state !== "wrap_up");
  if (!handledContact()) $("contact-edit").classList.add("hidden");
}

// The contact's local time now, from its time zones: one clock, or the
// earliest and latest when its numbers span zones (the dialer only calls
// while every one is inside the calling window).
function localTime(zones) {
  const now = new Date();
  const clocks = [];
  for (const zone of zones || []) {
    try {
      const parts = new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "longOffset",
      }).formatToParts(now);
      const part = (type) => (parts.find((p) => p.type === type) || {}).value || "";
      const offset = /GMT([+-])(\d\d):(\d\d)/.exec(part("timeZoneName"));
      const minutes = offset ? (offset[1] === "-" ? -1 : 1) * (60 * Number(offset[2]) + Number(offset[3])) : 0;
      clocks.push({ minutes, clock: part("hour") + ":" + part("minute") });
    } catch {
      // A zone this browser does not know: left out.
    }
  }
  if (clocks.length === 0) return "";
  // West to east: the earliest clock first.
  clocks.sort((a, b) => a.minutes - b.minutes);
  const first = clocks[0].clock;
  const last = clocks[clocks.length - 1].clock;
  return (first === last ? first : first + "–" + last) + " (" + zones.join(", ") + ")";
}

// The question the guide asks now (null: it has ended), from its answers.
function guideQuestion(guide) {
  let question = guide[0] || null;
  for (const given of desk.guideAnswers) {
    if (!question || question.id !== given.question) return null;
    let next = question.next;
    if (question.answers.length) {
      const choice = question.answers.find((c) => c.text === given.answer);
      next = choice ? choice.next : null;
    }
    question = next ? guide.find((q) => q.id === next) || null : null;
  }
  return question;
}

function answerGuide(question, answer) {
  desk.guideAnswers.push({ question: question.id, answer });
  saveGuide();
  render();
}

// The guide's answers outlive a reload of the desktop mid-call: kept in the
// tab's sessionStorage with the call they belong to.
function saveGuide() {
  sessionStorage.setItem("outdial.guide", JSON.stringify({ call: desk.guideCall, answers: desk.guideAnswers }));
}

// Switches the guide to `pop`'s call: its kept answers, or none.
function guideFor(pop) {
  const call = pop ? pop.call + "/" + pop.record : null;
  if (!call || call === desk.guideCall) return;
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem("outdial.guide") || "null");
  } catch (_) {
    kept = null;
  }
  desk.guideAnswers = kept && kept.call === call && Array.isArray(kept.answers) ? kept.answers : [];
  desk.guideCall = call;
}

// The wrap-up codes of the call's campaign (the system's and its own);
// rebuilt only when they change, so the agent's choice stays.
function renderDispositions(pop) {
  const campaign = pop && desk.campaigns.find((c) => c.name === pop.campaign);
  if (!campaign || !campaign.dispositions) return;
  const select = $("disposition");
  const codes = campaign.dispositions.map((d) => d.code);
  if (Array.from(select.options).map((o) => o.value).join(",") === codes.join(",")) return;
  const chosen = select.value;
  select.replaceChildren(
    ...campaign.dispositions.map((d) => outdial.el("option", { value: d.code }, d.label)),
  );
  select.value = codes.includes(chosen) ? chosen : codes.includes("SALE") ? "SALE" : codes[0];
}

function renderGuide(pop) {
  const campaign = pop && desk.campaigns.find((c) => c.name === pop.campaign);
  const guide = campaign ? campaign.guide || [] : [];
  $("guide").classList.toggle("hidden", guide.length === 0);
  if (guide.length === 0) return;
  $("guide-answers").replaceChildren(
    ...desk.guideAnswers.map((a) => {
      const q = guide.find((g) => g.id === a.question);
      return outdial.el("li", {}, (q ? q.question : a.question) + " — ", outdial.el("b", {}, a.answer));
    }),
  );
  const question = guideQuestion(guide);
  $("guide-back").disabled = desk.guideAnswers.length === 0;
  if (!question) {
    $("guide-question").textContent = "Guide complete.";
    outdial.replaceIfChanged($("guide-choices"), []);
    $("guide-free").classList.add("hidden");
    return;
  }
  $("guide-question").textContent = question.question;
  const free = question.answers.length === 0;
  $("guide-free").classList.toggle("hidden", !free);
  $("guide-free").dataset.question = question.id;
  outdial.replaceIfChanged(
    $("guide-choices"),
    question.answers.map((choice) =>
      outdial.el(
        "button",
        { class: "guide-answer", "data-question": question.id, "data-answer": choice.text, onclick: () => answerGuide(question, choice.text) },
        choice.text,
      ),
    ),
  );
}

function tick() {
  if (!desk.view) return;
  const seconds = desk.view.seconds_in_state + (Date.now() - desk.viewAt) / 1000;
  $("in-state").textContent = outdial.duration(seconds);
  const preview = desk.view.preview;
  if (preview && preview.remaining_ms !== null) {
    const left = preview.remaining_ms / 1000 - (Date.now() - desk.viewAt) / 1000;
    $("preview-remaining").textContent = "— " + Math.max(0, Math.ceil(left)) + " s left";
  } else {
    $("preview-remaining").textContent = "";
  }
  const held = desk.view.on_hold_s;
  if (held !== null && held !== undefined && desk.view.state === "on_call") {
    $("on-hold").textContent = "On hold " + outdial.duration(held + (Date.now() - desk.viewAt) / 1000);
  }
  const wrap = desk.view.wrap_up_remaining_ms;
  if (wrap !== null && wrap !== undefined && desk.view.state === "wrap_up") {
    const left = wrap / 1000 - (Date.now() - desk.viewAt) / 1000;
    $("wrapup-remaining").textContent = "— ends by itself in " + Math.max(0, Math.ceil(left)) + " s";
  } else {
    $("wrapup-remaining").textContent = "";
  }
}

function onEvent(event) {
  switch (event.type) {
    case "screen_pop":
      desk.screenPop = event;
      log("customer " + event.name + " " + event.phone);
      break;
    case "preview":
      log("record on screen: " + event.record);
      break;
    case "preview_ended":
      log("record " + event.record + " " + event.how.replace("_", " "));
      break;
    case "call_not_placed":
      // The agent pressed Dial (or was reserved for the call): say why
      // nothing rings.
      say("The call to " + event.record + " was not placed: " + event.reason);
      log("call to " + event.record + " not placed");
      break;
    case "agent_state":
      // Out of the call: its pop is over (a reservation made for a live
      // answer must not show the previous customer).
      if (["ready", "not_ready", "previewing", "logged_out"].includes(event.state)) desk.screenPop = null;
      log("state " + event.state + (event.reason ? " (" + event.reason + ")" : ""));
      break;
    case "campaign_state":
      log("campaign " + event.campaign + " " + event.state);
      break;
    case "disposition":
      log("disposition " + event.code);
      break;
    case "hold":
      log(event.on ? "customer on hold" : "customer off hold");
      break;
    case "recording_paused":
      log(event.paused ? "recording paused" : "recording resumed");
      break;
    case "transfer":
      if (event.step === "consulting") {
        log(event.to === desk.id ? event.agent + " consults you" : "consulting " + event.to);
      } else if (event.step === "consultation_ended") {
        log("consultation ended" + (event.reason ? " (" + event.reason + ")" : ""));
      } else if (event.to === desk.id) {
        log("transfer from " + event.agent + " " + event.step + (event.reason ? " (" + event.reason + ")" : ""));
      } else if (event.step === "failed") {
        say("transfer failed: " + (event.reason || ""));
        log("transfer to " + event.to + " failed");
      } else {
        log("transfer to " + event.to + " " + event.step);
      }
      break;
    default:
      log(event.type);
  }
  refresh();
}

// A time for a datetime-local input, in the browser's zone.
function localInput(iso) {
  const at = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) +
    "T" + pad(at.getHours()) + ":" + pad(at.getMinutes());
}

function renderCallbacks() {
  const rows = desk.callbacks.map((callback) => {
    const change = outdial.el("button", {}, "Change");
    change.addEventListener("click", () => {
      desk.editing = callback;
      $("callback-edit-which").textContent = (callback.name || callback.external_id) + ":";
      $("callback-edit-at").value = localInput(callback.at);
      $("callback-edit-phone").value = callback.phone || "";
      $("callback-edit-mine").checked = true;
      $("callback-edit").classList.remove("hidden");
    });
    const cancel = outdial.el("button", { class: "danger" }, "Cancel");
    cancel.addEventListener("click", async () => {
      try {
        await outdial.api("DELETE", "/api/callbacks/" + callback.id);
        log("callback " + callback.id + " cancelled");
        say("");
        refresh();
      } catch (error) {
        say(error.message);
      }
    });
    const actions = outdial.el("td", {});
    actions.append(change, cancel);
    const row = outdial.el("tr", { "data-callback": String(callback.id) });
    row.append(
      outdial.el("td", {}, new Date(callback.at).toLocaleString()),
      outdial.el("td", {}, callback.name),
      outdial.el("td", {}, callback.external_id),
      outdial.el("td", {}, callback.campaign),
      outdial.el("td", {}, callback.phone || "the record's"),
      actions,
    );
    return row;
  });
  if (rows.length === 0) {
    const none = outdial.el("tr", {});
    none.append(outdial.el("td", { colspan: "6", class: "muted" }, "no callbacks scheduled for you"));
    rows.push(none);
  }
  outdial.replaceIfChanged($("callbacks"), rows);
}

async function saveCallback() {
  const callback = desk.editing;
  if (!callback) return;
  const at = $("callback-edit-at").value;
  if (!at) return say("choose the new time first");
  const body = { at: new Date(at).toISOString() };
  const phone = $("callback-edit-phone").value.trim();
  if (phone) body.phone = phone;
  if ($("callback-edit-mine").checked) body.agent = desk.id;
  try {
    await outdial.api("POST", "/api/callbacks/" + callback.id, body);
    log("callback " + callback.id + " moved to " + new Date(body.at).toLocaleString());
    say("");
    desk.editing = null;
    $("callback-edit").classList.add("hidden");
    refresh();
  } catch (error) {
    say(error.message);
  }
}

// The browser as the agent's phone (WebRTC, G.711 μ-law): the offer goes to
// POST /api/agents/{id}/phone; once ICE and DTLS are up the dialer calls the
// agent on it (the reservation call comes up at once) and every customer is
// bridged into it. Chosen once per agent in this browser (localStorage); the
// desktop connects again by itself after a lost connection, a reload or a
// dialer that did not answer — as a `reconnect`, which the dialer refuses
// (409) while another browser or tab is the agent's phone, so two desktops
// of one agent never take the phone from each other in turn.
const browserPhone = {
  // The start under way or done (a fresh object each time): a start that
  // finds it replaced stops, closing what it opened.
  attempt: null,
  pc: null,
  stream: null,
  // The dialer's name for this tab's browser phone, once it answered the
  // offer: "Stop" and leaving the page close that one only, never one
  // another tab has taken over since.
  session: null,
  // The one timer that will try again (a dialer away, a lost connection).
  retry: null,
  // The softphone holds the reservation call: the browser takes the next.
  standby: false,
};

function sessionKey() {
  return "outdial.browserPhoneSession." + desk.id;
}

function retryBrowserPhone(afterMs, afterConflict, replaces) {
  clearTimeout(browserPhone.retry);
  browserPhone.retry = setTimeout(() => {
    browserPhone.retry = null;
    if (!browserPhone.attempt && browserPhoneWanted()) startBrowserPhone(true, afterConflict, replaces);
  }, afterMs);
}

function browserPhoneKey() {
  return "outdial.browserPhone." + desk.id;
}

function browserPhoneWanted() {
  return localStorage.getItem(browserPhoneKey()) === "1";
}

function browserPhoneState(text) {
  $("browser-phone-state").textContent = text;
  $("browser-phone").textContent = browserPhone.attempt ? "Stop using this browser" : "Use this browser as phone";
}

function stopBrowserPhone() {
  clearTimeout(browserPhone.retry);
  browserPhone.retry = null;
  browserPhone.attempt = null;
  if (browserPhone.pc) browserPhone.pc.close();
  if (browserPhone.stream) browserPhone.stream.getTracks().forEach((track) => track.stop());
  browserPhone.pc = null;
  browserPhone.stream = null;
  browserPhone.session = null;
  browserPhone.standby = false;
  $("browser-audio").srcObject = null;
  browserPhoneState("");
}

// Connects the browser as the agent's phone. `reconnect`: the desktop does
// it by itself, and gives way to another browser that is the phone now
// (`afterConflict`: it already gave way once, and tries no more after this);
// `replaces`: this page's own earlier session, which it may replace.
async function startBrowserPhone(reconnect, afterConflict, replaces) {
  stopBrowserPhone();
  const attempt = {};
  browserPhone.attempt = attempt;
  const current = () => browserPhone.attempt === attempt;
  browserPhoneState("connecting…");
  try {
    if (!navigator.mediaDevices || !window.RTCPeerConnection) {
      throw new Error("this page needs HTTPS (or localhost) for the microphone");
    }
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    if (!current()) {
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    const pc = new RTCPeerConnection({ iceServers: [] });
    browserPhone.pc = pc;
    browserPhone.stream = stream;
    stream.getAudioTracks().forEach((track) => pc.addTrack(track, stream));
    pc.addEventListener("track", (event) => {
      const audio = $("browser-audio");
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      audio.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => {
      if (!current()) return;
      const state = pc.connectionState;
      if (state === "connected") {
        browserPhoneState(
          browserPhone.standby
            ? "browser phone connected — your softphone has the call; the browser takes the next one"
            : "browser phone connected",
        );
        if (browserPhone.standby) watchForTheCall(pc, current);
      }
      else if (state === "disconnected") browserPhoneState("browser phone interrupted…");
      else if (state === "failed") {
        // The dialer restarted, the network dropped, or another browser
        // took the phone over: offer again, giving way to the other.
        const lost = browserPhone.session;
        stopBrowserPhone();
        browserPhoneState("browser phone lost — connecting again…");
        retryBrowserPhone(3000, false, lost);
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    await outdial.candidatesGathered(pc);
    if (!current()) return;
    const body = { sdp: pc.localDescription.sdp, reconnect: Boolean(reconnect) };
    if (reconnect && replaces) body.replaces = replaces;
    const answer = await outdial.api("POST", "/api/agents/" + encodeURIComponent(desk.id) + "/phone", body);
    if (!current()) {
      // Stopped while the offer was on its way: close what it opened.
      closeBrowserPhoneOnDialer(false, answer.session);
      return;
    }
    browserPhone.session = answer.session;
    browserPhone.standby = Boolean(answer.softphone_has_the_call);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    localStorage.setItem(browserPhoneKey(), "1");
  } catch (error) {
    if (!current()) return;
    closeBrowserPhoneOnDialer(false);
    stopBrowserPhone();
    if (error.status === 409) {
      browserPhoneState("another browser is your phone — press the button to use this one");
      // That browser may be gone without a word (the dialer notices within
      // about half a minute): one more try after that, then no more.
      if (!afterConflict) retryBrowserPhone(40000, true);
      return;
    }
    browserPhoneState("browser phone: " + error.message);
    // A dialer that does not answer (restarting) is tried again; a refusal
    // (4xx: a bad offer, no address for browsers) or a microphone the
    // browser denies is left on screen.
    const dialerAway = error.status >= 500 || String(error.message).startsWith("the dialer does not answer");
    if (dialerAway && browserPhoneWanted()) retryBrowserPhone(5000, false);
  }
}

// While the softphone has the reservation call the dialer sends the browser
// nothing; the first audio it receives means the call is the browser's now.
function watchForTheCall(pc, current) {
  const timer = setInterval(async () => {
    if (!current() || !browserPhone.standby) {
      clearInterval(timer);
      return;
    }
    let received = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") received = s.packetsReceived || 0;
    });
    if (received > 0 && current()) {
      clearInterval(timer);
      browserPhone.standby = false;
      browserPhoneState("browser phone connected");
    }
  }, 2000);
}

// Closes the agent's browser phone on the dialer, if it is this tab's.
function closeBrowserPhoneOnDialer(keepalive, which) {
  const session = which === undefined ? browserPhone.session : which;
  if (session === null) return;
  fetch("/api/agents/" + encodeURIComponent(desk.id) + "/phone?session=" + encodeURIComponent(session), {
    method: "DELETE",
    headers: { Authorization: "Bearer " + outdial.token() },
    keepalive,
  }).catch(() => {});
}

function signOut() {
  closeBrowserPhoneOnDialer(false);
  stopBrowserPhone();
  sessionStorage.removeItem("outdial.token");
  $("desktop").classList.add("hidden");
  $("signin").classList.remove("hidden");
}

function open() {
  $("signin").classList.add("hidden");
  $("desktop").classList.remove("hidden");
  $("who").textContent = "agent " + desk.id;
  refresh();
  outdial.listen("/api/agents/" + encodeURIComponent(desk.id) + "/events", onEvent, (up) => {
    $("stream").textContent = up ? "live" : "reconnecting…";
    if (up) refresh();
  });
  setInterval(tick, 250);
  setInterval(refresh, 5000);
  // A reload replaces the session the page had (its id is kept only across
  // the reload: a duplicated tab must not carry a live phone's id).
  const earlier = Number(sessionStorage.getItem(sessionKey())) || null;
  sessionStorage.removeItem(sessionKey());
  if (browserPhoneWanted()) startBrowserPhone(true, false, earlier);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    desk.id = $("agent-id").value.trim();
    sessionStorage.setItem("outdial.agent", desk.id);
    sessionStorage.setItem("outdial.token", $("token").value);
    open();
  });
  $("browser-phone").addEventListener("click", () => {
    if (browserPhone.attempt) {
      localStorage.removeItem(browserPhoneKey());
      closeBrowserPhoneOnDialer(false);
      stopBrowserPhone();
    } else {
      startBrowserPhone(false);
    }
  });
  // Leaving the page (closed, reloaded) ends the phone at once rather than
  // when the dialer misses the browser's ICE consent, half a minute later.
  window.addEventListener("pagehide", () => {
    if (browserPhone.session !== null) sessionStorage.setItem(sessionKey(), String(browserPhone.session));
    closeBrowserPhoneOnDialer(true);
  });
  $("login").addEventListener("click", () => act("/login"));
  $("ready").addEventListener("click", () => act("/ready"));
  $("not-ready").addEventListener("click", () => act("/not-ready", { reason: $("reason-select").value }));
  $("logout").addEventListener("click", () => act("/logout"));
  $("get-record").addEventListener("click", () => act("/preview"));
  for (const action of ["skip", "decline", "dnc", "remove", "stop", "leave"]) {
    $("preview-" + action).addEventListener("click", () => act("/preview/" + action));
  }
  $("preview-call").addEventListener("click", () => {
    const picking = !$("preview-caller-id-label").classList.contains("hidden");
    act("/preview/call", picking ? { caller_id: $("preview-caller-id").value } : undefined);
  });
  // Postpone the record on screen: a callback at the time the customer
  // wants (Genesys: "postpone a preview call before it is dialed").
  $("preview-postpone").addEventListener("click", () => {
    const at = $("preview-callback-at").value;
    if (!at) {
      say("choose when to call back");
      return;
    }
    const body = {
      callback_at: new Date(at).toISOString(),
      callback_personal: $("preview-callback-personal").checked,
    };
    const phone = $("preview-callback-phone").value.trim();
    if (phone) body.callback_phone = phone;
    act("/preview/callback", body).then(() => {
      if (!$("message").textContent) {
        $("preview-callback-at").value = "";
        $("preview-callback-personal").checked = false;
        $("preview-callback-phone").value = "";
        refresh();
      }
    });
  });
  $("hangup").addEventListener("click", () => act("/hangup"));
  $("hold").addEventListener("click", () => {
    const held = desk.view && desk.view.on_hold_s !== null && desk.view.on_hold_s !== undefined;
    act(held ? "/resume" : "/hold");
  });
  $("drop-voicemail").addEventListener("click", () => act("/voicemail-drop"));
  $("transfer").addEventListener("click", () => {
    const to = $("transfer-to").value;
    if (to.startsWith(OUTSIDE)) act("/transfer", { outside: to.slice(OUTSIDE.length) });
    else act("/transfer", to ? { to } : {});
  });
  // An outside number takes no consultation.
  $("transfer-to").addEventListener("change", render);
  $("consult").addEventListener("click", () => {
    const to = $("transfer-to").value;
    act("/consult", to ? { to } : {});
  });
  $("complete-transfer").addEventListener("click", () => act("/transfer", {}));
  for (const key of document.querySelectorAll("#keypad button.key")) {
    key.addEventListener("click", async () => {
      await act("/dtmf", { digits: key.dataset.key });
      if (!$("message").textContent) log("sent " + key.dataset.key);
    });
  }
  $("end-consultation").addEventListener("click", () => act("/consult", undefined, "DELETE"));
  $("cancel-transfer").addEventListener("click", () => act("/transfer", undefined, "DELETE"));
  $("pause-recording").addEventListener("click", () => {
    act(desk.view && desk.view.recording_paused ? "/recording/resume" : "/recording/pause");
  });
  for (const button of document.querySelectorAll("button.edit-contact")) {
    button.addEventListener("click", openContactEditor);
  }
  $("contact-save").addEventListener("click", saveContact);
  $("contact-close").addEventListener("click", () => $("contact-edit").classList.add("hidden"));
  $("callback-edit-save").addEventListener("click", saveCallback);
  $("callback-edit-close").addEventListener("click", () => {
    desk.editing = null;
    $("callback-edit").classList.add("hidden");
  });
  $("guide-back").addEventListener("click", () => {
    desk.guideAnswers.pop();
    saveGuide();
    render();
  });
  $("guide-next").addEventListener("click", () => {
    const text = $("guide-text").value.trim();
    if (!text) return say("type the customer's answer first");
    const pop = currentPop();
    const campaign = pop && desk.campaigns.find((c) => c.name === pop.campaign);
    const question = campaign && guideQuestion(campaign.guide || []);
    if (question) {
      $("guide-text").value = "";
      answerGuide(question, text);
    }
  });
  $("save-disposition").addEventListener("click", () => {
    const body = {
      code: $("disposition").value,
      notes: $("notes").value,
      guide: desk.guideAnswers,
      do_not_call: $("disposition-dnc").checked,
    };
    const at = $("callback-at").value;
    if (at) {
      body.callback_at = new Date(at).toISOString();
      body.callback_personal = $("callback-personal").checked;
      const phone = $("callback-phone").value.trim();
      if (phone) body.callback_phone = phone;
    }
    act("/disposition", body).then(() => {
      if (!$("message").textContent) {
        desk.guideAnswers = [];
        saveGuide();
        $("notes").value = "";
        $("disposition-dnc").checked = false;
        $("callback-at").value = "";
        $("callback-phone").value = "";
        refresh();
      }
    });
  });
  if (desk.id && outdial.token()) open();
});
