// The avflow page: video mode (a job → preview.mp4) and streaming mode (WebSocket chunks → Web Audio
// + the server's avatar frames on a canvas, in step with the audio clock). window.avflow exposes the
// page's state for tests and curious users.
"use strict";

const $ = (id) => document.getElementById(id);
const page = window.avflow = {health: null, job: null, stream: null};
let audioCtx = null;

function setStatus(el, message, isError) {
  el.textContent = message;
  el.classList.toggle("error", Boolean(isError));
}

async function errorText(response) {
  try { const body = await response.json(); return body.error || JSON.stringify(body); }
  catch (e) { return `HTTP ${response.status}`; }
}

async function loadHealth() {
  try {
    const response = await fetch("/health");
    const h = page.health = await response.json();
    const model = (h.models.avflow || "").split("/").slice(-2).join("/");
    $("health").textContent = `model ${model} · vocoder ${h.models.vocoder} · device ${h.device} · avatar ${h.avatar} · ` +
      `listens ${h.guidance ? "yes" : "no"} · avflow ${h.version}`;
    $("text").maxLength = h.limits.max_text_chars;
    $("listen-text").maxLength = h.limits.max_text_chars;
    $("steps").max = h.limits.max_steps;
    $("steps").placeholder = String(h.model_config_steps);
    if (!h.guidance) {
      $("listen-note").textContent = h.guidance_note;
      $("listen-note").hidden = false;
    }
  } catch (e) {
    $("health").textContent = "the server does not answer";
  }
}

function options() {
  const steps = $("steps").value.trim();
  return {text: $("text").value, seed: parseInt($("seed").value || "0", 10),
          steps: steps ? parseInt(steps, 10) : null, speed: parseFloat($("speed").value || "1")};
}

function checkText(text, statusEl) {
  if (!text.trim()) { setStatus(statusEl, "Type something for the avatar to say.", true); return false; }
  const limit = page.health ? page.health.limits.max_text_chars : Infinity;
  if (text.length > limit) { setStatus(statusEl, `The text is ${text.length} characters; the limit is ${limit}.`, true); return false; }
  return true;
}

function show(which) {
  $("video").hidden = which !== "video";
  $("avatar").hidden = which !== "canvas";
  $("placeholder").hidden = which !== null;
}

function showDownloads(files) {
  const links = ["speech.wav", "motion.npz", "preview.mp4"].filter((n) => files[n])
    .map((n) => `<a href="${files[n]}" download="${n}">${n}</a>`);
  $("downloads").innerHTML = links.join("");
}

// ---------------------------------------------------------------------------------------------- jobs
async function followJob(job, statusEl) {
  page.job = job;
  while (job.status === "queued" || job.status === "running") {
    setStatus(statusEl, job.status === "queued" ? `queued (position ${job.position ?? "?"})…` : "generating…");
    await new Promise((resolve) => setTimeout(resolve, 250));
    const response = await fetch(job.url);
    if (!response.ok) { setStatus(statusEl, await errorText(response), true); return; }
    job = page.job = await response.json();
  }
  if (job.status !== "done") { setStatus(statusEl, `failed: ${job.error}`, true); return; }
  const r = job.result || {};
  setStatus(statusEl, `done: ${Number(r.seconds).toFixed(2)} s of speech, real-time factor ${Number(r.real_time_factor).toFixed(2)}`);
  showDownloads(job.files);
  if (job.files["preview.mp4"]) {
    const video = $("video");
    video.src = job.files["preview.mp4"];
    show("video");
    video.play().catch(() => { /* autoplay refused: the controls are there */ });
  }
}

async function speakVideo(opts) {
  $("downloads").innerHTML = "";
  const response = await fetch("/v1/synthesize", {method: "POST", headers: {"Content-Type": "application/json"},
                                                  body: JSON.stringify(opts)});
  if (!response.ok) { setStatus($("status"), await errorText(response), true); return; }
  await followJob(await response.json(), $("status"));
}

// ---------------------------------------------------------------------------------------------- streaming
function speakStream(opts) {
  $("downloads").innerHTML = "";  // a stream leaves no files behind
  audioCtx = audioCtx || new AudioContext();
  audioCtx.resume();
  const s = page.stream = {startMs: performance.now(), acceptedMs: null, firstChunkMs: null, firstAudioMs: null,
                           endMs: null, error: null, chunks: 0, header: null, layout: null, nextTime: 0, origin: null,
                           images: new Map(), imageFps: 30, drawn: 0, closed: false, ws: null, lastImage: -1};
  const ws = s.ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`);
  ws.binaryType = "arraybuffer";
  $("stop").disabled = false;
  ws.onopen = () => ws.send(JSON.stringify({...opts, frames: true, schedule: $("schedule").value}));
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      const msg = JSON.parse(event.data);
      if (msg.type === "accepted") {
        s.acceptedMs = performance.now();
        s.layout = msg.motion_layout;
        s.avatar = msg.avatar;
        s.frames = msg.frames;
        setStatus($("status"), `streaming (${msg.schedule} schedule)…` + (msg.position > 1 ? ` (waiting: position ${msg.position})` : ""));
      } else if (msg.type === "chunk") {
        s.header = msg;
      } else if (msg.type === "end") {
        s.endMs = performance.now();
        const since = (t) => (t === null ? "-" : ((t - s.startMs) / 1000).toFixed(2));
        setStatus($("status"), `streamed ${msg.chunks} chunk(s), ${msg.seconds.toFixed(2)} s of speech; first audio after ` +
                  `${since(s.firstAudioMs)} s, all after ${since(s.endMs)} s`);
      } else if (msg.type === "error") {
        s.error = msg.message;
        setStatus($("status"), msg.message, true);
      }
      return;
    }
    receiveChunk(s, s.header, event.data);
  };
  ws.onclose = () => { s.closed = true; $("stop").disabled = true; };
  ws.onerror = () => { if (!s.error) setStatus($("status"), "the stream connection failed", true); };
}

// payload: float32 audio, float32 motion rows, then JPEG frames (sizes in header.image_bytes).
// Audio plays back to back; s.origin is the audio-clock time of speech time 0 (moved on if the
// network falls behind), and image k is drawn at s.origin + k / image_fps.
function receiveChunk(s, header, payload) {
  if (s.firstChunkMs === null) s.firstChunkMs = performance.now();
  s.chunks += 1;
  s.imageFps = header.image_fps;
  if (header.n_audio > 0) {
    const audio = new Float32Array(payload, 0, header.n_audio);
    const buffer = audioCtx.createBuffer(1, header.n_audio, header.sample_rate);
    buffer.copyToChannel(audio, 0);
    const source = audioCtx.createBufferSource();
    source.buffer = buffer;
    source.connect(audioCtx.destination);
    const startAt = Math.max(s.nextTime, audioCtx.currentTime + 0.05);
    source.start(startAt);
    s.nextTime = startAt + header.n_audio / header.sample_rate;
    s.origin = Math.max(s.origin ?? -Infinity, startAt - header.t_start);
    if (s.firstAudioMs === null) {
      s.firstAudioMs = performance.now();
      if (s.frames) { show("canvas"); requestAnimationFrame(() => animate(s)); }
      else setStatus($("status"), "this model carries no avatar to draw: streaming audio only");
    }
  }
  let offset = 4 * (header.n_audio + header.n_frames * header.motion_dim);
  header.image_bytes.forEach((size, k) => {
    const jpeg = new Blob([new Uint8Array(payload, offset, size)], {type: "image/jpeg"});
    offset += size;
    const index = header.image_start + k;
    createImageBitmap(jpeg).then((bitmap) => {
      if (index <= s.lastImage) bitmap.close();  // arrived too late to be shown
      else s.images.set(index, bitmap);
    });
  });
}

// draws the image of the speech time playing now (by the audio clock)
function animate(s) {
  if (page.stream !== s) return;
  const now = audioCtx.currentTime;
  const k = Math.floor((now - s.origin) * s.imageFps);
  let shown = -1;
  for (let j = Math.max(0, k); j > s.lastImage; j--) {  // the newest image at or before k
    if (s.images.has(j)) { shown = j; break; }
  }
  if (shown > s.lastImage) {
    const canvas = $("avatar");
    canvas.getContext("2d").drawImage(s.images.get(shown), 0, 0, canvas.width, canvas.height);
    for (let j = Math.max(0, s.lastImage); j <= shown; j++) {  // shown or skipped: free them
      const old = s.images.get(j);
      if (old) { old.close(); s.images.delete(j); }
    }
    s.lastImage = shown;
    s.drawn += 1;
  }
  const finished = s.endMs !== null && now > s.nextTime + 0.1;
  if (!finished && !s.error) requestAnimationFrame(() => animate(s));
}

function stopStream() {
  const s = page.stream;
  if (!s || !s.ws) return;
  try { s.ws.send(JSON.stringify({type: "cancel"})); } catch (e) { /* already closed */ }
  s.ws.close();
  if (audioCtx) { audioCtx.close(); audioCtx = null; }
  page.stream = null;
  setStatus($("status"), "stopped");
}

// ---------------------------------------------------------------------------------------------- listening
let recorder = null;
async function toggleRecording() {
  if (recorder) { recorder.stop(); return; }
  try {
    const media = await navigator.mediaDevices.getUserMedia({audio: true});
    const parts = [];
    recorder = new MediaRecorder(media);
    recorder.ondataavailable = (e) => parts.push(e.data);
    recorder.onstop = () => {
      media.getTracks().forEach((t) => t.stop());
      const blob = new Blob(parts, {type: recorder.mimeType});
      const files = new DataTransfer();
      files.items.add(new File([blob], "recording.webm", {type: blob.type}));
      $("listen-audio").files = files.files;
      recorder = null;
      $("record").textContent = "Record";
      setStatus($("listen-status"), `recorded ${(blob.size / 1024).toFixed(0)} KiB`);
    };
    recorder.start();
    $("record").textContent = "Stop recording";
  } catch (e) {
    setStatus($("listen-status"), `cannot record: ${e.message}`, true);
  }
}

async function listen(event) {
  event.preventDefault();
  const statusEl = $("listen-status");
  const form = new FormData($("listen-form"));
  const audio = $("listen-audio").files[0];
  if (!audio) { setStatus(statusEl, "Choose or record your audio first.", true); return; }
  const size = audio.size + ($("listen-video").files[0]?.size || 0);
  const limit = page.health ? page.health.limits.max_upload_bytes : Infinity;
  if (size > limit) { setStatus(statusEl, `The upload is ${(size / 1048576).toFixed(1)} MiB; the limit is ${(limit / 1048576).toFixed(1)} MiB.`, true); return; }
  const o = options();
  form.set("seed", String(o.seed));
  form.set("speed", String(o.speed));
  if (o.steps !== null) form.set("steps", String(o.steps));
  setStatus(statusEl, "uploading…");
  const response = await fetch("/v1/listen", {method: "POST", body: form});
  if (!response.ok) { setStatus(statusEl, await errorText(response), true); return; }
  await followJob(await response.json(), statusEl);
}

// ---------------------------------------------------------------------------------------------- wiring
$("speak-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const opts = options();
  if (!checkText(opts.text, $("status"))) return;
  $("speak").disabled = true;
  try {
    if ($("mode-stream").checked) speakStream(opts);
    else await speakVideo(opts);
  } catch (e) {
    setStatus($("status"), `request failed: ${e.message}`, true);
  } finally {
    $("speak").disabled = false;
  }
});
$("stop").addEventListener("click", stopStream);
$("record").addEventListener("click", toggleRecording);
$("listen-form").addEventListener("submit", listen);
loadHealth();
