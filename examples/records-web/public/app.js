// The records-web example: the reference system's client (npm `trailbase`, copied to
// ./trailbase.js by `npm run build`) against trail's auth and Record APIs.
import { initClient } from "./trailbase.js";

const client = initClient(window.location.origin);
const todos = client.records("todos");
const $ = (id) => document.getElementById(id);
const items = new Map(); // id -> record

function render() {
  const openOnly = $("open-only").checked;
  const list = $("list");
  list.replaceChildren();
  const ids = [...items.keys()].sort((a, b) => b - a);
  let shown = 0;
  for (const id of ids) {
    const t = items.get(id);
    if (openOnly && t.done) continue;
    const li = document.createElement("li");
    li.dataset.id = String(id);
    li.className = t.done ? "done" : "";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !!t.done;
    box.onchange = () => todos.update(id, { done: box.checked ? 1 : 0 }).catch(show);
    const span = document.createElement("span");
    span.textContent = t.text;
    const del = document.createElement("button");
    del.textContent = "delete";
    del.onclick = () => todos.delete(id).catch(show);
    li.append(box, " ", span, " ", del);
    list.append(li);
    shown++;
  }
  $("count").textContent = `${shown} shown`;
}

function show(err) {
  $("error").textContent = String(err?.message ?? err);
}

async function load() {
  // list: newest first, a count, and (when asked) a filter on `done`
  const filters = $("open-only").checked ? [{ column: "done", op: "equal", value: "0" }] : [];
  const res = await todos.list({ order: ["-id"], count: true, filters });
  items.clear();
  for (const t of res.records) items.set(t.id, t);
  document.body.dataset.total = String(res.total_count); // the server's count=true
  render();
}

async function live() {
  // realtime: every insert, update and delete of this user's to-dos, from any client
  const stream = await todos.subscribeAll();
  for await (const ev of stream) {
    if (ev.Insert) items.set(ev.Insert.id, ev.Insert);
    if (ev.Update) items.set(ev.Update.id, ev.Update);
    if (ev.Delete) items.delete(ev.Delete.id);
    render();
    document.body.dataset.events = String(Number(document.body.dataset.events ?? 0) + 1);
  }
}

$("login").onsubmit = async (e) => {
  e.preventDefault();
  try {
    await client.login($("email").value, $("password").value);
    $("status").textContent = `signed in as ${client.user()?.email}`;
    $("login").hidden = true;
    $("add").hidden = false;
    await load();
    live().catch(show);
  } catch (err) {
    show(err);
  }
};

$("add").onsubmit = async (e) => {
  e.preventDefault();
  try {
    const id = await todos.create({ owner: client.user().id, text: $("text").value });
    $("text").value = "";
    document.body.dataset.created = String(id);
  } catch (err) {
    show(err);
  }
};

$("open-only").onchange = () => load().catch(show);
