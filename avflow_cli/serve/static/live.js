// Live mode: a conversation with the always-on avatar over WS /v1/live (protocol version 1, see
// docs/serve.md "Live"). Microphone → AudioWorklet → 16 kHz int16 up; camera → 320×240 JPEG at
// 10 fps up; the avatar's PCM is scheduled on the Web Audio clock at origin + t (a jitter buffer of
// JITTER_S) and each avatar frame is drawn when that clock reaches origin + its t, so sound and
// picture stay in step. window.avflow.live holds the page's state and counters (tests read them).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MIC_RATE = 16000, CAMERA_FPS = 10, CAMERA_W = 320, CAMERA_H = 240, JITTER_S = 0.25;
  const KIND_MIC = 1, KIND_CAMERA = 2, KIND_AUDIO = 0x81, KIND_FRAME = 0x82;
  const MAX_KEPT_AUDIO_S = 120;  // received audio kept for takeAudio() (tests, saving a session)

  const fresh = () => ({
    state: "idle", ready: null, stats: null, error: null, closeCode: null, closeReason: null,
    notices: [], events: [], said: {},
    counters: {audioMessages: 0, audioSeconds: 0, framesReceived: 0, framesDrawn: 0, underruns: 0,
               maxAudioGapMs: 0, maxFrameGapMs: 0, audioHoles: 0, micSamplesSent: 0, cameraFramesSent: 0, saysSent: 0,
               firstAudioAfterSayMs: [], drawnFps: 0},
  });
  const live = window.avflow.live = fresh();
  let ws = null, ctx = null, origin = null, mic = null, camera = null, audioKept = [], frames = new Map();
  let waitingSays = [], nextAudioIndex = 0, lastAudioAt = null, lastFrameAt = null, drawTimes = [], sayAt = {}, startedTicks = null;

  function status(message, isError) {
    const el = $("live-status");
    el.textContent = message;
    el.classList.toggle("error", Boolean(isError));
  }

  function send(kind, payload) {  // [kind, 0, 0, 0] + payload
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    const data = new Uint8Array(4 + payload.byteLength);
    data[0] = kind;
    data.set(new Uint8Array(payload.buffer || payload, payload.byteOffset || 0, payload.byteLength), 4);
    ws.send(data);
    return true;
  }

  // ------------------------------------------------------------------------------------------ down
  function onAudio(index, t, pcm, rate) {
    const c = live.counters, now = performance.now();
    if (lastAudioAt !== null) c.maxAudioGapMs = Math.max(c.maxAudioGapMs, now - lastAudioAt);
    lastAudioAt = now;
    if (c.audioMessages && index !== nextAudioIndex) c.audioHoles += 1;  // the session clock must run on without holes
    nextAudioIndex = index + pcm.length;
    c.audioMessages += 1;
    c.audioSeconds += pcm.length / rate;
    audioKept.push([index, pcm]);
    while (audioKept.length && (index - audioKept[0][0]) / rate > MAX_KEPT_AUDIO_S) audioKept.shift();
    if (origin === null) origin = ctx.currentTime + JITTER_S - t;
    let when = origin + t;
    if (when < ctx.currentTime + 0.01) {  // it came too late: an underrun; the buffer is rebuilt
      c.underruns += 1;
      origin = ctx.currentTime + JITTER_S - t;
      when = origin + t;
    }
    const buffer = ctx.createBuffer(1, pcm.length, rate);
    const samples = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    buffer.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    source.start(when);
    const end = t + pcm.length / rate;
    waitingSays = waitingSays.filter((w) => {  // first audio after Say: press → that sample plays
      if (w.t >= end) return true;
      const audibleMs = now + (when + Math.max(0, w.t - t) - ctx.currentTime) * 1000;
      c.firstAudioAfterSayMs.push(audibleMs - sayAt[w.tag]);
      return false;
    });
  }

  function onFrame(index, t, jpeg) {
    const c = live.counters, now = performance.now();
    if (lastFrameAt !== null) c.maxFrameGapMs = Math.max(c.maxFrameGapMs, now - lastFrameAt);
    lastFrameAt = now;
    c.framesReceived += 1;
    createImageBitmap(new Blob([jpeg], {type: "image/jpeg"})).then((bitmap) => frames.set(index, {t, bitmap}));
  }

  function draw() {  // the newest frame whose time has come on the audio clock
    if (live.state !== "live" && live.state !== "stopping") return;
    if (ctx && origin !== null) {
      const playing = ctx.currentTime - origin;
      let best = null;
      for (const [index, f] of frames) {
        if (f.t <= playing && (best === null || index > best)) best = index;
      }
      if (best !== null) {
        const canvas = $("live-avatar");
        canvas.getContext("2d").drawImage(frames.get(best).bitmap, 0, 0, canvas.width, canvas.height);
        for (const [index, f] of frames) if (index <= best) { f.bitmap.close(); frames.delete(index); }
        const now = performance.now();
        live.counters.framesDrawn += 1;
        drawTimes.push(now);
        while (drawTimes.length && now - drawTimes[0] > 1000) drawTimes.shift();
        live.counters.drawnFps = drawTimes.length;
      }
    }
    requestAnimationFrame(draw);
  }

  function onText(msg) {
    if (msg.type === "ready") {
      live.ready = msg;
      live.state = "live";
      startedTicks = performance.now();
      status(`live — the avatar listens${msg.guidance ? "" : " (this model does not react to you)"}; ` +
             `say something or type a line`);
      $("live-say").disabled = $("live-interrupt").disabled = false;
      startInputs();
      requestAnimationFrame(draw);
    } else if (msg.type === "queued") {
      status(`waiting for the model (position ${msg.position})…`);
    } else if (msg.type === "said") {
      live.said[msg.id] = msg.tag;
    } else if (msg.type === "event") {
      live.events.push(msg);
      const tag = live.said[msg.id];
      if (msg.event === "say_start" && tag !== undefined && sayAt[tag] !== undefined) {
        waitingSays.push({t: msg.t, tag});  // timed when the audio holding its first sample is scheduled
      }
    } else if (msg.type === "stats") {
      live.stats = msg;
    } else if (msg.type === "notice") {
      live.notices.push(msg);
      status(msg.message, msg.code === "no_face" || msg.code === "say_refused");
    } else if (msg.type === "error") {
      live.error = msg.message;
      status(msg.message, true);
    } else if (msg.type === "bye") {
      live.stats = msg.stats;
    }
    showNumbers();
  }

  function onBinary(data) {
    const view = new DataView(data);
    const kind = view.getUint8(0), index = view.getUint32(4, true), t = view.getFloat64(8, true);
    if (kind === KIND_AUDIO) onAudio(index, t, new Int16Array(data.slice(16)), live.ready.sample_rate);
    else if (kind === KIND_FRAME) onFrame(index, t, data.slice(16));
  }

  function showNumbers() {
    const c = live.counters, s = live.stats ? live.stats.session : {}, link = live.stats ? live.stats.link : {};
    const last = (xs) => (xs && xs.length ? xs[xs.length - 1] : null);
    const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`);
    const sec = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 1000)} ms`);
    $("live-first-audio").textContent = ms(last(c.firstAudioAfterSayMs));
    $("live-reaction").textContent = sec(last(s.reaction_latency));
    $("live-fps").textContent = `${c.drawnFps} drawn/s`;
    $("live-underruns").textContent = String(c.underruns);
    const cpu = s.cpu_real_time_factor === undefined ? "" : ` (CPU ${s.cpu_real_time_factor.toFixed(2)})`;
    $("live-rtf").textContent = s.real_time_factor === undefined ? "—" : s.real_time_factor.toFixed(2) + cpu;
    $("live-behind").textContent = link.behind_s === undefined ? "—" : `${link.behind_s.toFixed(2)} s`;
  }

  // ------------------------------------------------------------------------------------------ up
  async function startMic() {
    if (mic || !ws) return;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: true}});
      if (!ctx.avflowWorklet) {  // a file of this server: the page's Content-Security-Policy allows only 'self' scripts
        await ctx.audioWorklet.addModule("/static/mic-worklet.js");
        ctx.avflowWorklet = true;
      }
      const node = new AudioWorkletNode(ctx, "avflow-downsampler", {processorOptions: {rate: MIC_RATE}});
      const silent = ctx.createGain();
      silent.gain.value = 0;
      const source = ctx.createMediaStreamSource(stream);
      source.connect(node).connect(silent).connect(ctx.destination);
      node.port.onmessage = (event) => {
        if (send(KIND_MIC, event.data)) live.counters.micSamplesSent += event.data.length;
      };
      mic = {stream, node, source};
    } catch (e) {
      status(`no microphone: ${e.message}`, true);
    }
  }

  async function startCamera() {
    if (camera || !ws) return;
    try {
      const stream = await navigator.mediaDevices.getUserMedia(
        {video: {width: CAMERA_W, height: CAMERA_H, frameRate: CAMERA_FPS}});
      const video = $("live-self");
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      const grab = document.createElement("canvas");
      grab.width = CAMERA_W; grab.height = CAMERA_H;
      const timer = setInterval(() => {
        if (!ws || ws.bufferedAmount > 256 * 1024 || video.readyState < 2) return;  // a slow link: skip frames
        grab.getContext("2d").drawImage(video, 0, 0, CAMERA_W, CAMERA_H);
        grab.toBlob(async (blob) => {
          if (blob && send(KIND_CAMERA, new Uint8Array(await blob.arrayBuffer()))) live.counters.cameraFramesSent += 1;
        }, "image/jpeg", 0.7);
      }, 1000 / CAMERA_FPS);
      camera = {stream, timer};
    } catch (e) {
      status(`no camera: ${e.message}`, true);
    }
  }

  function stopMic() {  // the session hears silence from now on
    if (!mic) return;
    mic.stream.getTracks().forEach((t) => t.stop());
    mic.source.disconnect();
    mic.node.port.onmessage = null;
    mic = null;
  }

  function stopCamera() {  // the session holds the last face it saw
    if (!camera) return;
    clearInterval(camera.timer);
    camera.stream.getTracks().forEach((t) => t.stop());
    camera = null;
    $("live-self").hidden = true;
  }

  function startInputs() {
    if ($("live-use-mic").checked) startMic();
    if ($("live-use-camera").checked) startCamera();
  }

  function stopInputs() {
    stopMic();
    stopCamera();
  }

  // ------------------------------------------------------------------------------------------ controls
  function start() {
    if (ws) return;
    Object.assign(live, fresh());
    audioKept = []; frames = new Map(); origin = null; lastAudioAt = lastFrameAt = null; drawTimes = []; sayAt = {};
    waitingSays = []; nextAudioIndex = 0;
    if (ctx) ctx.close();
    ctx = new AudioContext();
    ctx.resume();
    live.state = "connecting";
    status("connecting…");
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/live`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => ws.send(JSON.stringify({type: "hello", version: 1, sample_rate: MIC_RATE, video: "jpeg"}));
    ws.onmessage = (event) => (typeof event.data === "string" ? onText(JSON.parse(event.data)) : onBinary(event.data));
    ws.onclose = (event) => {
      live.closeCode = event.code;
      live.closeReason = event.reason;
      live.state = "closed";
      if (event.code !== 1000 && !live.error) status(`the live connection closed (${event.code}) ${event.reason}`, true);
      else if (event.code === 1000) status("live session ended");
      finish();
    };
    $("live-start").disabled = true;
    $("live-stop").disabled = false;
    $("live-avatar").hidden = false;
    $("live-placeholder").hidden = true;
  }

  function finish() {
    stopInputs();
    ws = null;
    $("live-start").disabled = false;
    $("live-stop").disabled = $("live-say").disabled = $("live-interrupt").disabled = true;
  }

  function stop() {
    if (!ws) return;
    live.state = "stopping";
    stopInputs();
    try { ws.send(JSON.stringify({type: "stop"})); } catch (e) { ws.close(); }
  }

  function say(event) {
    event.preventDefault();
    const text = $("live-text").value.trim();
    if (!text || !ws) return;
    const tag = `t${++live.counters.saysSent}`;
    sayAt[tag] = performance.now();
    ws.send(JSON.stringify({type: "say", text, tag}));
  }

  // The received audio on the session clock (gaps silent) as base64 int16 LE, for tests and saving.
  live.takeAudio = () => {
    if (!audioKept.length) return "";
    const base = audioKept[0][0];
    const end = Math.max(...audioKept.map(([i, p]) => i + p.length));
    const all = new Int16Array(end - base);
    for (const [i, p] of audioKept) all.set(p, i - base);
    const bytes = new Uint8Array(all.buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  live.audioStart = () => (audioKept.length ? audioKept[0][0] : null);
  live.audioEnd = () => nextAudioIndex;  // first sample not received yet

  $("live-use-mic").addEventListener("change", (e) => (e.target.checked ? startMic() : stopMic()));
  $("live-use-camera").addEventListener("change", (e) => (e.target.checked ? startCamera() : stopCamera()));
  $("live-start").addEventListener("click", start);
  $("live-stop").addEventListener("click", stop);
  $("live-say-form").addEventListener("submit", say);
  $("live-interrupt").addEventListener("click", () => ws && ws.send(JSON.stringify({type: "interrupt"})));
})();
