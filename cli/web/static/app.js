// The page of `strangers web`. It speaks the --json protocol (docs/protocol.md §7) over one WebSocket,
// plus the page's own start/stop commands and hello/starting/idle events (§7.4). It decides no protocol:
// it shows events and turns clicks and keys into commands. Stranger text only ever goes into textContent.
"use strict";

const TYPING_IDLE_MS = 5000; // Omegle's rule: 5 s without a keystroke is "stopped typing"
const MAX_LINES = 2000; // the log keeps this many lines
const WARNING_NAMES = {link: "a link", email: "an e-mail address", phone: "a phone number",
                       handle: "an account on another app"};

// ISO 639-1 codes offered on the front page (the node's own, from --lang or the locale, is added if missing)
const LANGUAGES = {ar: "Arabic", bn: "Bengali", cs: "Czech", da: "Danish", de: "German", el: "Greek",
                   en: "English", es: "Spanish", fa: "Persian", fi: "Finnish", fr: "French", he: "Hebrew",
                   hi: "Hindi", hu: "Hungarian", id: "Indonesian", it: "Italian", ja: "Japanese", ko: "Korean",
                   nl: "Dutch", no: "Norwegian", pl: "Polish", pt: "Portuguese", ro: "Romanian", ru: "Russian",
                   sv: "Swedish", th: "Thai", tl: "Tagalog", tr: "Turkish", uk: "Ukrainian", ur: "Urdu",
                   vi: "Vietnamese", zh: "Chinese"};

const token = new URLSearchParams(location.search).get("t") || "";
const $ = (id) => document.getElementById(id);
const page = {
  phase: "front", // front | starting | searching | chatting | ended
  confirming: false, // Stop pressed once: "Really?"
  interests: [],
  interestsFromNode: false,
  typingSent: false,
  typingTimer: null,
  sentLines: new Map(), // message id -> line, to mark it delivered
  commands: new Set(),
  asking: "", // the question this page asks (question mode: it watches and cannot type)
  joined: new Set(), // question mode: the strangers (1, 2) here now
  hadChat: false, // since the last Start: someone was here (the log can be saved, the last stranger reported)
  leaving: false, // Stop was confirmed: what ends now, we ended
  watched: false, // our chat is watched (someone asked a question)
  optionsChosen: false, // the person changed the language or the questions box: hello does not reset them
  socket: null,
};

// -- the WebSocket --------------------------------------------------------------------------------

function connect() {
  const socket = new WebSocket(`ws://${location.host}/ws?t=${encodeURIComponent(token)}`);
  page.socket = socket;
  socket.addEventListener("open", () => showConnection(""));
  socket.addEventListener("message", (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (error) { return; }
    if (event && typeof event.event === "string") handle(event);
  });
  socket.addEventListener("close", () => {
    page.socket = null;
    showConnection("Lost the connection to strangers. Is it still running? Reload the page once it is.");
    setPhase(page.phase === "front" ? "front" : "ended");
  });
}

function command(obj) {
  if (page.socket && page.socket.readyState === WebSocket.OPEN) page.socket.send(JSON.stringify(obj));
}

function showConnection(text) {
  $("connection").textContent = text;
  $("connection").hidden = !text;
}

// -- events -----------------------------------------------------------------------------------------

function handle(event) {
  switch (event.event) {
    case "hello":
      page.commands = new Set(event.commands || []);
      for (const name of ["report", "block", "save", "keep"]) $(name).hidden = !page.commands.has(name);
      if (!page.interests.length && Array.isArray(event.interests)) setInterests(event.interests);
      if (!page.optionsChosen) {
        if (typeof event.lang === "string") setLang(event.lang);
        $("questions").checked = event.questions === true;
      }
      if (event.running && event.question) page.asking = event.question; // a reload while asking
      if (!event.running) setPhase("front");
      break;
    case "starting":
      page.hadChat = false;
      clearLog();
      setPhase("starting");
      system("Connecting to the strangers network...");
      break;
    case "ready":
      break;
    case "searching":
      if (page.asking && page.phase === "chatting") break; // the other slot looks on: the question goes on
      if (page.asking) {
        if (page.phase !== "searching") {
          clearLog();
          setPhase("searching");
          system(`Question to discuss: ${page.asking}`, "question");
          system("Looking for two strangers to discuss your question...");
        }
        break;
      }
      if (page.phase !== "searching") clearLog();
      setPhase("searching");
      if (event.random && event.interests.length) {
        system("Nobody who shares your interests is around, so the next stranger will be completely random. "
               + "Try adding more interests!");
      } else {
        system("Looking for someone you can chat with..."
               + (event.lang ? ` (${languageName(event.lang)} speakers first)` : ""));
      }
      break;
    case "matched":
      clearLog();
      page.hadChat = true;
      page.watched = Boolean(event.question); // keeping in touch is for one-to-one chats: no Keep button
      $("keep").disabled = false;
      setPhase("chatting");
      system("You're now chatting with a random stranger. Say hi!");
      if (event.contact) system(`This is your contact ${event.contact}: you kept in touch.`);
      if (event.common_interests.length) system(`You both like ${humanList(event.common_interests)}.`);
      if (event.lang) system(`The stranger speaks ${languageName(event.lang)}.`);
      if (event.question) {
        system(`Question to discuss: ${event.question}`, "question");
        system("Someone is watching: a stranger asked this question and reads what you both write.",
               "question");
      }
      $("safety-code").textContent = event.safety_code;
      showPath(event.path, false);
      system(`Safety code: ${event.safety_code} (compare it with the stranger's to be sure nobody is in between)`);
      $("input").focus();
      break;
    case "path":
      showPath(event.path, true);
      break;
    case "message":
      if (event.warnings && event.warnings.length) {
        system(`Careful: the next message holds ${humanList(event.warnings.map((w) => WARNING_NAMES[w] || w))}. `
               + "Strangers who move you to another app or site are a classic first step of grooming; "
               + "you never have to follow.", "warning");
      }
      setTyping(false);
      if (event.hidden) {
        const line = system("Stranger: [a message hidden by your word filter] ", "hidden");
        const reveal = document.createElement("button");
        reveal.type = "button";
        reveal.textContent = "Show it";
        reveal.addEventListener("click", () => command({cmd: "reveal"}));
        line.append(reveal);
      } else {
        said("stranger", "Stranger", event.text);
      }
      break;
    case "revealed":
      said("stranger", "Stranger (revealed)", event.text);
      break;
    case "sent":
      page.sentLines.set(event.id, said("you", "You", event.text));
      break;
    case "delivered": {
      const line = page.sentLines.get(event.id);
      if (line) line.classList.add("delivered");
      break;
    }
    case "typing":
      setTyping(event.active);
      break;
    case "stranger_left":
      page.leaving = false;
      setTyping(false);
      system(event.reason === "blocked" && event.by_us
        ? "You blocked this stranger: you will not be matched with them again."
        : event.by_us ? "You have disconnected." : "Stranger has disconnected.", "left");
      setPhase("ended");
      break;
    case "idle":
      if (page.phase === "searching" || page.phase === "starting") {
        system("You stopped looking.", "left");
        setPhase("ended");
      }
      break;
    case "question_joined":
      page.joined.add(event.stranger);
      page.hadChat = true;
      if (page.phase !== "chatting") {
        setPhase("chatting");
        system("You're now watching two strangers discuss your question! You cannot type: "
               + "each stranger talks to the other through you, encrypted to you.", "question");
      }
      system(`Stranger ${event.stranger} has joined`
             + (event.common_interests.length ? ` (likes ${humanList(event.common_interests)})` : "")
             + (event.lang ? `, speaks ${languageName(event.lang)}` : "")
             + `. Safety code of your chat with them: ${event.safety_code}`);
      break;
    case "question_message":
      setQuestionTyping(event.stranger, false);
      said(`stranger${event.stranger === 2 ? 2 : 1}`, `Stranger ${event.stranger}`, event.text);
      break;
    case "question_typing":
      setQuestionTyping(event.stranger, event.active);
      break;
    case "question_left": {
      setQuestionTyping(event.stranger, false);
      const wasHere = page.joined.delete(event.stranger);
      if (!event.by_us) {
        system(`Stranger ${event.stranger} has disconnected.`, "left");
      } else if (wasHere && page.leaving) {
        page.leaving = false; // our Stop: said once for both
        system("You have disconnected.", "left");
      }
      if (!page.joined.size && page.phase === "chatting") {
        setPhase("ended");
        system("The question is over. New asks it again, to two new strangers.");
      }
      break;
    }
    case "reported":
      system(`Report saved in ${event.path}. It stays on this computer unless you send it on.`);
      break;
    case "saved": // save the log (issue 12 item 5): only when asked
      system(`The conversation is saved in ${event.path}.`);
      break;
    case "language":
      setLang(event.lang);
      if (page.phase === "starting") break; // New with another language: "searching" says which
      system(event.lang ? `Language: ${languageName(event.lang)}. Strangers who speak it come first.`
        : "Language: none. Any stranger.");
      break;
    case "keep_offered":
      system("You offered to keep in touch. Nothing is exchanged unless the stranger agrees.");
      break;
    case "keep_asked": {
      const line = system("Stranger wants to keep in touch: ", "keep");
      const agree = document.createElement("button");
      agree.type = "button";
      agree.textContent = "Keep";
      agree.title = "Agree: you both can find each other again later (ignore it to decline)";
      agree.addEventListener("click", () => { agree.disabled = true; command({cmd: "keep"}); });
      line.append(agree);
      break;
    }
    case "kept":
      $("keep").disabled = true;
      system(`You kept in touch: the stranger is saved as "${event.name}". `
             + `Run "strangers contact ${event.name}" to find them again.`);
      break;
    case "warning":
      system(`! ${event.message}`, "warning");
      break;
    case "error":
      system(`! error: ${event.message}`, "error");
      break;
    default:
      // events this page does not know yet: ignored
      break;
  }
}

// -- what the person does -----------------------------------------------------------------------------

function stopOrNew() {
  if (page.phase === "front" || page.phase === "ended") {
    start();
  } else if (!page.confirming) {
    page.confirming = true; // Omegle's habit: Stop, then "Really?"
    renderStop();
  } else {
    page.confirming = false;
    page.leaving = true;
    command({cmd: "stop"});
    renderStop();
  }
}

function start() {
  addInterest($("interest-input").value); // what is still in the box counts too
  clearLog();
  system("Connecting...");
  setPhase("starting");
  page.joined.clear();
  page.hadChat = false;
  page.leaving = false;
  page.watched = false;
  const question = page.asking ? {question: page.asking} : {};
  command({cmd: "start", interests: page.interests, lang: $("lang").value, questions: $("questions").checked,
           ...question});
}

function ask() {
  const question = $("question-input").value.trim();
  if (!question) { $("question-input").focus(); return; }
  page.asking = question;
  document.body.classList.add("watching");
  start();
}

function startChat() { // Start: a chat of one's own (after asking, the page chats again)
  page.asking = "";
  document.body.classList.remove("watching");
  start();
}

function setQuestionTyping(stranger, active) {
  page.typingOf = page.typingOf || new Set();
  if (active) page.typingOf.add(stranger); else page.typingOf.delete(stranger);
  const who = [...page.typingOf].sort().map((number) => `Stranger ${number}`);
  $("typing").textContent = who.length ? `${humanList(who)} ${who.length > 1 ? "are" : "is"} typing...`
    : "Stranger is typing...";
  $("typing").hidden = !who.length;
}

function sendMessage() {
  const box = $("input");
  const text = box.value;
  if (!text.trim() || page.phase !== "chatting") return;
  command({cmd: "send", text});
  box.value = "";
  stopTyping();
}

function onInput() {
  if (page.phase !== "chatting") return;
  const drafting = $("input").value.trim() !== "";
  if (!drafting) { stopTyping(); return; }
  if (!page.typingSent) {
    page.typingSent = true;
    command({cmd: "typing", active: true});
  }
  clearTimeout(page.typingTimer);
  page.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(page.typingTimer);
  if (page.typingSent) {
    page.typingSent = false;
    if (page.phase === "chatting") command({cmd: "typing", active: false});
  }
}

// -- interests --------------------------------------------------------------------------------------

function addInterest(text) {
  for (const part of text.split(",")) {
    const interest = part.trim();
    if (interest && !page.interests.some((known) => known.toLowerCase() === interest.toLowerCase())) {
      page.interests.push(interest);
    }
  }
  $("interest-input").value = "";
  renderInterests();
}

function setInterests(list) {
  page.interests = [];
  addInterest(list.filter((item) => typeof item === "string").join(","));
}

function renderInterests() {
  const box = $("interests");
  for (const chip of box.querySelectorAll(".chip")) chip.remove();
  for (const interest of page.interests) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.textContent = interest;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "\u00d7";
    remove.title = `Remove ${interest}`;
    remove.addEventListener("click", () => {
      page.interests = page.interests.filter((known) => known !== interest);
      renderInterests();
    });
    chip.append(remove);
    box.insertBefore(chip, $("interest-input"));
  }
}

// -- the language ---------------------------------------------------------------------------------

function languageName(code) {
  return LANGUAGES[code] ? `${LANGUAGES[code]} (${code})` : code;
}

function fillLanguages() {
  const select = $("lang");
  const none = document.createElement("option");
  none.value = "";
  none.textContent = "any (no language)";
  select.append(none);
  for (const [code, name] of Object.entries(LANGUAGES).sort((x, y) => x[1].localeCompare(y[1]))) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = `${name} (${code})`;
    select.append(option);
  }
}

function setLang(code) {
  const select = $("lang");
  if (![...select.options].some((option) => option.value === code)) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = code;
    select.append(option);
  }
  select.value = code;
}

// -- the screen ---------------------------------------------------------------------------------------

function setPhase(phase) {
  if (phase !== page.phase) page.confirming = false;
  page.phase = phase;
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  document.body.className = `phase-${phase}${page.asking ? " watching" : ""}${page.watched ? " watched" : ""}`;
  if (atBottom) log.scrollTop = log.scrollHeight; // the log may have shrunk (the interests come back)
  const chatting = phase === "chatting";
  $("input").disabled = !chatting || Boolean(page.asking);
  $("send").disabled = !chatting || Boolean(page.asking);
  $("info").hidden = !(chatting || (phase === "ended" && page.hadChat));
  if (!chatting) {
    stopTyping();
    setTyping(false);
    if (page.typingOf) page.typingOf.clear();
  }
  if (phase === "front" || phase === "starting" || phase === "searching") $("safety-code").textContent = "";
  renderStop();
}

function renderStop() {
  const button = $("stop");
  const label = page.phase === "front" || page.phase === "ended" ? "New"
    : page.confirming ? "Really?" : "Stop";
  button.firstChild.textContent = label;
  button.classList.toggle("confirm", page.confirming);
}

function setTyping(active) {
  $("typing").hidden = !active;
}

function showPath(path, changed) {
  $("path").textContent = path === "relayed" ? "through a relay (it sees only encrypted bytes)" : "direct connection";
  if (path === "relayed") system("Through a relay (it passes on only encrypted bytes).");
  else if (changed) system("Now connected directly to the stranger.");
}

function humanList(items) {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

function clearLog() {
  $("log").replaceChildren();
  page.sentLines.clear();
}

function append(line) {
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(line);
  while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
  return line;
}

function system(text, kind) {
  const line = document.createElement("p");
  line.className = `system ${kind || ""}`.trim();
  line.textContent = text;
  return append(line);
}

function said(who, label, text) {
  const line = document.createElement("p");
  line.className = `said ${who}`;
  const name = document.createElement("strong");
  name.textContent = `${label}:`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text; // never HTML: a stranger's text stays text
  line.append(name, " ", body);
  return append(line);
}

// -- wiring ---------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("stop").addEventListener("click", stopOrNew);
  $("start").addEventListener("click", startChat);
  $("ask").addEventListener("click", ask);
  $("question-input").addEventListener("keydown", (key) => {
    if (key.key === "Enter" && !key.isComposing) { key.preventDefault(); ask(); }
  });
  $("send").addEventListener("click", sendMessage);
  $("report").addEventListener("click", () => command({cmd: "report"}));
  $("block").addEventListener("click", () => command({cmd: "block"}));
  $("save").addEventListener("click", () => command({cmd: "save"}));
  $("keep").addEventListener("click", () => { $("keep").disabled = true; command({cmd: "keep"}); });
  $("input").addEventListener("input", onInput);
  $("input").addEventListener("keydown", (key) => {
    if (key.key === "Enter" && !key.shiftKey && !key.isComposing) {
      key.preventDefault();
      sendMessage();
    }
  });
  $("interest-input").addEventListener("keydown", (key) => {
    if ((key.key === "Enter" || key.key === ",") && !key.isComposing) {
      key.preventDefault();
      if ($("interest-input").value.trim()) addInterest($("interest-input").value);
      else if (key.key === "Enter" && page.phase === "front") start();
    } else if (key.key === "Backspace" && !$("interest-input").value && page.interests.length) {
      page.interests.pop();
      renderInterests();
    }
  });
  document.addEventListener("keydown", (key) => {
    if (key.key === "Escape") {
      key.preventDefault();
      if (page.phase !== "starting" && page.phase !== "front") stopOrNew();
    }
  });
  fillLanguages();
  for (const id of ["lang", "questions"]) $(id).addEventListener("change", () => { page.optionsChosen = true; });
  renderStop();
  connect();
});
