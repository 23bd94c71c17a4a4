// gslbd status page: polls /v1/status every 2 s and renders the map, the regions, the answer
// shares, the health transitions and the last reload. Plain DOM, no dependencies. Every text
// from the server goes through textContent, never innerHTML.
"use strict";

(function () {
  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  const MAX_TRANSITIONS = 50;
  const W = window.GslbWorld;

  const $ = (id) => document.getElementById(id);

  // Builds an HTML element: h("div", {class: "x", "data-y": 1, title: "t"}, child, "text", ...).
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function s(tag, attrs, ...children) {
    const e = document.createElementNS(W.SVG_NS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const k in attrs) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      // Styles through the CSSOM, which a Content-Security-Policy without 'unsafe-inline' allows.
      if (k === "style") e.style.cssText = String(v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
  }

  function replace(parent, ...children) {
    parent.textContent = "";
    append(parent, children);
  }

  // ---- formatting ------------------------------------------------------------------------

  function fmtDuration(sec) {
    if (sec === null || sec === undefined || !isFinite(sec)) return "—";
    sec = Math.max(0, sec);
    if (sec < 10) return sec.toFixed(1) + " s";
    if (sec < 60) return Math.floor(sec) + " s";
    const m = Math.floor(sec / 60);
    if (m < 60) return m + " min " + String(Math.floor(sec % 60)).padStart(2, "0") + " s";
    const hr = Math.floor(m / 60);
    if (hr < 24) return hr + " h " + String(m % 60).padStart(2, "0") + " min";
    return Math.floor(hr / 24) + " d " + (hr % 24) + " h";
  }

  function fmtAgo(sec) {
    if (sec === null || sec === undefined || !isFinite(sec)) return "—";
    return sec < 1 ? "just now" : fmtDuration(sec) + " ago";
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "—";
    return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + " ms";
  }

  function fmtLoad(load) {
    if (load === null || load === undefined) return "—";
    return Math.round(load * 100) + "%";
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  // ---- state -----------------------------------------------------------------------------

  const STATE_LABEL = { up: "up", partial: "partial", drained: "drained", down: "down" };

  function vipOk(v) {
    return v.up && v.override !== "drain" && v.override !== "force-down";
  }

  // One of up, partial, drained, down: the state an operator cares about.
  function regionState(r) {
    if (r.override === "force-down" || !r.up) return "down";
    if (r.override === "drain" || !r.eligible) return "drained";
    if ((r.vips || []).some((v) => !vipOk(v))) return "partial";
    return "up";
  }

  function regionKey(r) {
    return r.zone + "/" + r.name;
  }

  function regionAttrs(r, st, kind) {
    return {
      "data-region": r.name,
      "data-zone": r.zone,
      "data-state": st,
      "data-override": r.override,
      "data-kind": kind,
    };
  }

  function vipsUp(r) {
    return (r.vips || []).filter(vipOk).length;
  }

  // The probe results worth showing for a region: its own probe, or each VIP's.
  function probeLines(r, now) {
    const lines = [];
    const one = (p, prefix) => {
      if (!p) return;
      const pre = prefix ? prefix + ": " : "";
      if (!p.probed || !p.last) {
        lines.push(h("span", { class: "probe-line" }, pre + "waiting for the first probe"));
        return;
      }
      const last = p.last;
      const ago = fmtAgo(now - last.at);
      if (last.ok) {
        const rtt = p.rtt_ms !== null && p.rtt_ms !== undefined ? " · " + fmtMs(p.rtt_ms) : "";
        lines.push(h("span", { class: "probe-line ok" }, pre + "✓ ok" + rtt + " · " + ago));
      } else {
        const text = "✗ " + (last.reason || "failed") + (last.detail ? ": " + last.detail : "");
        lines.push(h("span", { class: "probe-line fail", title: text }, pre + text + " · " + ago));
      }
      const reasons = (p.failures_by_reason || []).map(([k, n]) => k + " " + n).join(", ");
      lines.push(
        h(
          "span",
          { class: "probe-line probe-counts" },
          p.successes + " ok, " + p.failures + " failed" + (reasons ? " (" + reasons + ")" : ""),
        ),
      );
    };
    if (r.probe) one(r.probe, "");
    for (const v of r.vips || []) if (v.probe) one(v.probe, v.addr);
    if (!lines.length) lines.push(h("span", { class: "probe-line faint" }, "not probed"));
    return lines;
  }

  // A few words on the probes of a region, for its card.
  function probeBrief(r, now) {
    const probes = [];
    if (r.probe) probes.push(r.probe);
    for (const v of r.vips || []) if (v.probe) probes.push(v.probe);
    if (!probes.length) return h("span", { class: "rcard-probe faint" }, "not probed");
    const done = probes.filter((p) => p.probed && p.last);
    if (!done.length) return h("span", { class: "rcard-probe" }, "probing…");
    const failed = done.filter((p) => !p.last.ok);
    const newest = Math.max(...done.map((p) => p.last.at));
    if (!failed.length) {
      const what = probes.length > 1 ? probes.length + " probes ok" : "probe ok";
      return h("span", { class: "rcard-probe", "data-ok": "true", title: "last probe " + fmtAgo(now - newest) }, "✓ " + what);
    }
    const reasons = [...new Set(failed.map((p) => p.last.reason || "failed"))].join(", ");
    const what = probes.length > 1 ? failed.length + "/" + probes.length + " failing · " : "";
    const title = failed.map((p) => (p.last.reason || "failed") + ": " + p.last.detail).join("\n");
    return h("span", { class: "rcard-probe", "data-ok": "false", title }, "✗ " + what + reasons);
  }

  // ---- rendering -------------------------------------------------------------------------

  function renderMeta(d) {
    const item = (label, value, cls) => h("div", null, h("dt", null, label), h("dd", { class: cls, title: value }, value));
    replace(
      $("meta"),
      item("version", d.version),
      item("uptime", fmtDuration(d.uptime_s)),
      item("config", d.config_file || "(none)", "mono"),
      item("zones", String((d.zones || []).length)),
      item("dns over tcp", d.tcp ? d.tcp.open + " open · " + d.tcp.accepted + " accepted" : "—"),
    );
  }

  function tile(label, value, sub, tone) {
    return h(
      "div",
      { class: "tile", "data-tone": tone },
      h("div", { class: "tile-label" }, label),
      h("div", { class: "tile-value" }, value),
      h("div", { class: "tile-sub", title: sub }, sub),
    );
  }

  function renderSummary(d, states) {
    const count = { up: 0, partial: 0, drained: 0, down: 0 };
    const names = { up: [], partial: [], drained: [], down: [] };
    for (const r of d.regions) {
      const st = states.get(regionKey(r));
      count[st]++;
      names[st].push(r.name);
    }
    const total = d.regions.length;
    let answers = 0;
    let services = 0;
    for (const z of d.zones || [])
      for (const svc of z.services || []) {
        services++;
        for (const k in svc.answers_last_minute || {}) answers += svc.answers_last_minute[k];
      }
    const rl = d.last_reload;
    let reloadValue, reloadSub, reloadTone;
    if (!rl) {
      reloadValue = h("span", { class: "muted" }, "none");
      reloadSub = "configuration as loaded at start";
      reloadTone = "zero";
    } else {
      reloadValue = rl.ok ? "ok" : plural(rl.errors.length, "error");
      reloadSub = rl.trigger + " · " + fmtAgo(Date.now() / 1000 - rl.at);
      reloadTone = rl.ok ? "up" : "down";
    }
    const list = (st) => (names[st].length ? names[st].join(", ") : "none");
    replace(
      $("summary"),
      tile("Up", [String(count.up), h("small", null, "of " + total)], list("up"), count.up === total && total ? "up" : count.up ? "up" : "zero"),
      tile("Partial", String(count.partial), count.partial ? list("partial") : "some VIPs down", count.partial ? "partial" : "zero"),
      tile("Drained", String(count.drained), count.drained ? list("drained") : "no new answers", count.drained ? "drained" : "zero"),
      tile("Down", String(count.down), count.down ? list("down") : "none", count.down ? "down" : "zero"),
      tile("Answers / min", String(answers), plural(services, "steered service"), answers ? "up" : "zero"),
      tile("Last reload", reloadValue, reloadSub, reloadTone),
    );
    const box = $("reload-errors");
    if (rl && !rl.ok) {
      replace(
        box,
        h("h3", null, "The last reload (" + rl.trigger + ", " + fmtAgo(Date.now() / 1000 - rl.at) + ") failed; the previous configuration is still in force"),
        h("ul", null, rl.errors.map((e) => h("li", null, e))),
      );
      box.hidden = false;
    } else {
      box.hidden = true;
    }
  }

  function renderLegend() {
    const item = (st, text) => h("span", null, h("i", { class: "dot", "data-s": st }), text);
    replace(
      $("legend"),
      item("up", "up"),
      item("partial", "partial / drained"),
      item("down", "down / forced down"),
    );
  }

  let markerLayer = null;

  function setupMap() {
    const svg = $("map");
    W.drawBase(svg);
    markerLayer = s("g", { class: "markers" });
    svg.appendChild(markerLayer);
  }

  // Rough text widths in SVG units for the label fonts (no layout needed).
  function textWidth(text, px, bold) {
    return text.length * px * (bold ? 0.6 : 0.55);
  }

  // The rendered width of an SVG text element (laid out once in the marker layer), or the
  // estimate when the browser cannot tell.
  function measure(textEl, estimate) {
    // Inside a marker group, so that the label styles apply.
    const probe = s("g", { class: "marker", visibility: "hidden" }, textEl);
    markerLayer.appendChild(probe);
    let w = 0;
    try {
      w = textEl.getComputedTextLength();
    } catch (e) {
      w = 0;
    }
    markerLayer.removeChild(probe);
    return w > 0 ? w : estimate;
  }

  function place(textEl, x, y) {
    textEl.setAttribute("x", x.toFixed(1));
    textEl.setAttribute("y", y.toFixed(1));
    return textEl;
  }

  function overlaps(a, b) {
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  }

  const PRIORITY = { down: 0, partial: 1, drained: 2, up: 3 };

  // Candidate label boxes around a dot at (x, y): close first, then further out on a leader.
  function* labelSpots(x, y, w, hgt) {
    for (const d of [10, 26, 46, 72, 104]) {
      const k = d * 0.72;
      yield { x: x + d, y: y - hgt / 2 };
      yield { x: x - d - w, y: y - hgt / 2 };
      yield { x: x + k, y: y - k - hgt };
      yield { x: x - k - w, y: y - k - hgt };
      yield { x: x + k, y: y + k };
      yield { x: x - k - w, y: y + k };
      yield { x: x - w / 2, y: y - d - hgt };
      yield { x: x - w / 2, y: y + d };
    }
  }

  function renderMap(d, states) {
    markerLayer.textContent = "";
    const items = d.regions.map((r) => {
      const [x, y] = W.projectVisible(r.lat, r.lon);
      return { r, x, y, st: states.get(regionKey(r)) };
    });
    // With many regions the labels carry the name and state only; the details are beside the map.
    const compact = items.length > 8;
    const dots = s("g", { class: "dots" });
    const labels = s("g", { class: "labels" });
    markerLayer.appendChild(dots);
    markerLayer.appendChild(labels);
    // Every dot is placed first so that no label covers one.
    const taken = items.map((it) => ({ x: it.x - 8, y: it.y - 8, w: 16, h: 16 }));
    for (const { r, x, y, st } of items) {
      const vipText = (r.vips || []).map((v) => v.addr + " " + (vipOk(v) ? "up" : "down")).join(", ");
      const title =
        r.zone + "/" + r.name + ": " + st + " (override " + r.override + ")\nVIPs: " + vipText +
        "\nRTT " + fmtMs(r.rtt_ms) + ", load " + fmtLoad(r.load);
      dots.appendChild(
        s(
          "g",
          Object.assign({ class: "marker" }, regionAttrs(r, st, "marker")),
          s("title", null, title),
          s("circle", { class: "halo", cx: x.toFixed(1), cy: y.toFixed(1), r: 12 }),
          s("circle", { class: "dot", cx: x.toFixed(1), cy: y.toFixed(1), r: 5.5 }),
        ),
      );
    }
    // Labels, the most urgent first, each at the first free spot; one that fits nowhere is left
    // out (its dot keeps a tooltip and the region is listed beside the map).
    items.sort((a, b) => PRIORITY[a.st] - PRIORITY[b.st] || a.y - b.y);
    const inside = (b) => b.x >= 2 && b.y >= 2 && b.x + b.w <= W.WIDTH - 2 && b.y + b.h <= W.HEIGHT - 2;
    const free = (b) => inside(b) && !taken.some((t) => overlaps(t, { x: b.x - 2, y: b.y - 2, w: b.w + 4, h: b.h + 4 }));
    for (const { r, x, y, st } of items) {
      const n = (r.vips || []).length;
      const parts = [];
      if (r.override !== "auto") parts.push(r.override);
      parts.push(vipsUp(r) + "/" + n + " VIPs up");
      if (r.rtt_ms !== null && r.rtt_ms !== undefined) parts.push(fmtMs(r.rtt_ms));
      if (r.load !== null && r.load !== undefined) parts.push("load " + fmtLoad(r.load));
      const detail = parts.join(" · ");
      const stateText = STATE_LABEL[st].toUpperCase();
      const nameEl = s("text", { class: "label-name" }, r.name);
      const stateEl = s("text", { class: "label-state" }, stateText);
      const detailEl = compact ? null : s("text", { class: "label-detail" }, detail);
      const nameW = measure(nameEl, textWidth(r.name, 13, true));
      const stateW = measure(stateEl, textWidth(stateText, 9.5, true));
      const detailW = compact ? 0 : measure(detailEl, textWidth(detail, 10.5, false));
      const w = Math.ceil(Math.max(nameW + 7 + stateW, detailW) + 16);
      const hgt = compact ? 23 : 38;
      let box = null;
      for (const c of labelSpots(x, y, w, hgt)) {
        const b = { x: c.x, y: c.y, w, h: hgt };
        if (free(b)) {
          box = b;
          break;
        }
      }
      if (!box) continue;
      taken.push(box);
      // A leader from the dot to the nearest point of the label when it stands off.
      const lx = Math.min(Math.max(x, box.x), box.x + box.w);
      const ly = Math.min(Math.max(y, box.y), box.y + box.h);
      const far = Math.hypot(lx - x, ly - y) > 12;
      labels.appendChild(
        s(
          "g",
          Object.assign({ class: "marker map-label" }, regionAttrs(r, st, "label")),
          far ? s("line", { class: "leader", x1: x.toFixed(1), y1: y.toFixed(1), x2: lx.toFixed(1), y2: ly.toFixed(1) }) : null,
          s("rect", { class: "label-bg", x: box.x.toFixed(1), y: box.y.toFixed(1), width: box.w, height: box.h, rx: 5 }),
          place(nameEl, box.x + 8, box.y + 16),
          place(stateEl, box.x + 8 + nameW + 7, box.y + 15.5),
          compact ? null : place(detailEl, box.x + 8, box.y + 31),
        ),
      );
    }
  }

  function vipChip(v) {
    const ok = vipOk(v);
    return h(
      "span",
      { class: "vip", "data-vip": v.addr, "data-up": String(ok), title: v.addr + ": " + (ok ? "up" : "down") + (v.override !== "auto" ? " (" + v.override + ")" : "") },
      h("i", { class: "dot", "data-s": ok ? "up" : "down" }),
      v.addr,
      v.override !== "auto" ? h("span", { class: "ov" }, v.override) : null,
    );
  }

  // A region answered by name shows its CNAME target where others show VIPs.
  function targets(r) {
    if (r.cname) return [h("span", { class: "vip", "data-cname": r.cname, title: "answers CNAME " + r.cname }, "→ " + r.cname)];
    return (r.vips || []).map(vipChip);
  }

  function loadView(r) {
    if (r.load === null || r.load === undefined) return h("span", { class: "faint" }, "—");
    const pct = Math.max(0, Math.min(100, r.load * 100));
    return [
      h("span", { class: "loadbar" }, h("i", { style: "width:" + pct.toFixed(0) + "%", "data-high": String(r.load >= 0.8) })),
      h("b", null, fmtLoad(r.load)),
    ];
  }

  function renderCards(d, states) {
    const zones = new Set(d.regions.map((r) => r.zone));
    $("regions-note").textContent = plural(d.regions.length, "region") + " in " + plural(zones.size, "zone");
    if (!d.regions.length) {
      replace($("region-cards"), h("div", { class: "empty" }, "No regions configured."));
      return;
    }
    replace(
      $("region-cards"),
      d.regions.map((r) => {
        const st = states.get(regionKey(r));
        return h(
          "div",
          Object.assign({ class: "rcard" }, regionAttrs(r, st, "card")),
          h(
            "div",
            { class: "rcard-head" },
            h("span", { class: "rcard-name" }, r.name),
            h("span", { class: "rcard-zone" }, r.zone + (r.override !== "auto" ? " · " + r.override : "")),
            h("span", { class: "badge", "data-s": st }, STATE_LABEL[st]),
          ),
          h("div", { class: "rcard-vips" }, targets(r)),
          h(
            "div",
            { class: "rcard-stats" },
            h("span", null, "RTT ", h("b", null, fmtMs(r.rtt_ms))),
            h("span", null, "load ", loadView(r)),
            probeBrief(r, d.health_now_s ?? d.uptime_s),
          ),
        );
      }),
    );
  }

  function renderTable(d, states) {
    const now = d.health_now_s ?? d.uptime_s;
    const body = $("regions-body");
    if (!d.regions.length) {
      replace(body, h("tr", null, h("td", { colspan: 8, class: "empty" }, "No regions configured.")));
      return;
    }
    replace(
      body,
      d.regions.map((r) => {
        const st = states.get(regionKey(r));
        const ovState = r.override === "auto" ? "auto" : r.override;
        return h(
          "tr",
          regionAttrs(r, st, "row"),
          h("td", { class: "zone" }, r.zone),
          h("td", { class: "region-name" }, r.name),
          h("td", null, h("span", { class: "badge", "data-s": st }, STATE_LABEL[st])),
          h("td", null, h("span", { class: "badge", "data-s": ovState }, r.override)),
          h("td", { class: "vips-cell" }, targets(r)),
          h("td", { class: "num" }, fmtMs(r.rtt_ms)),
          h(
            "td",
            { class: "load-cell" },
            loadView(r),
            r.load_age_s !== null && r.load_age_s !== undefined
              ? h("span", { class: "faint" }, " · " + fmtDuration(r.load_age_s) + " old")
              : null,
          ),
          h("td", { class: "probe-cell" }, probeLines(r, now)),
        );
      }),
    );
  }

  function renderServices(d, states) {
    const byName = new Map();
    for (const r of d.regions) byName.set(regionKey(r), r);
    const blocks = [];
    for (const z of d.zones || []) {
      const zoneName = z.origin.replace(/\.$/, "");
      for (const svc of z.services || []) {
        const counts = svc.answers_last_minute || {};
        const regions = svc.regions.slice();
        for (const k of Object.keys(counts)) if (!regions.includes(k)) regions.push(k);
        const total = regions.reduce((a, k) => a + (counts[k] || 0), 0);
        blocks.push(
          h(
            "div",
            { class: "svc", "data-service": svc.fqdn },
            h(
              "div",
              { class: "svc-head" },
              h("span", { class: "svc-name" }, svc.fqdn),
              h(
                "span",
                { class: "svc-meta" },
                svc.chain.join(" → ") + " · ttl " + svc.ttl + " s · " + plural(svc.answers, "answer") + " per query · " +
                  (total ? plural(total, "answer") + " in the last minute" : "no answers in the last minute"),
              ),
            ),
            h(
              "div",
              { class: "share" },
              regions.map((name) => {
                const n = counts[name] || 0;
                const pct = total ? (100 * n) / total : 0;
                const r = byName.get(zoneName + "/" + name);
                const st = r ? states.get(regionKey(r)) : "other";
                return [
                  h("span", { class: "share-name", "data-region": name, "data-state": st }, h("i", { class: "dot", "data-s": st }), name),
                  h("span", { class: "share-track" }, h("span", { class: "share-fill", "data-s": st, style: "display:block;width:" + pct.toFixed(1) + "%" })),
                  h("span", { class: "share-val" }, h("b", null, Math.round(pct) + "%"), " · " + n),
                ];
              }),
            ),
          ),
        );
      }
    }
    if (!blocks.length) blocks.push(h("div", { class: "empty" }, "No steered services."));
    replace($("services"), blocks);
  }

  function transitionState(x) {
    if (x === "up" || x === "down" || x === "drained" || x === "partial") return x;
    if (x === "drain") return "drained";
    return "other";
  }

  function renderTransitions(d) {
    const list = (d.transitions || []).slice(-MAX_TRANSITIONS).reverse();
    if (!list.length) {
      replace($("transitions"), h("li", { class: "empty" }, "No transitions since start."));
      return;
    }
    replace(
      $("transitions"),
      list.map((t) =>
        h(
          "li",
          { "data-target": t.target, "data-to": t.to },
          h("span", { class: "tr-when", title: "at " + t.at.toFixed(1) + " s after start" }, fmtAgo((d.health_now_s ?? d.uptime_s) - t.at)),
          h(
            "span",
            { class: "tr-main" },
            h("span", { class: "tr-target" }, t.target),
            h("span", { class: "badge", "data-s": transitionState(t.from) }, t.from),
            h("span", { class: "tr-arrow" }, "→"),
            h("span", { class: "badge", "data-s": transitionState(t.to) }, t.to),
          ),
          t.reason ? h("span", { class: "tr-reason" }, t.reason) : null,
        ),
      ),
    );
  }

  function renderReload(d) {
    const rl = d.last_reload;
    const box = $("reload");
    if (!rl) {
      replace(box, h("div", { class: "muted" }, "No reload since start: the configuration in force is the one gslbd started with."));
      return;
    }
    const when = new Date(rl.at * 1000);
    const lists = [
      ["errors", rl.errors, "errors"],
      ["warnings", rl.warnings, "warnings"],
      ["zones added", rl.zones_added],
      ["zones removed", rl.zones_removed],
      ["regions added", rl.regions_added],
      ["regions removed", rl.regions_removed],
      ["services added", rl.services_added],
      ["services removed", rl.services_removed],
    ].filter(([, items]) => items && items.length);
    replace(
      box,
      h(
        "div",
        { class: "reload-head" },
        h("span", { class: "badge", "data-s": rl.ok ? "up" : "down" }, rl.ok ? "ok" : "failed"),
        h("span", null, "by " + rl.trigger),
        h("span", { class: "muted", title: when.toISOString() }, when.toLocaleString() + " · " + fmtAgo(Date.now() / 1000 - rl.at)),
        !lists.length ? h("span", { class: "faint" }, "nothing changed") : null,
      ),
      lists.length
        ? h(
            "div",
            { class: "reload-lists" },
            lists.map(([title, items, cls]) => h("div", { class: cls }, h("h4", null, title), h("ul", null, items.map((x) => h("li", null, x))))),
          )
        : null,
    );
  }

  function render(d) {
    d.regions = d.regions || [];
    const states = new Map();
    for (const r of d.regions) states.set(regionKey(r), regionState(r));
    renderMeta(d);
    renderSummary(d, states);
    renderMap(d, states);
    renderCards(d, states);
    renderTable(d, states);
    renderServices(d, states);
    renderTransitions(d);
    renderReload(d);
  }

  // ---- fleet (cluster mode) ----------------------------------------------------------------

  // The vantage × target matrix from /v1/cluster: one row per probe target, one column per
  // member with what it observes, then the fleet's verdict.
  function renderFleet(c) {
    const card = $("fleet-card");
    if (!c || c.mode !== "cluster" || !c.fleet) {
      card.hidden = true;
      return;
    }
    card.hidden = false;
    const f = c.fleet;
    const members = Object.keys(f.members || {});
    if (!members.includes(f.instance)) members.push(f.instance);
    members.sort();
    $("fleet-note").textContent =
      "this is " + f.instance + " · rule " + f.rule + " · " + plural(members.length, "member") +
      " · etcd " + (c.etcd.connected ? "connected" : "OUT OF REACH: own probes decide");
    const warnings = [];
    if (!c.etcd.connected) warnings.push("etcd is out of reach: this instance answers from its own probes and the last overrides it knew.");
    for (const z of f.zone_mismatches || []) warnings.push("members serve different data for zone " + z + " (zone file digests differ).");
    const w = $("fleet-warnings");
    w.hidden = warnings.length === 0;
    replace(w, ...warnings.map((t) => h("div", {}, t)));
    replace($("fleet-head"), h("tr", {}, h("th", {}, "Target"), ...members.map((m) => h("th", {}, m)), h("th", {}, "Fleet")));
    replace($("fleet-body"), ...(f.targets || []).map((t) => {
      const cells = members.map((m) => {
        const o = (t.votes || {})[m];
        if (!o) return h("td", { class: "faint" }, "—");
        const bits = [o.up ? "up" : "down"];
        if (o.rtt_ms != null) bits.push(fmtMs(o.rtt_ms));
        if (o.load != null) bits.push(fmtLoad(o.load));
        return h("td", { "data-state": o.up ? "up" : "down", title: o.error || "" }, bits.join(" · "));
      });
      const verdict = (t.up ? "up" : "down") + " (" + t.down + "/" + t.voters + " down)";
      return h("tr", { "data-state": t.up ? "up" : "down" }, h("td", {}, t.target), ...cells, h("td", {}, verdict));
    }));
  }

  async function pollFleet() {
    try {
      const res = await fetch("/v1/cluster", { cache: "no-store" });
      if (res.ok) renderFleet(await res.json());
    } catch (e) {
      // The main poll reports reachability.
    }
  }

  // ---- polling ---------------------------------------------------------------------------

  let lastOk = null;

  function setLive(kind, text) {
    $("live").setAttribute("data-live", kind);
    $("live-text").textContent = text;
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const res = await fetch("/v1/status", { cache: "no-store", signal: ctl.signal });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const d = await res.json();
      render(d);
      pollFleet();
      lastOk = new Date();
      document.body.setAttribute("data-loaded", "true");
      setLive("ok", "live · updated " + lastOk.toLocaleTimeString());
    } catch (e) {
      const since = lastOk ? " · last update " + lastOk.toLocaleTimeString() : "";
      setLive("stale", "cannot reach gslbd (" + (e && e.name === "AbortError" ? "timeout" : (e && e.message) || e) + ")" + since);
    } finally {
      clearTimeout(timer);
      setTimeout(poll, POLL_MS);
    }
  }

  setupMap();
  renderLegend();
  poll();
})();
