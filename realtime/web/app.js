// moodtrack web view. Plain JavaScript, no libraries, nothing fetched from elsewhere.
// Live mode: a WebSocket (/ws) pushes hello, history, mood and status messages (see
// realtime/web.py). Library mode: /api/library and /api/timeline/N of an analyze run.
"use strict";
(() => {
  const MOODS = ["uplifting", "tense", "melancholic", "calm"];
  // The mood colours of the default palette (realtime/colour.py); "melancholic" is lifted
  // a little for text on the dark background.
  const MOOD_COLOURS = { uplifting: "#ffc21a", tense: "#ff1a0d", melancholic: "#2640ff",
                         calm: "#1ad973", silence: "#777777" };
  const TEXT_COLOURS = { ...MOOD_COLOURS, melancholic: "#6f86ff", silence: "#9aa3ad" };
  const TRAIL_S = 30;           // seconds of trail on the plane
  const STALE_MS = 5000;        // no message for this long: the connection is dead
  const HIST_MIN_MS = 250;      // the history chart is redrawn at most 4 times a second
  const CSS = getComputedStyle(document.documentElement);
  const VAL = CSS.getPropertyValue("--val").trim() || "#e8e8e8";
  const ARO = CSS.getPropertyValue("--aro").trim() || "#b98cff";
  const LEV = CSS.getPropertyValue("--lev").trim() || "#4fb37a";

  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token") || "";
  const withToken = (path) => token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path;
  const fontPx = () => parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  const sign = (x, d = 2) => (x == null ? "–" : (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(d));
  const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
  const mmss = (s) => {
    if (s == null || !isFinite(s)) return "–";
    s = Math.max(0, s); const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = Math.floor(s % 60);
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
  };
  const moodColour = (u) => (u && u.color_hex) || MOOD_COLOURS[u && u.mood] || "#999";
  // The light colour with its brightness lifted so that it reads on the dark page (the
  // lights dim with calm music; the swatch shows the exact colour).
  const lifted = (hex, floor = 0.8) => {
    const n = parseInt(hex.slice(1), 16), c = [n >> 16 & 255, n >> 8 & 255, n & 255];
    const k = Math.max(1, floor * 255 / Math.max(1, ...c));
    return "#" + c.map((x) => Math.min(255, Math.round(x * k)).toString(16).padStart(2, "0")).join("");
  };

  function setConn(state, text) {
    const el = $("conn");
    el.className = "conn " + state;
    el.textContent = text || state;
  }

  // A canvas sized to its box in device pixels; drawing in CSS pixels.
  function canvas2d(c) {
    const r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, r.width, r.height);
    return [ctx, r.width, r.height];
  }

  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16 & 255},${n >> 8 & 255},${n & 255},${a})`;
  }

  // ------------------------------------------------------------------------ live
  function live() {
    $("live").hidden = false;
    const plane = $("plane"), hist = $("hist"), windowSel = $("window");
    let updates = [];            // records, oldest first
    let historyS = 600, session = null, status = null, lastTags = null;
    let ws = null, backoff = 500, lastMsg = 0, frame = 0, histDrawn = 0, histDirty = true;

    function connect() {
      setConn("connecting", "connecting…");
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + withToken("/ws");
      const sock = new WebSocket(url);
      ws = sock;
      sock.onopen = () => { backoff = 500; lastMsg = performance.now(); };
      sock.onmessage = (ev) => { lastMsg = performance.now(); handle(JSON.parse(ev.data)); };
      sock.onclose = () => {
        if (ws !== sock) return;
        ws = null;
        setConn("disconnected");
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 2000);
      };
    }

    setInterval(() => {   // a silent connection (tracker frozen, network gone) counts as lost
      if (ws && ws.readyState === WebSocket.OPEN && performance.now() - lastMsg > STALE_MS) {
        const sock = ws; ws = null; sock.close();
        setConn("disconnected");
        setTimeout(connect, 200);
      }
    }, 1000);

    function handle(m) {
      if (m.type === "hello") {
        if (m.session !== session) { updates = []; status = null; lastTags = null; renderNow(undefined); }
        session = m.session; historyS = m.history_s || historyS;
        setConn("live");
      } else if (m.type === "history") {
        updates = m.updates || [];
        histDirty = true;
      } else if (m.type === "mood") {
        const last = updates[updates.length - 1];
        if (last && m.t < last.t) updates = [];          // a new input: time starts again
        updates.push(m);
        const cutoff = m.t - historyS;
        let k = 0;
        while (k < updates.length && updates[k].t < cutoff) k++;
        if (k) updates.splice(0, k);
        histDirty = true;
      } else if (m.type === "status") {
        status = m;
        renderHealth();
      }
      schedule();
    }

    function schedule() { if (!frame) frame = requestAnimationFrame(draw); }

    function draw() {
      frame = 0;
      const u = updates[updates.length - 1];
      renderNow(u);
      drawPlane();
      const now = performance.now();
      if (histDirty && now - histDrawn >= HIST_MIN_MS) {
        drawHist(); histDirty = false; histDrawn = now;
      } else if (histDirty) {
        setTimeout(schedule, HIST_MIN_MS);
      }
    }

    function renderNow(u) {
      const mood = $("mood");
      if (!u) {  // nothing yet, or a new tracker run that has not sent an update
        mood.textContent = "waiting…"; mood.style.color = ""; mood.dataset.seq = ""; mood.dataset.color = "";
        return;
      }
      mood.textContent = u.mood;
      mood.dataset.seq = u.seq;
      mood.dataset.color = u.color_hex || "";
      mood.style.color = u.silence ? TEXT_COLOURS.silence : lifted(moodColour(u));
      $("quadrant").textContent = u.quadrant ? u.quadrant : "no quadrant while silent";
      $("conf").textContent = Math.round(100 * (u.confidence || 0)) + " %";
      const cb = $("confbar");
      cb.style.width = (100 * clamp(u.confidence || 0, 0, 1)) + "%";
      cb.style.background = lifted(moodColour(u));
      $("val").textContent = sign(u.valence);
      $("aro").textContent = sign(u.arousal);
      $("swatch").style.background = u.color_hex || "transparent";
      $("hex").textContent = u.color_hex || "";
      const lev = u.level_db == null ? -120 : u.level_db;
      $("levbar").style.width = (100 * clamp((lev + 60) / 60, 0, 1)) + "%";
      $("lev").textContent = (lev <= -99.9 ? "−∞" : lev.toFixed(1)) + " dBFS";
      $("levlabel").textContent = u.silence ? "silent" : "level";
      renderExtra(u);
      renderShares();
      const hint = $("hint");
      hint.hidden = !u.silence;
      hint.textContent = u.silence ? "Silent: the input is below the silence threshold "
        + "(analysis.silence_db). Nothing playing, or the wrong input?" : "";
      $("where").textContent = (status && status.device ? status.device + " · " : "") + "t " + u.t.toFixed(1) + " s";
    }

    function renderExtra(u) {
      const parts = [];
      if (u.loudness_m != null) parts.push(["LUFS M", u.loudness_m.toFixed(1)]);
      if (u.loudness_s != null) parts.push(["LUFS S", u.loudness_s.toFixed(1)]);
      if (u.speech != null) parts.push(["speech", typeof u.speech === "number" ? Math.round(100 * u.speech) + " %" : (u.speech ? "yes" : "no")]);
      const extra = $("extra");
      extra.replaceChildren(...parts.flatMap(([k, v]) => {
        const l = document.createElement("span"); l.className = "label"; l.textContent = k;
        const b = document.createElement("b"); b.textContent = v; return [l, b];
      }));
      extra.dataset.keys = parts.map((p) => p[0]).join(",");
      if (u.tags) lastTags = u.tags;   // tags come about once a second: keep the last ones
      const tags = $("tags");
      tags.replaceChildren(...tagList(lastTags).map((t) => {
        const s = document.createElement("span"); s.textContent = t; return s;
      }));
    }

    function renderShares() {
      const win = +windowSel.value, last = updates[updates.length - 1];
      const counts = {}; let n = 0;
      for (let i = updates.length - 1; i >= 0 && updates[i].t >= last.t - win; i--) {
        counts[updates[i].mood] = (counts[updates[i].mood] || 0) + 1; n++;
      }
      const el = $("shares");
      el.replaceChildren(...Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([m, c]) => {
        const s = document.createElement("span");
        s.innerHTML = `<i class="dot"></i>`;
        s.firstChild.style.background = MOOD_COLOURS[m] || "#999";
        s.append(`${m} ${Math.round(100 * c / n)} %`);
        return s;
      }));
    }

    function renderHealth() {
      const s = status; if (!s) return;
      const items = [
        ["device", s.device || "?"], ["input", `${s.sample_rate} Hz · ${s.channels} ch`],
        ["model", [s.model, s.model_version].filter(Boolean).join(" ") || "?"],
        ["input state", s.input_state, s.input_state === "ok" ? "good" : "bad"],
        ["overflows", s.overflows, s.overflows ? "bad" : ""],
        ["drops", s.dropped_blocks, s.dropped_blocks ? "bad" : ""],
        ["zmq drops", s.zmq_dropped, s.zmq_dropped ? "bad" : ""],
        ["web drops", s.web_dropped || 0, s.web_dropped ? "bad" : ""],
        ["updates", s.updates], ["up", mmss(s.uptime_s)], ["pages", s.web_clients],
      ];
      if (s.reconnects) items.push(["reconnects", s.reconnects, "bad"]);
      if (s.csv_error) items.push(["csv", "STOPPED", "bad"]);
      if (s.input_hint) items.push(["hint", s.input_hint, "bad"]);
      $("health").replaceChildren(...items.map(([k, v, cls]) => {
        const d = document.createElement("div"), dt = document.createElement("dt"), dd = document.createElement("dd");
        dt.textContent = k; dd.textContent = v; if (cls) dd.className = cls;
        d.dataset.key = k; d.append(dt, dd); return d;
      }));
      const banner = $("banner");
      const what = { stalled: "no audio arriving", lost: "input device lost, reconnecting" }[s.input_state];
      banner.hidden = s.input_state === "ok";
      banner.textContent = banner.hidden ? "" : `⚠ INPUT ${String(s.input_state).toUpperCase()}: ${what || s.input_state}`
        + (s.input_error ? ` (${s.input_error})` : "");
    }

    function drawPlane() {
      const [ctx, W, H] = canvas2d(plane);
      const fs = fontPx(), pad = fs * 1.4;
      const S = Math.max(10, Math.min(W, H) - 2 * pad), x0 = (W - S) / 2, y0 = (H - S) / 2;
      const X = (v) => x0 + (clamp(v, -1, 1) + 1) / 2 * S, Y = (a) => y0 + (1 - clamp(a, -1, 1)) / 2 * S;
      const quads = [["tense", -1, 1], ["uplifting", 1, 1], ["melancholic", -1, -1], ["calm", 1, -1]];
      for (const [m, sv, sa] of quads) {
        ctx.fillStyle = alpha(MOOD_COLOURS[m], 0.08);
        ctx.fillRect(sv < 0 ? x0 : X(0), sa > 0 ? y0 : Y(0), S / 2, S / 2);
      }
      ctx.strokeStyle = "#2c323b"; ctx.lineWidth = 1;
      ctx.beginPath();
      for (const g of [-0.5, 0.5]) { ctx.moveTo(X(g), y0); ctx.lineTo(X(g), y0 + S); ctx.moveTo(x0, Y(g)); ctx.lineTo(x0 + S, Y(g)); }
      ctx.stroke();
      ctx.strokeStyle = "#59616d";
      ctx.strokeRect(x0, y0, S, S);
      ctx.beginPath(); ctx.moveTo(X(0), y0); ctx.lineTo(X(0), y0 + S); ctx.moveTo(x0, Y(0)); ctx.lineTo(x0 + S, Y(0)); ctx.stroke();
      ctx.font = `600 ${fs}px system-ui, sans-serif`;
      for (const [m, sv, sa] of quads) {
        ctx.fillStyle = alpha(TEXT_COLOURS[m], 0.9);
        ctx.textAlign = sv < 0 ? "left" : "right";
        ctx.textBaseline = sa > 0 ? "top" : "bottom";
        ctx.fillText(m, sv < 0 ? x0 + fs * 0.4 : x0 + S - fs * 0.4, sa > 0 ? y0 + fs * 0.3 : y0 + S - fs * 0.3);
      }
      ctx.font = `${fs * 0.8}px system-ui, sans-serif`;
      ctx.fillStyle = "#8a939f";
      ctx.textAlign = "right"; ctx.textBaseline = "bottom";
      ctx.fillText("valence →", x0 + S - fs * 0.3, Y(0) - 3);
      ctx.save(); ctx.translate(X(0) + 3, y0 + S - fs * 0.3); ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left"; ctx.textBaseline = "top"; ctx.fillText("arousal →", 0, 0); ctx.restore();
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      ctx.fillText("−1", x0, y0 + S + 2); ctx.fillText("+1", x0 + S, y0 + S + 2);
      const last = updates[updates.length - 1];
      if (!last) return;
      let i = updates.length - 1;
      while (i > 0 && updates[i - 1].t >= last.t - TRAIL_S) i--;
      ctx.lineCap = "round";
      for (let k = i + 1; k < updates.length; k++) {
        const a = updates[k - 1], b = updates[k];
        const fade = Math.pow(1 - clamp((last.t - b.t) / TRAIL_S, 0, 1), 1.6);
        ctx.strokeStyle = alpha(b.silence ? "#777777" : lifted(moodColour(b), 0.6), 0.05 + 0.75 * fade);
        ctx.lineWidth = 1 + fs * 0.25 * fade;
        ctx.beginPath(); ctx.moveTo(X(a.valence), Y(a.arousal)); ctx.lineTo(X(b.valence), Y(b.arousal)); ctx.stroke();
      }
      const r = fs * 0.65;
      ctx.beginPath(); ctx.arc(X(last.valence), Y(last.arousal), r, 0, 2 * Math.PI);
      if (last.silence) { ctx.strokeStyle = "#9aa3ad"; ctx.lineWidth = 2; ctx.stroke(); }
      else { ctx.fillStyle = lifted(moodColour(last)); ctx.fill(); ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 2; ctx.stroke(); }
    }

    function drawHist() {
      const [ctx, W, H] = canvas2d(hist);
      const fs = fontPx(), win = +windowSel.value;
      const last = updates[updates.length - 1];
      const padL = fs * 2.4, padR = fs * 0.6, ribbon = fs * 0.7, padB = fs * 1.5 + ribbon;
      const pw = Math.max(10, W - padL - padR), ph = Math.max(10, H - padB - fs * 0.3);
      const tEnd = last ? last.t : 0, t0 = tEnd - win;
      const X = (t) => padL + (t - t0) / win * pw, Y = (v) => fs * 0.3 + (1 - clamp(v, -1, 1)) / 2 * ph;
      ctx.font = `${fs * 0.75}px system-ui, sans-serif`;
      ctx.fillStyle = "#8a939f"; ctx.strokeStyle = "#262b33"; ctx.lineWidth = 1;
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      ctx.beginPath();
      for (const g of [-1, -0.5, 0, 0.5, 1]) {
        ctx.moveTo(padL, Y(g)); ctx.lineTo(padL + pw, Y(g));
        ctx.fillText((g > 0 ? "+" : g < 0 ? "−" : "") + Math.abs(g), padL - 4, Y(g));
      }
      ctx.stroke();
      const step = win <= 60 ? 10 : win <= 120 ? 20 : win <= 300 ? 60 : 120;
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (let s = 0; s <= win; s += step) {
        const x = padL + pw - s / win * pw;
        ctx.textAlign = s === 0 ? "right" : s === win ? "left" : "center";
        ctx.fillText(s === 0 ? "now" : "−" + (s % 60 === 0 ? s / 60 + " min" : s > 60 ? mmss(s) : s + " s"), x, fs * 0.3 + ph + ribbon + 4);
      }
      if (!last) return;
      let i = updates.length - 1;
      while (i > 0 && updates[i - 1].t >= t0) i--;
      const pts = updates.slice(i);
      // silence shading and the mood ribbon
      for (let k = 0; k < pts.length; k++) {
        const a = k ? pts[k - 1].t : pts[k].t, xa = Math.max(padL, X(a)), xb = X(pts[k].t) + 0.5;
        ctx.fillStyle = MOOD_COLOURS[pts[k].mood] || "#777";
        ctx.fillRect(xa, fs * 0.3 + ph + 2, Math.max(1, xb - xa), ribbon - 2);
        if (pts[k].silence) { ctx.fillStyle = "rgba(150,150,150,0.12)"; ctx.fillRect(xa, fs * 0.3, Math.max(1, xb - xa), ph); }
      }
      const every = Math.max(1, Math.floor(pts.length / (pw * 2)));
      const line = (get, colour, width) => {
        ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.beginPath();
        let pen = false;
        for (let k = 0; k < pts.length; k += every) {
          const v = get(pts[k]);
          if (v == null) { pen = false; continue; }
          if (pen) ctx.lineTo(X(pts[k].t), Y(v)); else { ctx.moveTo(X(pts[k].t), Y(v)); pen = true; }
        }
        ctx.stroke();
      };
      line((u) => (u.level_db == null ? null : clamp((u.level_db + 60) / 30 - 1, -1, 1)), alpha(LEV, 0.7), 1);
      line((u) => u.valence, VAL, Math.max(1.5, fs * 0.12));
      line((u) => u.arousal, ARO, Math.max(1.5, fs * 0.12));
      hist.dataset.points = pts.length;
    }

    windowSel.addEventListener("change", () => { histDirty = true; histDrawn = 0; schedule(); });
    new ResizeObserver(() => { histDirty = true; histDrawn = 0; schedule(); }).observe(document.body);
    connect();
  }

  // Tags as short texts: [name, score] pairs, {tag, score} objects, strings, or groups of
  // them ({instruments: [...], genres: [...]}).
  function tagList(tags) {
    if (!tags) return [];
    const one = (t) => Array.isArray(t) ? `${t[0]} ${Math.round(100 * t[1])} %`
      : typeof t === "object" ? `${t.tag || t.name} ${t.score != null ? Math.round(100 * t.score) + " %" : ""}`.trim()
      : String(t);
    if (Array.isArray(tags)) return tags.map(one);
    if (typeof tags === "object") return Object.values(tags).flatMap((v) => (Array.isArray(v) ? v.map(one) : []));
    return [String(tags)];
  }

  // --------------------------------------------------------------------- library
  function library() {
    $("library").hidden = false;
    const tbody = document.querySelector("#files tbody"), filter = $("filter");
    const canvas = $("timeline"), audio = $("audio"), readout = $("readout");
    let files = [], columns = [], sortKey = "file", sortDir = 1, chosen = null, tl = null, hoverT = null;

    const share = (f, m) => {
      if (!f.time_s) return null;
      const total = Object.values(f.time_s).reduce((a, b) => a + b, 0);
      return total > 0 ? (f.time_s[m] || 0) / total : 0;
    };
    const baseName = (p) => String(p || "").split(/[\\/]/).pop();

    fetch(withToken("/api/library")).then((r) => {
      if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
      return r.json();
    }).then((data) => {
      setConn("live", "library");
      $("where").textContent = data.folder + " · " + data.files.length + " files";
      files = data.files;
      const hasTags = files.some((f) => tagList(f.tags).length);
      columns = [
        { key: "file", label: "file", get: (f) => baseName(f.file).toLowerCase(), cell: (td, f) => { td.className = "file"; td.textContent = baseName(f.file); td.title = f.file; } },
        { key: "duration", label: "duration", num: true, get: (f) => f.duration_s, cell: (td, f) => { td.textContent = mmss(f.duration_s); } },
        ...[...MOODS, "silence"].map((m) => ({
          key: m, label: m, num: true, get: (f) => share(f, m),
          cell: (td, f) => {
            const s = share(f, m);
            if (s == null) return;
            const p = document.createElement("span"); p.className = "pct"; p.textContent = Math.round(100 * s) + " %";
            const bar = document.createElement("span"); bar.className = "mini";
            bar.style.width = (3 * s).toFixed(2) + "em"; bar.style.background = MOOD_COLOURS[m];
            td.append(p, bar);
          },
        })),
        { key: "dominant", label: "dominant mood", get: (f) => f.dominant_mood || (f.error ? "~failed" : ""), cell: (td, f) => {
          if (f.error) { td.textContent = "failed: " + f.error; td.title = f.error; return; }
          const d = document.createElement("i"); d.className = "dot"; d.style.background = MOOD_COLOURS[f.dominant_mood] || "#777";
          td.append(d, f.dominant_mood || "–");
        } },
      ];
      if (hasTags) columns.push({ key: "tags", label: "tags", get: (f) => tagList(f.tags).join(", "), cell: (td, f) => { td.textContent = tagList(f.tags).join(", "); } });
      const head = $("cols");
      head.replaceChildren(...columns.map((c) => {
        const th = document.createElement("th");
        th.textContent = c.label; th.dataset.key = c.key; if (c.num) th.className = "num";
        th.addEventListener("click", () => {
          sortDir = sortKey === c.key ? -sortDir : (c.num ? -1 : 1); sortKey = c.key; render();
        });
        return th;
      }));
      render();
      const first = files.find((f) => !f.error);
      if (first) choose(first.index);
    }).catch((e) => { setConn("disconnected", "error"); $("where").textContent = "cannot load the run: " + e.message; });

    function render() {
      const col = columns.find((c) => c.key === sortKey), needle = filter.value.trim().toLowerCase();
      const shown = files.filter((f) => !needle || [f.file, f.dominant_mood, f.error, tagList(f.tags).join(" ")]
        .some((x) => x && String(x).toLowerCase().includes(needle)));
      shown.sort((a, b) => {
        const x = col.get(a), y = col.get(b);
        if (x == null && y == null) return 0; if (x == null) return 1; if (y == null) return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
      });
      for (const th of $("cols").children) {
        th.classList.toggle("sorted", th.dataset.key === sortKey);
        th.textContent = columns.find((c) => c.key === th.dataset.key).label + (th.dataset.key === sortKey ? (sortDir > 0 ? " ▲" : " ▼") : "");
      }
      tbody.replaceChildren(...shown.map((f) => {
        const tr = document.createElement("tr");
        tr.dataset.index = f.index; tr.dataset.file = f.file;
        if (f.error) tr.className = "failed";
        if (f.index === chosen) tr.classList.add("chosen");
        for (const c of columns) { const td = document.createElement("td"); if (c.num) td.className = "num"; c.cell(td, f); tr.append(td); }
        if (!f.error) tr.addEventListener("click", () => choose(f.index));
        return tr;
      }));
      $("count").textContent = `${shown.length} of ${files.length} files`;
    }
    filter.addEventListener("input", render);

    function choose(index) {
      chosen = index; render();
      const f = files.find((x) => x.index === index);
      $("detail").hidden = false;
      $("dname").textContent = f.file;
      fetch(withToken(`/api/timeline/${index}`)).then((r) => {
        if (!r.ok) return r.text().then((t) => { throw new Error(t); });
        return r.json();
      }).then((data) => {
        if (chosen !== index) return;
        tl = data; hoverT = null;
        audio.hidden = !data.audio; $("seekhint").hidden = !data.audio;
        if (data.audio) audio.src = withToken(`/audio/${index}`); else audio.removeAttribute("src");
        readout.textContent = `${data.t.length} updates · ${mmss(data.t[data.t.length - 1])}` + (data.audio ? "" : " · audio file not found where the summary says");
        drawTimeline();
      }).catch((e) => { readout.textContent = "cannot load the timeline: " + e.message; });
    }

    function geometry() {
      const r = canvas.getBoundingClientRect(), fs = fontPx();
      const padL = fs * 2.4, padR = fs * 0.8, band = fs * 1.1, padT = fs * 0.4;
      const T = Math.max(1e-3, tl.t.length ? tl.t[tl.t.length - 1] : 1);
      const pw = Math.max(10, r.width - padL - padR), ph = Math.max(10, r.height - padT - band - fs * 1.6);
      return { fs, padL, padT, band, pw, ph, T, X: (t) => padL + t / T * pw, Y: (v) => padT + (1 - clamp(v, -1, 1)) / 2 * ph, tAt: (x) => clamp((x - padL) / pw, 0, 1) * T };
    }

    function nearest(t) {
      let lo = 0, hi = tl.t.length - 1;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (tl.t[mid] < t) lo = mid + 1; else hi = mid; }
      return lo;
    }

    function drawTimeline() {
      if (!tl) return;
      const [ctx] = canvas2d(canvas);
      const g = geometry(), { fs, padL, padT, band, pw, ph, X, Y } = g;
      const bandY = padT + ph + 3;
      for (const s of tl.segments) {   // mood sections: tinted behind the lines, solid below
        const c = MOOD_COLOURS[s.mood] || "#777", xa = X(s.start), w = Math.max(1, X(s.end) - xa);
        ctx.fillStyle = alpha(c, 0.13); ctx.fillRect(xa, padT, w, ph);
        ctx.fillStyle = c; ctx.fillRect(xa, bandY, w, band - 3);
        ctx.font = `600 ${fs * 0.75}px system-ui, sans-serif`;
        const label = s.mood;
        if (ctx.measureText(label).width + 8 < w) {
          ctx.fillStyle = s.mood === "uplifting" || s.mood === "calm" ? "#111" : "#fff";
          ctx.textAlign = "left"; ctx.textBaseline = "middle"; ctx.fillText(label, xa + 4, bandY + (band - 3) / 2);
        }
      }
      for (let k = 0; k < tl.t.length; k++) if (tl.silence[k]) {
        const xa = X(k ? tl.t[k - 1] : 0); ctx.fillStyle = "rgba(150,150,150,0.18)"; ctx.fillRect(xa, padT, Math.max(1, X(tl.t[k]) - xa), ph);
      }
      ctx.font = `${fs * 0.75}px system-ui, sans-serif`; ctx.fillStyle = "#8a939f"; ctx.strokeStyle = "#2c323b"; ctx.lineWidth = 1;
      ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.beginPath();
      for (const v of [-1, -0.5, 0, 0.5, 1]) { ctx.moveTo(padL, Y(v)); ctx.lineTo(padL + pw, Y(v)); ctx.fillText((v > 0 ? "+" : v < 0 ? "−" : "") + Math.abs(v), padL - 4, Y(v)); }
      ctx.stroke();
      const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
      const step = steps.find((s) => g.T / s <= 10) || 7200;
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (let s = 0; s <= g.T + 1e-6; s += step) ctx.fillText(mmss(s), X(s), bandY + band + 2);
      const every = Math.max(1, Math.floor(tl.t.length / (pw * 2)));
      for (const [key, colour] of [["valence", VAL], ["arousal", ARO]]) {
        ctx.strokeStyle = colour; ctx.lineWidth = Math.max(1.5, fs * 0.12); ctx.beginPath();
        let pen = false;
        for (let k = 0; k < tl.t.length; k += every) {
          if (tl.silence[k] || tl[key][k] == null) { pen = false; continue; }
          if (pen) ctx.lineTo(X(tl.t[k]), Y(tl[key][k])); else { ctx.moveTo(X(tl.t[k]), Y(tl[key][k])); pen = true; }
        }
        ctx.stroke();
      }
      canvas.dataset.points = tl.t.length;
      const cursor = (t, colour) => { ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.beginPath(); ctx.moveTo(X(t), padT); ctx.lineTo(X(t), bandY + band); ctx.stroke(); };
      if (!audio.hidden && audio.currentTime > 0) cursor(audio.currentTime, "#ffffff");
      if (hoverT != null && tl.t.length) {
        cursor(hoverT, "rgba(255,255,255,0.45)");
        const k = nearest(hoverT);
        for (const [key, colour] of [["valence", VAL], ["arousal", ARO]]) {
          if (tl[key][k] == null) continue;
          ctx.fillStyle = colour; ctx.beginPath(); ctx.arc(X(tl.t[k]), Y(tl[key][k]), fs * 0.3, 0, 2 * Math.PI); ctx.fill();
        }
      }
    }

    function showReadout(t) {
      const k = nearest(t), seg = tl.segments.find((s) => t >= s.start && t <= s.end);
      readout.textContent = `${mmss(tl.t[k])} · valence ${sign(tl.valence[k])} · arousal ${sign(tl.arousal[k])} · `
        + (tl.silence[k] ? "silence" : `${tl.mood[k]} (confidence ${Math.round(100 * tl.confidence[k])} %)`)
        + (seg ? ` · section ${seg.mood} ${mmss(seg.start)}–${mmss(seg.end)}` : "");
    }

    canvas.addEventListener("pointermove", (e) => {
      if (!tl) return;
      const r = canvas.getBoundingClientRect();
      hoverT = geometry().tAt(e.clientX - r.left);
      showReadout(hoverT); drawTimeline();
    });
    canvas.addEventListener("pointerleave", () => { hoverT = null; drawTimeline(); });
    canvas.addEventListener("click", (e) => {
      if (!tl || audio.hidden) return;
      const r = canvas.getBoundingClientRect();
      audio.currentTime = geometry().tAt(e.clientX - r.left);
      audio.play().catch(() => {});
    });
    let playing = 0;
    const follow = () => { drawTimeline(); playing = audio.paused ? 0 : requestAnimationFrame(follow); };
    audio.addEventListener("play", () => { if (!playing) playing = requestAnimationFrame(follow); });
    audio.addEventListener("seeked", drawTimeline);
    new ResizeObserver(() => drawTimeline()).observe(canvas);
  }

  if (document.body.dataset.mode === "library") library(); else live();
})();
