/* FacePerks merchant dashboard: plain browser JS + ECharts, talking to the analytics, members and visitors API. */
(function () {
  'use strict';
  var KEY = 'faceperks.merchantKey';
  var $ = function (id) { return document.getElementById(id); };
  var charts = {};
  var state = { stores: [], last: null, keepFaceCrops: false };

  function key() { return sessionStorage.getItem(KEY); }

  async function api(path, init) {
    init = init || {};
    var headers = Object.assign({ Authorization: 'Bearer ' + key() }, init.headers || {});
    var res = await fetch(path, Object.assign({}, init, { headers: headers }));
    if (!res.ok) {
      var message = res.status + ' ' + res.statusText;
      try { var body = await res.json(); if (body && body.error) message = body.error.message; } catch (e) { /* not json */ }
      var err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return res;
  }
  async function json(path) { return (await api(path)).json(); }
  async function post(path, body) {
    return (await api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).json();
  }

  /** What the identity panel (identity.js) shares with this page. */
  window.FacePerks = { $: $, api: api, json: json, post: post, cell: cell, when: when, crop: crop };

  function showSignedIn(signedIn) {
    $('sign-in').hidden = signedIn;
    $('dashboard').hidden = !signedIn;
    $('sign-out').hidden = !signedIn;
  }

  async function signIn(candidate) {
    sessionStorage.setItem(KEY, candidate);
    try {
      var body = await json('/v1/stores');
      state.stores = body.stores || [];
    } catch (error) {
      sessionStorage.removeItem(KEY);
      $('sign-in-error').textContent = error.status === 403 || error.status === 400
        ? 'This key cannot read analytics: use a merchant key.'
        : 'Sign-in failed: ' + error.message;
      showSignedIn(false);
      return;
    }
    $('sign-in-error').textContent = '';
    if (state.stores.length > 0) {
      var merchant = await json('/v1/merchants/' + encodeURIComponent(state.stores[0].merchantId)).catch(function () { return {}; });
      state.keepFaceCrops = merchant.keepFaceCrops === true;
    }
    var select = $('store');
    select.textContent = '';
    state.stores.forEach(function (s) {
      var option = document.createElement('option');
      option.value = s.id;
      option.textContent = s.name + ' (' + s.timezone + ')';
      select.appendChild(option);
    });
    showSignedIn(true);
    loadMembers();
    if (state.stores.length === 0) { $('status').textContent = 'This merchant has no stores yet.'; return; }
    applyPreset();
    await load();
  }

  function isoDate(d) { return d.toISOString().slice(0, 10); }
  function addDays(dateString, n) {
    var d = new Date(dateString + 'T12:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return isoDate(d);
  }
  function applyPreset() {
    var preset = $('preset').value;
    if (preset === 'custom') return;
    var today = isoDate(new Date());
    $('to').value = today;
    $('from').value = addDays(today, -(Number(preset) - 1));
  }

  function query(extra) {
    // Dates are the store's local days; `to` is inclusive in the form, exclusive in the API.
    var params = new URLSearchParams({ from: $('from').value, to: addDays($('to').value, 1), interval: $('interval').value });
    Object.keys(extra || {}).forEach(function (k) { params.set(k, extra[k]); });
    return params.toString();
  }

  function label(start, interval) {
    return interval === 'hour' ? start.slice(0, 10) + ' ' + start.slice(11, 16) : start.slice(0, 10);
  }

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init($(id), null, { renderer: 'canvas' });
    return charts[id];
  }

  function setKpi(name, value) {
    var el = document.querySelector('[data-kpi="' + name + '"]');
    if (el) el.textContent = String(value);
  }

  async function load() {
    var storeId = $('store').value;
    if (!storeId || !$('from').value || !$('to').value) return;
    $('status').textContent = 'Loading…';
    var base = '/v1/stores/' + encodeURIComponent(storeId) + '/analytics/';
    try {
      var results = await Promise.all([
        json(base + 'traffic?' + query()),
        json(base + 'demographics?' + query()),
        json(base + 'visitors?' + query()),
        json(base + 'peak-hours?' + query()),
      ]);
      render(results[0], results[1], results[2], results[3]);
      await window.FacePerksIdentity.load(storeId, $('from').value);
      state.last = { storeId: storeId };
      $('status').textContent = 'Showing ' + results[0].buckets.length + ' ' + results[0].interval + ' buckets, ' + results[0].timezone + ' time.';
      document.body.dataset.loaded = storeId;
    } catch (error) {
      if (error.status === 401) { sessionStorage.removeItem(KEY); showSignedIn(false); }
      $('status').textContent = 'Could not load analytics: ' + error.message;
    }
  }

  function render(traffic, demo, visitors, peak) {
    var labels = traffic.buckets.map(function (b) { return label(b.start, traffic.interval); });
    var col = function (rows, name) { return rows.map(function (b) { return b[name]; }); };
    setKpi('visits', traffic.totals.visits);
    setKpi('uniqueSubjects', traffic.totals.uniqueSubjects);
    setKpi('memberVisits', traffic.totals.memberVisits);
    setKpi('visitorVisits', traffic.totals.visitorVisits);
    setKpi('newVisitors', visitors.totals.newVisitors);
    setKpi('returningVisitors', visitors.totals.returningVisitors);
    setKpi('repeatVisitors', visitors.totals.repeatVisitors);
    setKpi('medianVisitMinutes', demo.totals.medianVisitMinutes);

    var axis = { type: 'category', data: labels, axisLabel: { hideOverlap: true } };
    var grid = { left: 40, right: 16, top: 36, bottom: 56 };
    var zoom = [{ type: 'inside' }, { type: 'slider', height: 16, bottom: 8 }];
    chart('chart-traffic').setOption({
      animation: false, tooltip: { trigger: 'axis' }, legend: {}, grid: grid, xAxis: axis, yAxis: { type: 'value', minInterval: 1 }, dataZoom: zoom,
      series: [
        { name: 'Visits', type: 'line', data: col(traffic.buckets, 'visits'), areaStyle: { opacity: 0.15 } },
        { name: 'Unique people', type: 'line', data: col(traffic.buckets, 'uniqueSubjects') },
      ],
    }, true);
    chart('chart-kinds').setOption({
      animation: false, tooltip: { trigger: 'axis' }, legend: {}, grid: grid, xAxis: axis, yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: 'Members', type: 'bar', stack: 'k', data: col(traffic.buckets, 'memberVisits') },
        { name: 'Visitors', type: 'bar', stack: 'k', data: col(traffic.buckets, 'visitorVisits') },
      ],
    }, true);
    chart('chart-returning').setOption({
      animation: false, tooltip: { trigger: 'axis' }, legend: {}, grid: grid, xAxis: axis, yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: 'New', type: 'bar', stack: 'v', data: col(visitors.buckets, 'newVisitors') },
        { name: 'Returning', type: 'bar', stack: 'v', data: col(visitors.buckets, 'returningVisitors') },
      ],
    }, true);
    var g = demo.totals.gender;
    chart('chart-gender').setOption({
      animation: false, tooltip: { trigger: 'item' }, legend: { bottom: 0 },
      series: [{ type: 'pie', radius: ['40%', '70%'], data: [
        { name: 'Female', value: g.female }, { name: 'Male', value: g.male }, { name: 'Unknown', value: g.unknown },
      ] }],
    }, true);
    var ages = Object.keys(demo.totals.age);
    chart('chart-age').setOption({
      animation: false, tooltip: { trigger: 'axis' }, grid: grid,
      xAxis: { type: 'category', data: ages }, yAxis: { type: 'value', minInterval: 1 },
      series: [{ name: 'Visits', type: 'bar', data: ages.map(function (a) { return demo.totals.age[a]; }) }],
    }, true);
    var cells = [];
    var max = 0;
    peak.matrix.forEach(function (row, d) { row.forEach(function (v, h) { cells.push([h, d, v]); if (v > max) max = v; }); });
    chart('chart-heatmap').setOption({
      animation: false, tooltip: { position: 'top' }, grid: { left: 48, right: 16, top: 8, bottom: 88 },
      xAxis: { type: 'category', data: Array.from({ length: 24 }, function (_, h) { return String(h).padStart(2, '0'); }), splitArea: { show: true } },
      yAxis: { type: 'category', data: peak.weekdays, inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max: Math.max(1, max), calculable: true, orient: 'horizontal', left: 'center', bottom: 0, itemHeight: 120 },
      series: [{ name: 'Visits', type: 'heatmap', data: cells, label: { show: max > 0 && max < 1000, formatter: function (p) { return p.value[2] ? String(p.value[2]) : ''; } } }],
    }, true);
  }

  async function downloadCsv() {
    var storeId = $('store').value;
    var kind = $('csv-kind').value;
    try {
      var res = await api('/v1/stores/' + encodeURIComponent(storeId) + '/analytics/' + kind + '?' + query({ format: 'csv' }));
      var blob = await res.blob();
      var url = URL.createObjectURL(blob);
      var a = document.createElement('a');
      a.href = url;
      a.download = kind + '-' + $('from').value + '-' + $('to').value + '.csv';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    } catch (error) {
      $('status').textContent = 'CSV download failed: ' + error.message;
    }
  }

  function when(iso) { return iso ? iso.slice(0, 16).replace('T', ' ') + ' UTC' : '–'; }
  function cell(row, text, className) {
    var td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }
  /** A face crop, fetched with the key (an <img src> cannot send it); nothing unless the merchant keeps crops. */
  function crop(faceId) {
    var img = document.createElement('img');
    img.className = 'crop';
    img.alt = '';
    if (!state.keepFaceCrops || !faceId) return img;
    api('/v1/faces/' + encodeURIComponent(faceId) + '/crop').then(function (res) { return res.blob(); })
      .then(function (blob) { img.src = URL.createObjectURL(blob); img.alt = 'face'; }, function () { img.hidden = true; });
    return img;
  }

  /** A key for one redemption: a double submit sends it twice and the API redeems once. */
  function idempotencyKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, '0'); }).join('');
  }

  async function loadMembers() {
    var params = new URLSearchParams({ sort: $('member-sort').value, limit: '50' });
    var q = $('member-q').value.trim();
    if (q) params.set('q', q);
    try {
      var page = await json('/v1/people?' + params);
      var body = $('members-table').tBodies[0];
      body.textContent = '';
      page.items.forEach(function (m) {
        var row = document.createElement('tr');
        row.dataset.id = m.id;
        var name = cell(row, m.displayName);
        if (m.faces.length > 0) name.prepend(crop(m.faces[0].id));
        cell(row, m.externalId || '–');
        cell(row, String(m.points), 'num');
        cell(row, when(m.lastSeenAt));
        var button = document.createElement('button');
        button.type = 'button';
        button.textContent = 'Redeem';
        button.disabled = m.points <= 0;
        button.addEventListener('click', function () { openRedemption(m); });
        cell(row, '').appendChild(button);
        body.appendChild(row);
      });
      $('members-status').textContent = page.items.length === 0 ? 'No members match.' : page.items.length + (page.nextCursor ? ' members shown (the first 50).' : ' members.');
    } catch (error) {
      $('members-status').textContent = 'Could not load members: ' + error.message;
    }
  }

  var redemption = null;
  function openRedemption(member) {
    redemption = { member: member, idempotencyKey: idempotencyKey() };
    $('redeem-who').textContent = member.displayName + ': ' + member.points + ' points';
    $('redeem-points').max = String(member.points);
    $('redeem-points').value = '';
    $('redeem-reason').value = '';
    $('redeem-form').hidden = false;
    $('redeem-points').focus();
  }
  function closeRedemption() {
    redemption = null;
    $('redeem-form').hidden = true;
  }
  async function redeem() {
    if (!redemption) return;
    var member = redemption.member;
    try {
      var done = await post('/v1/people/' + encodeURIComponent(member.id) + '/redemptions', {
        points: Number($('redeem-points').value), reason: $('redeem-reason').value.trim(), idempotencyKey: redemption.idempotencyKey,
      });
      closeRedemption();
      await loadMembers();
      $('members-status').textContent = 'Redeemed ' + done.points + ' points for ' + member.displayName + '; balance ' + done.balance + '.';
    } catch (error) {
      // The balance may have changed at another till: show the current one.
      if (error.status === 422) { closeRedemption(); await loadMembers(); }
      $('members-status').textContent = 'Redemption refused: ' + error.message;
    }
  }

  $('sign-in-form').addEventListener('submit', function (e) { e.preventDefault(); signIn($('key').value.trim()); });
  $('sign-out').addEventListener('click', function () {
    sessionStorage.removeItem(KEY);
    $('key').value = '';
    showSignedIn(false);
  });
  $('controls').addEventListener('submit', function (e) { e.preventDefault(); load(); });
  $('preset').addEventListener('change', function () { applyPreset(); if ($('preset').value !== 'custom') load(); });
  ['from', 'to'].forEach(function (id) { $(id).addEventListener('change', function () { $('preset').value = 'custom'; }); });
  $('store').addEventListener('change', load);
  $('interval').addEventListener('change', load);
  $('csv').addEventListener('click', downloadCsv);
  $('member-search').addEventListener('submit', function (e) { e.preventDefault(); loadMembers(); });
  $('member-sort').addEventListener('change', loadMembers);
  $('redeem-form').addEventListener('submit', function (e) { e.preventDefault(); redeem(); });
  $('redeem-cancel').addEventListener('click', closeRedemption);
  window.addEventListener('resize', function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });

  if (key()) signIn(key()); else showSignedIn(false);
})();
