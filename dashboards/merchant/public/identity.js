/*
 * The dashboard's identity panel: the store's returning visitors, suggested merges, recent
 * recognitions and the latest identity changes, with merge / link / "not this person" / undo.
 * Every change asks for confirmation first and offers its undo afterwards.
 */
(function () {
  'use strict';
  var fp = window.FacePerks;
  var $ = fp.$;
  var UNDOABLE = ['visitor.merged', 'visitor.linked'];
  var ACTION_TEXT = {
    'visitor.merged': 'visitors merged', 'visitor.linked': 'visitor linked to a member', 'face.rejected': 'face rejected',
    'change.undone': 'change undone', 'face.removed': 'face removed', 'member.erased': 'member erased',
  };
  var state = { storeId: null, since: null, visitors: [], members: [], names: {}, pending: null };

  function short(id) { return id.slice(0, 8); }
  function subjectText(subject) {
    return subject.kind === 'member' ? (state.names[subject.id] || 'member ' + short(subject.id)) : 'visitor ' + short(subject.id);
  }
  function button(text, onClick, secondary) {
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    if (secondary) b.className = 'secondary';
    b.addEventListener('click', onClick);
    return b;
  }
  function say(text, undoAuditId) {
    var status = $('identity-status');
    status.textContent = text;
    if (undoAuditId !== undefined) status.appendChild(button('Undo', function () { undo(undoAuditId); }, true));
  }

  /** Asks, sends, says what happened (offering its undo when it has one) and reloads the panel. */
  async function change(question, send, describe, offerUndo) {
    if (!window.confirm(question)) return;
    try {
      var result = await send();
      await refresh();
      say(describe(result), offerUndo ? result.auditId : undefined);
    } catch (error) {
      await refresh();
      say('Refused: ' + error.message);
    }
  }
  function undo(auditId) {
    return change('Undo this change? Visits, analytics and points go back to what they were before it.', function () {
      return fp.post('/v1/audit/' + encodeURIComponent(auditId) + '/undo', {});
    }, function () { return 'Undone.'; }, false);
  }

  function openForm(kind, visitor) {
    var select = $('identity-target');
    select.textContent = '';
    var options = kind === 'merge'
      ? state.visitors.filter(function (v) { return v.id !== visitor.id; }).map(function (v) { return { id: v.id, text: 'visitor ' + short(v.id) + ' (' + v.visits + ' visits)' }; })
      : state.members.map(function (m) { return { id: m.id, text: m.displayName + (m.externalId ? ' (' + m.externalId + ')' : '') }; });
    options.forEach(function (o) {
      var option = document.createElement('option');
      option.value = o.id;
      option.textContent = o.text;
      select.appendChild(option);
    });
    state.pending = { kind: kind, visitor: visitor };
    $('identity-what').textContent = (kind === 'merge' ? 'Merge visitor ' : 'Link visitor ') + short(visitor.id) + (kind === 'merge' ? ' into' : ' to member');
    $('identity-award-past').parentElement.hidden = kind !== 'link';
    $('identity-award-past').checked = false;
    $('identity-submit').disabled = options.length === 0;
    $('identity-form').hidden = false;
  }
  function closeForm() {
    state.pending = null;
    $('identity-form').hidden = true;
  }
  function submitForm() {
    var pending = state.pending;
    var target = $('identity-target').value;
    if (!pending || !target) return;
    closeForm();
    if (pending.kind === 'merge') return merge(pending.visitor.id, target);
    return link(pending.visitor.id, target, $('identity-award-past').checked);
  }
  function merge(visitorId, into) {
    return change('Merge visitor ' + short(visitorId) + ' into visitor ' + short(into) + '? Their visits become one history.', function () {
      return fp.post('/v1/visitors/' + encodeURIComponent(visitorId) + '/merge', { into: into });
    }, function (r) { return 'Merged into visitor ' + short(r.visitor.id) + ' (' + r.visitor.visits + ' visits).'; }, true);
  }
  function link(visitorId, personId, awardPast) {
    return change('Link visitor ' + short(visitorId) + ' to ' + (state.names[personId] || 'this member') + '? Its past visits become the member’s.', function () {
      return fp.post('/v1/people/' + encodeURIComponent(personId) + '/visitors', { visitorId: visitorId, awardPast: awardPast });
    }, function (r) { return 'Linked to ' + r.person.displayName + ': ' + r.sightingsMoved + ' sightings moved, ' + r.pointsAwarded + ' points awarded.'; }, true);
  }
  function reject(recognition) {
    return change('Is this face not ' + recognition.displayName + '? It leaves the member, and the points it earned are taken back.', function () {
      return fp.post('/v1/faces/' + encodeURIComponent(recognition.faceId) + '/reject', {});
    }, function (r) { return 'The face is now ' + subjectText(r.subject) + '.'; }, false);
  }
  function dismiss(suggestion) {
    return fp.api('/v1/visitors/suggestions/dismissals', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ a: suggestion.a, b: suggestion.b }),
    }).then(refresh, function (error) { say('Could not dismiss: ' + error.message); });
  }

  function renderVisitors() {
    var body = $('visitors-table').tBodies[0];
    body.textContent = '';
    state.visitors.forEach(function (v) {
      var row = document.createElement('tr');
      row.dataset.id = v.id;
      fp.cell(row, short(v.id)).title = v.id;
      fp.cell(row, String(v.visits), 'num');
      fp.cell(row, fp.when(v.firstSeenAt));
      fp.cell(row, fp.when(v.lastSeenAt));
      fp.cell(row, String(v.storeIds.length), 'num');
      var actions = fp.cell(row, '', 'actions');
      actions.appendChild(button('Merge…', function () { openForm('merge', v); }, true));
      actions.appendChild(button('Link to member…', function () { openForm('link', v); }, true));
      body.appendChild(row);
    });
    $('visitors-status').textContent = state.visitors.length === 0 ? 'No visitors at this store yet.' : 'The ' + state.visitors.length + ' visitors with the most visits here (anonymous: no name, no image).';
  }
  function renderSuggestions(items) {
    var body = $('suggestions-table').tBodies[0];
    body.textContent = '';
    items.forEach(function (s) {
      var row = document.createElement('tr');
      row.dataset.id = s.id;
      fp.cell(row, subjectText(s.a));
      fp.cell(row, subjectText(s.b));
      fp.cell(row, s.similarity.toFixed(2), 'num');
      var actions = fp.cell(row, '', 'actions');
      var visitor = s.a.kind === 'visitor' ? s.a : s.b;
      var other = visitor === s.a ? s.b : s.a;
      actions.appendChild(other.kind === 'member'
        ? button('Link', function () { link(visitor.id, other.id, false); })
        : button('Merge', function () { merge(s.a.id, s.b.id); }));
      actions.appendChild(button('Dismiss', function () { dismiss(s); }, true));
      body.appendChild(row);
    });
    $('suggestions-status').textContent = items.length === 0 ? 'No suggested merges.' : (items.length === 1 ? 'A pair' : items.length + ' pairs') + ' that are probably one person: check before merging.';
  }
  function renderRecognitions(items) {
    var body = $('recognitions-table').tBodies[0];
    body.textContent = '';
    items.forEach(function (r) {
      var row = document.createElement('tr');
      row.dataset.faceId = r.faceId;
      fp.cell(row, '').appendChild(fp.crop(r.faceId));
      fp.cell(row, r.displayName);
      fp.cell(row, fp.when(r.seenAt));
      fp.cell(row, r.pointsAwarded ? '+' + r.pointsAwarded : '', 'num');
      fp.cell(row, '', 'actions').appendChild(button('Not this person', function () { reject(r); }, true));
      body.appendChild(row);
    });
    $('recognitions-status').textContent = items.length === 0 ? 'No member recognised here in this range.' : '';
  }
  function renderChanges(entries) {
    var body = $('changes-table').tBodies[0];
    body.textContent = '';
    var undone = entries.filter(function (e) { return e.action === 'change.undone'; }).map(function (e) { return e.details.undone; });
    entries.slice(0, 15).forEach(function (e) {
      var row = document.createElement('tr');
      row.dataset.id = String(e.id);
      fp.cell(row, fp.when(e.at));
      fp.cell(row, ACTION_TEXT[e.action] || e.action);
      fp.cell(row, subjectText(e.subject));
      var actions = fp.cell(row, '', 'actions');
      if (UNDOABLE.indexOf(e.action) >= 0 && undone.indexOf(e.id) < 0) actions.appendChild(button('Undo', function () { undo(e.id); }, true));
      body.appendChild(row);
    });
  }

  /** Each part loads on its own: one that fails says so in its place and leaves the others. */
  function section(path, render, statusId) {
    return fp.json(path).then(render, function (error) { $(statusId).textContent = 'Could not load: ' + error.message; });
  }
  async function refresh() {
    if (!state.storeId) return;
    var storeQuery = { storeId: state.storeId, limit: '20' };
    await section('/v1/people?limit=100', function (page) {
      state.members = page.items;
      state.members.forEach(function (m) { state.names[m.id] = m.displayName; });
    }, 'identity-status');
    await Promise.all([
      section('/v1/visitors?' + new URLSearchParams(Object.assign({ sort: 'visits' }, storeQuery)), function (page) {
        state.visitors = page.items;
        renderVisitors();
      }, 'visitors-status'),
      section('/v1/visitors/suggestions?' + new URLSearchParams(storeQuery), function (page) { renderSuggestions(page.items); }, 'suggestions-status'),
      section('/v1/stores/' + encodeURIComponent(state.storeId) + '/recognitions?' + new URLSearchParams({ since: state.since, limit: '20' }), function (body) {
        renderRecognitions(body.recognitions);
      }, 'recognitions-status'),
      section('/v1/audit?limit=50', function (page) {
        renderChanges(page.items.filter(function (e) { return e.action in ACTION_TEXT; }));
      }, 'identity-status'),
    ]);
  }

  window.FacePerksIdentity = {
    /** Shows the panel for a store; recognitions since `since` (an ISO date, the range's start). */
    load: function (storeId, since) {
      state.storeId = storeId;
      state.since = since;
      closeForm();
      return refresh();
    },
  };

  $('identity-form').addEventListener('submit', function (e) { e.preventDefault(); submitForm(); });
  $('identity-cancel').addEventListener('click', closeForm);
})();
