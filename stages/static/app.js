// gid serve: poke a photo in the browser. The server sends the working image and the image-space
// modal basis once; everything interactive happens here (see stages/serve.py for the design):
//   modes    phi_k (complex, per pixel, x and y) and omega_k (rad/s), k = 1 … M
//   poke     semi-implicit Euler with sub-steps (same scheme as gid.pipeline.dynamics):
//            v <- (1 - 2 xi w h) v - h w^2 q ;  q <- q + h v,   w h max(1, xi) <= 0.002
//   loop     q_k = amplify * exp(i w_k tau * speed)  (the predicted motion, §4.1)
//   warp     displacement D(p) = Re sum_k phi_k(p) q_k of frame 0's pixel p; each pixel is forward
//            splatted to p + D(p) with bilinear weights b and softmax weight exp(Z(p)), Z = 20 A(p)/max A,
//            A(p) = sqrt(sum_k |phi_k(p)|^2) (motion magnitude as depth, §5); pixels that receive less
//            than half a pixel (disocclusions) take photo(p - D(p)), the backward-warp guess.
"use strict";

const ACCURACY = 0.002;  // largest omega * h * max(1, xi) per sub-step
const REST_PX = 0.02;    // the poke is "at rest" when no pixel moves by more than this
const MIN_COMPLIANCE = 1e-4;  // as gid.pipeline.dynamics: pulls act where p has >= 1 % of the top amplitude

/** Advance modal coordinates (re/im arrays) by dt seconds; returns the number of sub-steps. */
function advance(q, v, omega, xi, dt) {
  const M = omega.length;
  const wmax = Math.max(...omega);
  const n = Math.max(1, Math.ceil(wmax * dt * Math.max(1, xi) / ACCURACY));
  const h = dt / n;
  for (let k = 0; k < M; k++) {
    const w = omega[k], c = 1 - 2 * xi * w * h, w2h = h * w * w;
    let qr = q[2 * k], qi = q[2 * k + 1], vr = v[2 * k], vi = v[2 * k + 1];
    for (let s = 0; s < n; s++) {
      vr = c * vr - w2h * qr; vi = c * vi - w2h * qi;
      qr += h * vr; qi += h * vi;
    }
    q[2 * k] = qr; q[2 * k + 1] = qi; v[2 * k] = vr; v[2 * k + 1] = vi;
  }
  return n;
}

/** Displacement (dx, dy) of every pixel for modal coordinates q (re/im pairs); returns max |D|. */
function displacement(scene, q, dx, dy) {
  const { phi, M, P } = scene;
  dx.fill(0); dy.fill(0);
  for (let k = 0; k < M; k++) {
    const qr = q[2 * k], qi = q[2 * k + 1];
    if (qr === 0 && qi === 0) continue;
    const base = 4 * k * P;
    for (let p = 0; p < P; p++) {
      dx[p] += qr * phi[base + p] - qi * phi[base + P + p];
      dy[p] += qr * phi[base + 2 * P + p] - qi * phi[base + 3 * P + p];
    }
  }
  let peak = 0;
  for (let p = 0; p < P; p++) peak = Math.max(peak, Math.abs(dx[p]), Math.abs(dy[p]));
  return peak;
}

/** photo sampled at (sx, sy) with bilinear weights, edges clamped, into out[o..o+2]. */
function sample(scene, sx, sy, o, out) {
  const { W, H, src } = scene;
  sx = Math.min(W - 1, Math.max(0, sx)); sy = Math.min(H - 1, Math.max(0, sy));
  const x0 = Math.min(W - 2, Math.floor(sx)), y0 = Math.min(H - 2, Math.floor(sy));
  const ax = sx - x0, ay = sy - y0;
  const i00 = 4 * (y0 * W + x0), i01 = i00 + 4, i10 = i00 + 4 * W, i11 = i10 + 4;
  for (let c = 0; c < 3; c++) {
    out[o + c] = (1 - ay) * ((1 - ax) * src[i00 + c] + ax * src[i01 + c]) + ay * ((1 - ax) * src[i10 + c] + ax * src[i11 + c]);
  }
}

/** Frame for displacement (dx, dy): softmax forward splatting, holes filled by backward warping. */
function warp(scene, dx, dy, out) {
  const { W, H, P, src, metric, acc, cover } = scene;
  const o = out.data;
  acc.fill(0); cover.fill(0);
  for (let y = 0, p = 0; y < H; y++) {
    for (let x = 0; x < W; x++, p++) {
      const tx = x + dx[p], ty = y + dy[p];
      if (!(tx > -1 && tx < W && ty > -1 && ty < H)) continue;
      const x0 = Math.floor(tx), y0 = Math.floor(ty), ax = tx - x0, ay = ty - y0, e = metric[p];
      const r = src[4 * p], g = src[4 * p + 1], bl = src[4 * p + 2];
      for (let n = 0; n < 4; n++) {
        const xi = x0 + (n & 1), yi = y0 + (n >> 1);
        const b = ((n & 1) ? ax : 1 - ax) * ((n >> 1) ? ay : 1 - ay);
        if (b === 0 || xi < 0 || xi >= W || yi < 0 || yi >= H) continue;
        const i = yi * W + xi, w = b * e;
        acc[4 * i] += w * r; acc[4 * i + 1] += w * g; acc[4 * i + 2] += w * bl; acc[4 * i + 3] += w;
        cover[i] += b;
      }
    }
  }
  for (let y = 0, p = 0; y < H; y++) {
    for (let x = 0; x < W; x++, p++) {
      if (cover[p] >= 0.5) {
        const w = acc[4 * p + 3];
        o[4 * p] = acc[4 * p] / w; o[4 * p + 1] = acc[4 * p + 1] / w; o[4 * p + 2] = acc[4 * p + 2] / w;
      } else {
        sample(scene, x - dx[p], y - dy[p], 4 * p, o);
      }
      o[4 * p + 3] = 255;
    }
  }
}

/** Softmax-splatting weight exp(Z(p)), Z = 20 A(p) / max A, A(p) = sqrt(sum_k |phi_k(p)|^2) (§5). */
function splatMetric(scene) {
  const { phi, M, P } = scene;
  const amp = new Float64Array(P);
  for (let k = 0; k < M; k++) {
    const b = 4 * k * P;
    for (let p = 0; p < P; p++) {
      amp[p] += phi[b + p] ** 2 + phi[b + P + p] ** 2 + phi[b + 2 * P + p] ** 2 + phi[b + 3 * P + p] ** 2;
    }
  }
  let top = 0;
  for (let p = 0; p < P; p++) { amp[p] = Math.sqrt(amp[p]); top = Math.max(top, amp[p]); }
  return amp.map((a) => Math.exp(20 * a / Math.max(top, 1e-12)));
}

/** Largest eigenvalue of the symmetric 2x2 compliance [cxx, cxy, cyy]. */
function stiffest([cxx, cxy, cyy]) {
  const tr = cxx + cyy, det = cxx * cyy - cxy * cxy;
  return tr / 2 + Math.sqrt(Math.max(0, tr * tr / 4 - det));
}

/** Compliance C = Re sum_k phi_k(p) phi_k(p)^H / w_k^2 at pixel index p, as [cxx, cxy, cyy]. */
function compliance(scene, p) {
  const { phi, M, P, omega } = scene;
  let cxx = 0, cxy = 0, cyy = 0;
  for (let k = 0; k < M; k++) {
    const b = 4 * k * P, ax = phi[b + p], bx = phi[b + P + p], ay = phi[b + 2 * P + p], by = phi[b + 3 * P + p];
    const w2 = omega[k] * omega[k];
    cxx += (ax * ax + bx * bx) / w2; cxy += (ax * ay + bx * by) / w2; cyy += (ay * ay + by * by) / w2;
  }
  return [cxx, cxy, cyy];
}

/** Static deflection that moves pixel (x, y) by (ux, uy): q_k = conj(phi_k(p)) . C^+ u / w_k^2. */
function pullState(scene, x, y, ux, uy, q) {
  const { phi, M, P, W, omega } = scene;
  const p = Math.round(y) * W + Math.round(x);
  const [cxx, cxy, cyy] = compliance(scene, p);
  // Inverse of the compliance on the directions where p is not nearly rigid (as force_for_pull).
  const tr = cxx + cyy, det = cxx * cyy - cxy * cxy, disc = Math.sqrt(Math.max(0, tr * tr / 4 - det));
  const l1 = tr / 2 + disc, l2 = tr / 2 - disc;
  // Unit eigenvector of l1: (cxy, l1 - cxx) or (l1 - cyy, cxy), whichever is longer; the x axis when C
  // is isotropic. The eigenvector of l2 is perpendicular to it.
  let [ex, ey] = Math.abs(l1 - cxx) >= Math.abs(l1 - cyy) ? [cxy, l1 - cxx] : [l1 - cyy, cxy];
  const norm = Math.hypot(ex, ey);
  [ex, ey] = norm > 0 ? [ex / norm, ey / norm] : [1, 0];
  let fx = 0, fy = 0;
  for (const [l, vx, vy] of [[l1, ex, ey], [l2, -ey, ex]]) {
    if (l <= MIN_COMPLIANCE * scene.maxCompliance) continue;
    const s = (vx * ux + vy * uy) / l;
    fx += s * vx; fy += s * vy;
  }
  for (let k = 0; k < M; k++) {
    const b = 4 * k * P, w2 = omega[k] * omega[k];
    q[2 * k] = (phi[b + p] * fx + phi[b + 2 * P + p] * fy) / w2;
    q[2 * k + 1] = -(phi[b + P + p] * fx + phi[b + 3 * P + p] * fy) / w2;
  }
}

// ------------------------------------------------------------------------------------- the page

const $ = (id) => document.getElementById(id);
let scene = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(url, options) {
  const res = await fetch(url, options);
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try { const body = await res.json(); detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return res;
}

async function waitForMotion(pid) {
  $("progress-row").hidden = false;
  for (;;) {
    const info = await (await api(`/api/photos/${pid}`)).json();
    if (info.progress > 0) $("progress").value = info.progress;  // else indeterminate (the bar sweeps)
    else $("progress").removeAttribute("value");
    $("status").textContent = info.state === "running" ? `predicting the motion of ${info.name}…` : info.state;
    if (info.state === "ready") return info;
    if (info.state === "error") throw new Error(info.message);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function load(pid) {
  showError("");
  scene = null;
  const info = await waitForMotion(pid);
  const [png, bin] = await Promise.all([api(`/api/photos/${pid}/image.png`), api(`/api/photos/${pid}/basis.bin`)]);
  const bitmap = await createImageBitmap(await png.blob());
  const W = info.width, H = info.height, P = W * H;
  const off = new OffscreenCanvas(W, H).getContext("2d");
  off.drawImage(bitmap, 0, 0);
  const phi = new Float32Array(await bin.arrayBuffer());
  if (phi.length !== info.modes * 4 * P) throw new Error(`modal basis has ${phi.length} values, expected ${info.modes * 4 * P}`);
  const M = info.modes;
  scene = {
    pid, W, H, P, M, phi, omega: Float64Array.from(info.omega), src: off.getImageData(0, 0, W, H).data,
    q: new Float64Array(2 * M), v: new Float64Array(2 * M), loopQ: new Float64Array(2 * M),
    dx: new Float32Array(P), dy: new Float32Array(P), loopDx: new Float32Array(P), loopDy: new Float32Array(P),
    acc: new Float64Array(4 * P), cover: new Float64Array(P), moving: false, drag: null, tau: 0,
  };
  scene.metric = splatMetric(scene);
  scene.maxCompliance = 0;
  for (let p = 0; p < P; p++) { const c = compliance(scene, p); scene.maxCompliance = Math.max(scene.maxCompliance, c[0] + c[2]); }
  for (const id of ["poke", "loop"]) { $(id).width = W; $(id).height = H; }
  scene.pokeOut = $("poke").getContext("2d").createImageData(W, H);
  scene.loopOut = $("loop").getContext("2d").createImageData(W, H);
  drawPoke();
  $("panels").hidden = false;
  $("status").textContent = `${info.name}: ${M} modes, ${W}×${H}`;
  setPokeState("at rest");
}

function setPokeState(text) { $("poke-state").textContent = text; $("poke").dataset.state = text; }

function drawPoke() {
  const peak = displacement(scene, scene.q, scene.dx, scene.dy);
  warp(scene, scene.dx, scene.dy, scene.pokeOut);
  $("poke").getContext("2d").putImageData(scene.pokeOut, 0, 0);
  return peak;
}

function drawLoop() {
  const amp = parseFloat($("amplify").value);
  for (let k = 0; k < scene.M; k++) {
    const a = scene.omega[k] * scene.tau;
    scene.loopQ[2 * k] = amp * Math.cos(a); scene.loopQ[2 * k + 1] = amp * Math.sin(a);
  }
  displacement(scene, scene.loopQ, scene.loopDx, scene.loopDy);
  warp(scene, scene.loopDx, scene.loopDy, scene.loopOut);
  $("loop").getContext("2d").putImageData(scene.loopOut, 0, 0);
}

let last = null;
function frame(now) {
  const dt = last === null ? 0 : Math.min(0.05, (now - last) / 1000);
  last = now;
  if (scene) {
    if (scene.moving && !scene.drag && dt > 0) {
      advance(scene.q, scene.v, scene.omega, parseFloat($("damping").value), dt);
      if (drawPoke() < REST_PX) {
        scene.q.fill(0); scene.v.fill(0); scene.moving = false;
        drawPoke();
        setPokeState("at rest");
      }
    }
    scene.tau += dt * parseFloat($("speed").value);
    drawLoop();
  }
  requestAnimationFrame(frame);
}

function imagePoint(event) {
  const r = $("poke").getBoundingClientRect();
  return [Math.min(scene.W - 1, Math.max(0, (event.clientX - r.left) * scene.W / r.width)),
          Math.min(scene.H - 1, Math.max(0, (event.clientY - r.top) * scene.H / r.height))];
}

function setUp() {
  const poke = $("poke");
  poke.addEventListener("pointerdown", (e) => {
    if (!scene) return;
    const [x, y] = imagePoint(e);
    if (stiffest(compliance(scene, Math.round(y) * scene.W + Math.round(x))) <= MIN_COMPLIANCE * scene.maxCompliance) { setPokeState("this point does not move: pull something that moves"); return; }
    poke.setPointerCapture(e.pointerId);
    scene.drag = [x, y];
    setPokeState("pulled");
  });
  poke.addEventListener("pointermove", (e) => {
    if (!scene || !scene.drag) return;
    const [x, y] = imagePoint(e);
    pullState(scene, scene.drag[0], scene.drag[1], x - scene.drag[0], y - scene.drag[1], scene.q);
    scene.v.fill(0);
    drawPoke();
  });
  const release = () => {
    if (!scene || !scene.drag) return;
    scene.drag = null; scene.moving = true;
    setPokeState("moving");
  };
  poke.addEventListener("pointerup", release);
  poke.addEventListener("pointercancel", release);

  for (const id of ["damping", "amplify", "speed"]) {
    const update = () => { $(`${id}-value`).textContent = parseFloat($(id).value).toFixed(id === "damping" ? 2 : 1); };
    $(id).addEventListener("input", update);
    update();
  }

  $("upload-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    showError("");
    const photo = $("photo-file").files[0];
    if (!photo) { showError("choose a photo or video file first"); return; }
    const form = new FormData();
    form.append("photo", photo);
    if ($("spectral-file").files[0]) form.append("spectral", $("spectral-file").files[0]);
    try {
      const { id } = await (await api("/api/photos", { method: "POST", body: form })).json();
      await load(id);
    } catch (err) { showError(err.message); $("progress-row").hidden = true; }
  });

  api("/api/config").then((r) => r.json()).then((cfg) => {
    for (let i = 0; i < cfg.examples; i++) {
      const b = document.createElement("button");
      b.textContent = `example scene ${i + 1}`;
      b.dataset.example = i;
      b.addEventListener("click", async () => {
        try {
          const { id } = await (await api(`/api/examples/${i}`, { method: "POST" })).json();
          await load(id);
        } catch (err) { showError(err.message); }
      });
      $("examples").appendChild(b);
    }
  }).catch((err) => showError(`cannot reach the gid server: ${err.message}`));
  requestAnimationFrame(frame);
}

window.gid = { advance, displacement, warp, splatMetric, compliance, pullState, get scene() { return scene; } };
setUp();
