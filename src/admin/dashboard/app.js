// The live dashboard: polls GET /signals?window=… every 2 s and draws the six signals (uPlot for the two
// time series, plain tables for the rest). Every value from the API goes in as text (textContent), never as HTML.
//
// Authentication. When the admin listener is bound beyond loopback it wants `Authorization: Bearer <token>`
// (the contents of admin.token_file). Open the page as `/#token=<token>`: the token is read from the
// fragment (which browsers never send to a server or in a Referer), kept in this tab's sessionStorage, removed
// from the address bar, and sent on every fetch. A 401 shows a form asking for it. The page and its files hold
// no data, so the listener serves them without the token.
'use strict';

(() => {
  const POLL_MS = 2000;
  const TOKEN_KEY = 'sluice.admin.token';
  const WINDOWS = ['1m', '5m', '1h', 'all'];
  /** Charts draw the busiest destinations; the rest are summed as "other". */
  const TOP_SERIES = 8;
  /** Tables scroll, but never hold more rows than this. */
  const MAX_ROWS = 100;
  const EMPTY = 'no traffic yet';
  // Okabe–Ito: distinguishable with the common colour-vision deficiencies.
  const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];
  const OTHER_COLOUR = '#999999';

  const $ = (sel, root = document) => root.querySelector(sel);
  const section = (name) => $(`[data-signal="${name}"]`);

  // ------------------------------------------------------------------------------------------
  // Token
  // ------------------------------------------------------------------------------------------

  let token = null;

  function storeToken(value) {
    token = value || null;
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage switched off: the token lives as long as the page.
    }
  }

  function loadToken() {
    try {
      token = sessionStorage.getItem(TOKEN_KEY);
    } catch {
      token = null;
    }
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.has('token')) {
      storeToken(params.get('token'));
      params.delete('token');
      const rest = params.toString();
      history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    }
  }

  // ------------------------------------------------------------------------------------------
  // Polling
  // ------------------------------------------------------------------------------------------

  const select = $('#window');
  let timer = 0;
  let inflight = null;
  let shown = false;

  function currentWindow() {
    return WINDOWS.includes(select.value) ? select.value : '5m';
  }

  async function poll() {
    clearTimeout(timer);
    inflight?.abort();
    const ctl = new AbortController();
    inflight = ctl;
    const headers = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    let retry = true;
    try {
      const res = await fetch(`signals?window=${encodeURIComponent(currentWindow())}`, { headers, signal: ctl.signal, cache: 'no-store' });
      if (res.status === 401) {
        retry = false;
        needToken(token ? 'The token was refused.' : '');
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const snap = await res.json();
      $('#auth').hidden = true;
      shown = true;
      render(snap);
      setStatus(`updated ${new Date(snap.generated_at).toLocaleTimeString()} · window ${snap.window} · up ${duration(snap.uptime_s)}`);
    } catch (err) {
      if (ctl.signal.aborted) return;
      setStatus(`cannot reach Sluice (${err.message}); retrying${shown ? ', showing the last data' : ''}`, true);
    } finally {
      if (inflight === ctl) {
        inflight = null;
        if (retry) timer = setTimeout(poll, POLL_MS);
      }
    }
  }

  function needToken(why) {
    storeToken(null);
    const auth = $('#auth');
    auth.hidden = false;
    setStatus(`${why} A token is required to read the signals.`.trim(), true);
    $('#auth-token').focus();
  }

  function setStatus(text, bad = false) {
    const s = $('#status');
    s.textContent = text;
    s.classList.toggle('bad', bad);
  }

  // ------------------------------------------------------------------------------------------
  // DOM helpers: text only
  // ------------------------------------------------------------------------------------------

  /** `el('td', {class: 'num'}, 'text', childNode)`: strings become text nodes, never markup. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'style') Object.assign(e.style, v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function pct(x) {
    if (!Number.isFinite(x)) return '–';
    const v = x * 100;
    return `${v === 0 || v >= 10 ? v.toFixed(0) : v.toFixed(1)}%`;
  }

  function ms(x) {
    if (!Number.isFinite(x)) return '–';
    return x >= 100 ? `${x.toFixed(0)} ms` : x >= 1 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`;
  }

  function int(x) {
    return Number.isFinite(x) ? x.toLocaleString() : '–';
  }

  function duration(s) {
    if (!Number.isFinite(s)) return '–';
    if (s < 120) return `${Math.floor(s)} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min`;
    return `${Math.floor(s / 3600)} h`;
  }

  function time(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
  }

  /** A bar inside a table cell: the width is the value, the text says it too (colour is not the only cue). */
  function bar(fraction, text, kind) {
    const w = Math.max(0, Math.min(1, Number(fraction) || 0));
    return el('div', { class: `bar ${kind ?? ''}` }, el('span', { class: 'fill', style: { width: `${(w * 100).toFixed(1)}%` } }), el('span', { class: 'label' }, text));
  }

  function kindOf(d) {
    return d.sanctioned ? 'sanctioned' : d.shadow ? 'shadow' : 'unsanctioned';
  }

  function badge(kind) {
    return el('span', { class: `badge ${kind}` }, kind);
  }

  /** Fills a section's table body (capped) and its caption; sets the empty state and data-rendered. */
  function fillTable(sec, rows, total, emptyText) {
    const tbody = $('.scroll tbody', sec);
    tbody.replaceChildren(...rows.slice(0, MAX_ROWS));
    const note = $('.scroll caption.note', sec);
    if (note) note.textContent = total > MAX_ROWS ? `top ${MAX_ROWS} of ${total}` : '';
    markRendered(sec, rows.length > 0, emptyText);
  }

  function markRendered(sec, has, emptyText) {
    sec.dataset.rendered = String(has);
    const empty = $('.empty', sec);
    empty.textContent = has ? '' : emptyText;
    empty.hidden = has;
    for (const part of sec.querySelectorAll('.scroll, .chart, .split, .headline, .latency-heads, .alert-list')) part.hidden = !has;
  }

  // ------------------------------------------------------------------------------------------
  // Charts (uPlot, loaded beside this file; tables still render if it is missing)
  // ------------------------------------------------------------------------------------------

  const charts = new Map();

  /** Draws `data` in the section's .chart, rebuilding the plot only when its series change. */
  function plot(sec, series, data, unit = '') {
    if (typeof uPlot !== 'function') return;
    const box = $('.chart', sec);
    const key = JSON.stringify(series.map((s) => [s.label, s.stroke, s.dash]));
    let entry = charts.get(sec);
    if (entry && entry.key !== key) {
      entry.chart.destroy();
      entry = undefined;
    }
    if (!entry) {
      const opts = {
        width: chartWidth(box),
        height: 220,
        scales: { x: { time: true }, y: { range: (_, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [axis(), { ...axis(), size: 70, values: (_, ticks) => ticks.map((v) => `${v}${unit}`) }],
        series: [{}, ...series.map((s) => ({ spanGaps: false, width: 2, points: { show: true, size: 4 }, ...s }))],
      };
      entry = { key, chart: new uPlot(opts, data, box) };
      charts.set(sec, entry);
    } else {
      entry.chart.setData(data);
    }
  }

  /** Axis text and grid in the page's colours (uPlot draws them on canvas, outside CSS). */
  function axis() {
    const css = getComputedStyle(document.documentElement);
    const line = { stroke: css.getPropertyValue('--line').trim() || '#ddd', width: 1 };
    return { stroke: css.getPropertyValue('--fg').trim() || '#000', grid: line, ticks: line };
  }

  function chartWidth(box) {
    return Math.max(280, Math.floor(box.getBoundingClientRect().width || box.parentElement.clientWidth - 32));
  }

  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [sec, { chart }] of charts) chart.setSize({ width: chartWidth($('.chart', sec)), height: 220 });
    }, 100);
  });

  /** Epoch seconds of each trend bucket: the latency series' own times when they line up, else counted back from now. */
  function bucketTimes(snap, n) {
    const series = snap.latency?.series ?? [];
    if (series.length === n) return series.map((p) => p.t);
    const bucket = snap.bucket_s || 10;
    const end = Math.floor(Date.parse(snap.generated_at) / 1000 / bucket) * bucket;
    return Array.from({ length: n }, (_, i) => end - (n - 1 - i) * bucket);
  }

  // ------------------------------------------------------------------------------------------
  // The six signals
  // ------------------------------------------------------------------------------------------

  function render(snap) {
    const quiet = !(snap.totals?.requests > 0);
    renderTotals(snap);
    renderAlerts(snap, quiet);
    renderDestinations(snap, quiet);
    renderPii(snap, quiet);
    renderCrossRegion(snap, quiet);
    renderFailures(snap, quiet);
    renderLatency(snap, quiet);
    renderUnauthorized(snap, quiet);
  }

  function renderTotals(snap) {
    const t = snap.totals ?? {};
    const items = [
      ['requests', t.requests], ['allowed', t.allowed], ['alerted', t.alerted], ['redacted', t.redacted],
      ['blocked', t.blocked], ['failed', t.failed], ['denied', t.denied], ['tunnelled', t.tunnelled],
      ['tokens in', t.input_tokens], ['tokens out', t.output_tokens],
    ];
    $('#totals').replaceChildren(...items.flatMap(([k, v]) => [el('div', {}, el('dt', {}, k), el('dd', {}, int(v)))]));
  }

  function renderAlerts(snap, quiet) {
    const sec = section('alerts');
    const alerts = snap.alerts ?? [];
    $('.alert-list', sec).replaceChildren(
      ...alerts.slice(0, 20).map((a) =>
        el('li', {}, el('span', { class: 'badge alert' }, a.kind), ' ', el('time', { datetime: a.time }, time(a.time)), ' ',
          el('strong', {}, a.rule), ': ', a.message, a.subject ? ` (${a.subject})` : ''),
      ),
    );
    markRendered(sec, alerts.length > 0, quiet ? EMPTY : 'no alerts in this window');
  }

  function renderDestinations(snap, quiet) {
    const sec = section('destinations');
    const dests = [...(snap.destinations ?? [])].sort((a, b) => b.requests - a.requests);
    const total = dests.reduce((n, d) => n + d.requests, 0);

    const rows = dests.map((d) =>
      el('tr', { 'data-host': d.host, 'data-kind': kindOf(d) },
        el('td', {}, d.host), el('td', {}, d.provider), el('td', {}, badge(kindOf(d))),
        el('td', { class: 'num' }, int(d.requests)), el('td', { class: 'num' }, pct(total ? d.requests / total : 0))),
    );
    // Shown before plotting, so a new chart measures a visible box.
    fillTable(sec, rows, dests.length, EMPTY);

    // The split, as a stacked bar with its numbers written out.
    const byKind = { sanctioned: 0, unsanctioned: 0, shadow: 0 };
    for (const d of dests) byKind[kindOf(d)] += d.requests;
    const split = $('.split', sec);
    split.replaceChildren(
      el('div', { class: 'stack', 'aria-hidden': 'true' },
        ...Object.entries(byKind).filter(([, n]) => n > 0).map(([k, n]) => el('span', { class: k, style: { width: `${(100 * n) / total}%` } }))),
      el('p', {}, ...Object.entries(byKind).flatMap(([k, n]) => [badge(k), ` ${int(n)} (${pct(total ? n / total : 0)})  `])),
    );

    // Trend: the busiest destinations and "other"; not sanctioned is dashed.
    const top = dests.slice(0, TOP_SERIES);
    const rest = dests.slice(TOP_SERIES);
    const n = Math.max(0, ...dests.map((d) => d.trend?.length ?? 0));
    if (n > 0 && dests.length > 0) {
      const pad = (tr) => Array.from({ length: n }, (_, i) => tr?.[i - (n - (tr?.length ?? 0))] ?? 0);
      const series = top.map((d, i) => ({
        label: `${d.host} (${kindOf(d)})`,
        stroke: PALETTE[i % PALETTE.length],
        dash: d.sanctioned ? undefined : [6, 4],
      }));
      const data = [bucketTimes(snap, n), ...top.map((d) => pad(d.trend))];
      if (rest.length > 0) {
        series.push({ label: 'all other hosts', stroke: OTHER_COLOUR });
        const sum = new Array(n).fill(0);
        for (const d of rest) pad(d.trend).forEach((v, i) => (sum[i] += v));
        data.push(sum);
      }
      plot(sec, series, data);
    }
  }

  function renderPii(snap, quiet) {
    const sec = section('pii');
    const routes = [...(snap.routes ?? [])].sort((a, b) => b.pii_rate - a.pii_rate || b.requests - a.requests);
    const rows = routes.map((r) => {
      const findings = Object.entries(r.findings ?? {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
      return el('tr', { 'data-route': r.route },
        el('td', {}, r.route),
        el('td', {}, bar(r.pii_rate, pct(r.pii_rate), r.pii_rate > 0 ? 'warn' : '')),
        el('td', { class: 'num' }, int(r.with_pii)), el('td', { class: 'num' }, int(r.requests)),
        el('td', {}, findings.length ? findings.map(([c, n]) => `${c} ${int(n)}`).join(', ') : '—'));
    });
    fillTable(sec, rows, routes.length, quiet ? EMPTY : 'no routes in this window');
  }

  function renderCrossRegion(snap, quiet) {
    const sec = section('cross-region');
    const xr = snap.cross_region ?? { exchanges: 0, share: 0, flows: [] };
    const flows = [...(xr.flows ?? [])].sort((a, b) => b.count - a.count);
    const sum = flows.reduce((n, f) => n + f.count, 0);
    $('.headline .big', sec).textContent = pct(xr.share);
    $('.headline .sub', sec).textContent = `of exchanges crossed a border (${int(xr.exchanges)})`;
    const rows = flows.map((f) =>
      el('tr', { 'data-from': f.from, 'data-to': f.to },
        el('td', {}, f.from), el('td', {}, f.to), el('td', { class: 'num' }, int(f.count)), el('td', { class: 'num' }, pct(sum ? f.count / sum : 0))),
    );
    fillTable(sec, rows, flows.length, quiet ? EMPTY : 'no cross-region flows in this window');
  }

  function renderFailures(snap, quiet) {
    const sec = section('failures');
    const dests = (snap.destinations ?? []).filter((d) => d.requests > 0)
      .sort((a, b) => b.failure_rate - a.failure_rate || b.failures - a.failures || b.requests - a.requests);
    const rows = dests.map((d) =>
      el('tr', { 'data-host': d.host },
        el('td', {}, d.host),
        el('td', {}, bar(d.failure_rate, pct(d.failure_rate), d.failure_rate > 0 ? 'bad' : '')),
        el('td', { class: 'num' }, int(d.failures)), el('td', { class: 'num' }, int(d.requests)), el('td', { class: 'num' }, ms(d.p99_ms))),
    );
    fillTable(sec, rows, dests.length, quiet ? EMPTY : 'no requests in this window');
  }

  function renderLatency(snap, quiet) {
    const sec = section('latency');
    const lat = snap.latency ?? {};
    const heads = [['total', lat.total], ['upstream first byte', lat.upstream_ttfb], ['Sluice overhead', lat.overhead]];
    $('.latency-heads', sec).replaceChildren(
      ...heads.map(([name, p]) =>
        el('div', { 'data-metric': name }, el('dt', {}, name), el('dd', {}, `p50 ${ms(p?.p50)} · p99 ${ms(p?.p99)} · max ${ms(p?.max)}`))),
    );
    const series = lat.series ?? [];
    const has = (lat.total?.count ?? 0) > 0 || series.some((p) => p.count > 0);
    markRendered(sec, has, quiet ? EMPTY : 'no completed exchanges in this window');
    if (!has) return;
    const val = (k) => series.map((p) => (p.count > 0 ? p[k] : null));
    plot(
      sec,
      [
        { label: 'p50', stroke: PALETTE[0], value: (_, v) => (v == null ? '–' : ms(v)) },
        { label: 'p90', stroke: PALETTE[1], dash: [2, 3], value: (_, v) => (v == null ? '–' : ms(v)) },
        { label: 'p99', stroke: PALETTE[5], dash: [8, 4], value: (_, v) => (v == null ? '–' : ms(v)) },
        { label: 'p99.9', stroke: PALETTE[7], dash: [12, 3, 2, 3], value: (_, v) => (v == null ? '–' : ms(v)) },
      ],
      [series.map((p) => p.t), val('p50'), val('p90'), val('p99'), val('p999')],
      ' ms',
    );
  }

  function renderUnauthorized(snap, quiet) {
    const sec = section('unauthorized');
    const u = snap.unauthorized ?? { attempts: 0, recent: [] };
    const recent = u.recent ?? [];
    $('.headline .big', sec).textContent = int(u.attempts);
    $('.headline .sub', sec).textContent = recent.length < u.attempts ? `attempts (the latest ${recent.length} below)` : 'attempts';
    const rows = recent.map((a) =>
      el('tr', { 'data-host': a.host, 'data-subject': a.subject },
        el('td', { class: 'when' }, el('time', { datetime: a.time }, time(a.time))), el('td', {}, a.subject || 'anonymous'), el('td', {}, a.client),
        el('td', {}, a.host), el('td', {}, a.provider),
        el('td', {}, el('span', { class: `badge ${/block|deny/.test(a.action) ? 'blocked' : 'alert'}` }, a.action)),
        el('td', {}, a.reason)),
    );
    fillTable(sec, rows, recent.length, quiet ? EMPTY : 'no unauthorised attempts in this window');
  }

  // ------------------------------------------------------------------------------------------
  // Start
  // ------------------------------------------------------------------------------------------

  loadToken();
  const asked = new URLSearchParams(location.search).get('window');
  if (WINDOWS.includes(asked)) select.value = asked;
  select.addEventListener('change', () => {
    const url = new URL(location.href);
    url.searchParams.set('window', currentWindow());
    history.replaceState(history.state, '', url);
    poll();
  });
  $('#auth-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#auth-token');
    storeToken(input.value.trim());
    input.value = '';
    $('#auth').hidden = true;
    setStatus('loading…');
    poll();
  });
  poll();
})();
