// unmask playground: sends the chat to /v1/diffusion/stream and draws every denoising
// step of the canvas — masked slots blurred, each token coloured by the step that
// committed it, so the unmasking order stays visible.
"use strict";

const $ = (id) => document.getElementById(id);
const history = [];  // {role, content}
let controller = null;

function options() {
  const num = (id) => Number($(id).value);
  const o = {
    max_tokens: num("max_tokens"), block_length: num("block_length"), algorithm: $("algorithm").value,
    threshold: num("threshold"), cache: $("cache").value, temperature: num("temperature"), seed: num("seed"),
  };
  if (num("steps_opt") > 0) o.steps = num("steps_opt");
  return o;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("messages").appendChild(div);
  return div;
}

// The canvas: one span per answer slot. commitStep[i] = the step that committed slot i.
class CanvasView {
  constructor(root) { this.root = root; this.slots = []; this.commitStep = []; this.steps = 0; root.textContent = ""; }
  update(ev) {
    while (this.slots.length < ev.canvas.length) {
      const s = document.createElement("span");
      s.className = "slot masked";
      s.textContent = " ";
      this.root.appendChild(s);
      this.slots.push(s);
      this.commitStep.push(0);
    }
    for (const s of this.slots) s.classList.remove("fresh");
    ev.committed.forEach((slot, k) => {
      const s = this.slots[slot];
      s.className = "slot fresh";
      s.textContent = ev.pieces[k];
      s.title = "committed at step " + ev.step;
      this.commitStep[slot] = ev.step;
    });
    for (const i of ev.masked) { this.slots[i].className = "slot masked"; this.slots[i].textContent = " "; }
    this.steps = ev.step;
    this.recolour();
    this.root.dataset.steps = String(ev.step);
  }
  // Older commits fade from warm (early steps) to cool (late steps).
  recolour() {
    const last = Math.max(1, this.steps);
    this.slots.forEach((s, i) => {
      if (s.classList.contains("masked") || s.classList.contains("fresh")) { s.style.background = ""; return; }
      const hue = 30 + 200 * (this.commitStep[i] / last);
      s.style.background = `hsl(${hue} 45% 28%)`;
    });
  }
}

async function send(text) {
  $("error").textContent = "";
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const view = new CanvasView($("canvas"));
  const headers = { "Content-Type": "application/json" };
  if ($("api_key").value) headers.Authorization = "Bearer " + $("api_key").value;
  controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  const started = performance.now();
  let answer = "", committed = 0;
  try {
    const res = await fetch("/v1/diffusion/stream", {
      method: "POST", headers, signal: controller.signal,
      body: JSON.stringify({ messages: history, ...options() }),
    });
    if (!res.ok) throw new Error((await res.json()).error.message);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const ev = JSON.parse(data);
        if (ev.error) throw new Error(ev.error.message);
        if (ev.done) { answer = ev.text; continue; }
        view.update(ev);
        committed += ev.committed.length;
        const seconds = (performance.now() - started) / 1000;
        $("steps").textContent = ev.step;
        $("tps").textContent = (committed / seconds).toFixed(1);
        $("fpt").textContent = committed ? (ev.step / committed).toFixed(2) : "–";
      }
    }
    history.push({ role: "assistant", content: answer });
    addMessage("assistant", answer);
  } catch (e) {
    if (e.name !== "AbortError") $("error").textContent = String(e.message || e);
    history.pop();
  } finally {
    controller = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
}

$("prompt-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("prompt-form").requestSubmit(); }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("clear").addEventListener("click", () => { history.length = 0; $("messages").textContent = ""; });
fetch("/health").then((r) => r.json()).then((h) => { $("model-name").textContent = h.model; }).catch(() => {});
