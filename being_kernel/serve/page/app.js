// The page of `being serve`: one WebRTC session, speech from the microphone, a file or the API.
// No build step, no dependencies. ?autostart=1&source=microphone|file|none starts at once;
// ?measure=1 also records what arrives (see window.beingReport) for tests and benchmarks.
"use strict";
const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const token = new URLSearchParams(location.hash.slice(1)).get("token") || query.get("token");
let pc = null, session = null, statsTimer = null, micStream = null;
const report = { started: null, answered: null, firstFrame: null, frames: [], remote: [], local: [], stats: [] };
window.beingReport = () => report;

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error || response.statusText) + (body.hint ? " (" + body.hint + ")" : ""));
  return body;
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; }
function source() { return document.querySelector("input[name=source]:checked").value; }

async function loadInfo() {
  const info = await api("/api/info");
  for (const contract of ["audio", "avatar", "torso"]) {
    const select = $(contract);
    select.replaceChildren(...info.plugins[contract].map((name) => new Option(name, name)));
    select.value = info.defaults[contract];
  }
  return info;
}

function waitForIce(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (peer.iceGatheringState === "complete") { peer.removeEventListener("icegatheringstatechange", check); resolve(); } };
    peer.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000); // gather what we have: host candidates come at once
  });
}

// Loudness of an audio stream every ~5 ms, timed on the page's clock (performance.now()).
function recordLevels(stream, into) {
  const ctx = new AudioContext({ sampleRate: 48000 });
  const node = ctx.createScriptProcessor(256, 1, 1);
  node.onaudioprocess = (e) => {
    const x = e.inputBuffer.getChannelData(0);
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
    const stamp = ctx.getOutputTimestamp();
    const t = stamp.performanceTime + (e.playbackTime - x.length / ctx.sampleRate - stamp.contextTime) * 1000;
    into.push([t, Math.sqrt(sum / x.length)]);
  };
  report.audioLatency = { base: ctx.baseLatency, output: ctx.outputLatency };
  ctx.createMediaStreamSource(stream).connect(node);
  node.connect(ctx.destination); // a ScriptProcessor only runs when connected; its output is silent
  ctx.resume();
  return ctx;
}

// Frames shown per second where requestVideoFrameCallback is missing (Firefox before 132).
function countFrames(video) {
  let last = 0;
  const timer = setInterval(() => {
    if (!pc) { clearInterval(timer); return; }
    const shown = video.getVideoPlaybackQuality().totalVideoFrames;
    if (report.firstFrame === null && shown > 0) report.firstFrame = performance.now();
    $("fps").textContent = String(shown - last);
    last = shown;
  }, 1000);
}

// Each frame the page shows: when, and (measuring) a 96x96 grey thumbnail.
function watchFrames(video) {
  if (!("requestVideoFrameCallback" in video)) { countFrames(video); return; }
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 96;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  let times = [];
  const onFrame = (now, meta) => {
    if (report.firstFrame === null) report.firstFrame = meta.expectedDisplayTime;
    times.push(meta.expectedDisplayTime);
    times = times.filter((t) => t > meta.expectedDisplayTime - 1000);
    $("fps").textContent = times.length.toFixed(0);
    if (query.get("measure")) {
      g.drawImage(video, 0, 0, 96, 96);
      const rgba = g.getImageData(0, 0, 96, 96).data;
      let grey = "";
      for (let i = 0; i < rgba.length; i += 4) grey += String.fromCharCode((rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3 | 0);
      report.frames.push([meta.expectedDisplayTime, meta.mediaTime, btoa(grey)]);
    }
    if (pc) video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

async function start() {
  showError(null);
  report.started = performance.now();
  $("state").textContent = "connecting";
  pc = new RTCPeerConnection({ iceServers: window.iceServers || [] });
  const remote = new MediaStream();
  pc.ontrack = (e) => {
    remote.addTrack(e.track);
    $("video").srcObject = remote;
    if (e.track.kind === "audio" && query.get("measure")) recordLevels(new MediaStream([e.track]), report.remote);
  };
  pc.onconnectionstatechange = () => { $("state").textContent = pc ? pc.connectionState : "idle"; };
  pc.addTransceiver("video", { direction: "recvonly" });
  const mic = source() === "microphone";
  if (mic) {
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    pc.addTrack(micStream.getAudioTracks()[0], micStream);
    if (query.get("measure")) recordLevels(micStream, report.local);
  } else {
    pc.addTransceiver("audio", { direction: "recvonly" });
  }
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc);
  const answer = await api("/api/sessions", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", microphone: mic,
                           audio: $("audio").value, avatar: $("avatar").value, torso: $("torso").value }) });
  session = answer.session;
  report.answered = performance.now();
  report.session = session;
  report.lead_ms = answer.lead_ms;
  $("sid").textContent = session;
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  watchFrames($("video"));
  $("video").muted = !$("sound").checked;
  $("video").play().catch(() => {});
  for (const id of ["stop", "interrupt"]) $(id).disabled = false;
  $("send").disabled = source() !== "file";
  $("start").disabled = true;
  statsTimer = setInterval(pollStats, 1000);
  if (source() === "file" && $("file").files.length) await sendFile();
}

async function sendFile() {
  const file = $("file").files[0];
  if (!file || !session) return;
  await api(`/api/sessions/${session}/speech`, { method: "POST", body: file });
}

async function pollStats() {
  if (!session) return;
  try {
    const s = await api(`/api/sessions/${session}/stats`);
    report.stats.push(s);
    if (pc && query.get("measure")) await recordRtp();
    $("dropped").textContent = s.frames_dropped;
    $("latency").textContent = s.latency_ms === null ? `${s.lead_ms} ms lead` : `${s.latency_ms} ms (lead ${s.lead_ms})`;
    $("queued").textContent = `${s.queued_s.toFixed(1)} s`;
  } catch (err) { showError(err); stop(); }
}

// Measuring: the receivers' figures (jitter buffers, decoded and dropped frames) ride along.
async function recordRtp() {
  const rtp = [];
  (await pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp") rtp.push(r); });
  report.rtp = rtp;
  // what the browser plays now, in the sender's clock, for each track: their difference is its A/V sync
  const at = Object.fromEntries(rtp.map((r) => [r.kind, r.estimatedPlayoutTimestamp]));
  if (at.audio && at.video) (report.playout = report.playout || []).push(at.video - at.audio);
}

async function stop() {
  clearInterval(statsTimer);
  const sid = session;
  session = null;
  if (pc) { pc.close(); pc = null; }
  if (micStream) { micStream.getTracks().forEach((t) => t.stop()); micStream = null; }
  if (sid) await api(`/api/sessions/${sid}`, { method: "DELETE" }).catch(() => {});
  $("state").textContent = "idle";
  $("start").disabled = false;
  for (const id of ["stop", "interrupt", "send"]) $(id).disabled = true;
}

$("start").onclick = () => start().catch((err) => { showError(err); stop(); });
$("stop").onclick = () => stop();
$("send").onclick = () => sendFile().catch(showError);
$("interrupt").onclick = () => api(`/api/sessions/${session}/interrupt`, { method: "POST" }).catch(showError);
$("sound").onchange = () => { $("video").muted = !$("sound").checked; };

loadInfo().then((info) => {
  window.iceServers = info.ice_servers;
  if (query.get("source")) document.querySelector(`input[name=source][value=${query.get("source")}]`).checked = true;
  if (query.get("autostart")) $("start").onclick();
}).catch(showError);
