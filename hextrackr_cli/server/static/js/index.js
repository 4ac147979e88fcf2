/* GET /: recent imports (GET /api/imports), refreshed every few seconds, and an upload form. */
(function (global) {
  'use strict';
  const { Auth, apiGet, formatETA } = global.HexTrackr;
  const tbody = document.querySelector('#importsTable tbody');
  const errorBox = document.getElementById('importsError');
  const BADGES = { running: 'text-bg-primary', completed: 'text-bg-success', failed: 'text-bg-danger',
    cancelled: 'text-bg-secondary' };
  let timer = null;

  function cell(text, cls) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    td.textContent = text === null || text === undefined ? '' : String(text);
    return td;
  }

  function render(body) {
    const rows = body.imports || [];
    tbody.replaceChildren();
    rows.forEach((rec) => {
      const tr = document.createElement('tr');
      tr.dataset.sessionId = rec.sessionId;
      tr.dataset.status = rec.status;
      const started = rec.startedAt ? new Date(rec.startedAt) : null;
      tr.appendChild(cell(started && !Number.isNaN(started.getTime()) ? started.toLocaleString() : rec.startedAt));
      const file = cell('', 'filename');
      const link = document.createElement('a');
      link.href = '/imports/' + encodeURIComponent(rec.sessionId);
      link.textContent = rec.filename || rec.sessionId;
      link.title = rec.filename || '';
      file.appendChild(link);
      tr.appendChild(file);
      tr.appendChild(cell(rec.type));
      tr.appendChild(cell(rec.vendor));
      tr.appendChild(cell(rec.scanDate));
      const status = cell('');
      const badge = document.createElement('span');
      badge.className = 'badge ' + (BADGES[rec.status] || 'text-bg-light');
      badge.textContent = rec.status;
      if (rec.error) badge.title = rec.error;
      status.appendChild(badge);
      tr.appendChild(status);
      tr.appendChild(cell(rec.rows === null || rec.rows === undefined ? '' : Number(rec.rows).toLocaleString('en-US'),
        'text-end'));
      tr.appendChild(cell(rec.durationMs === null || rec.durationMs === undefined ? ''
        : formatETA(rec.durationMs / 1000), 'text-end'));
      tbody.appendChild(tr);
    });
    document.getElementById('importsEmpty').classList.toggle('d-none', rows.length > 0);
    document.getElementById('importsInfo').textContent = rows.length
      ? 'showing ' + rows.length + ' of ' + body.total : '';
  }

  async function load() {
    global.clearTimeout(timer);
    try {
      const res = await apiGet('/api/imports?limit=50');
      if (res.ok) {
        errorBox.classList.add('d-none');
        render(res.body);
      } else {
        errorBox.textContent = 'Server: ' + (res.body.error || res.status);
        errorBox.classList.remove('d-none');
      }
    } catch (e) {
      errorBox.textContent = 'Cannot reach the server (' + e.message + '); retrying.';
      errorBox.classList.remove('d-none');
    }
    timer = global.setTimeout(load, document.hidden ? 30000 : 5000);
  }

  function newSessionId() {
    if (global.crypto && typeof global.crypto.randomUUID === 'function') return global.crypto.randomUUID();
    const b = global.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // Upload: text fields first, then the file (docs/wire.md); on 202 open the session's progress page.
  document.getElementById('uploadForm').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const feedback = document.getElementById('uploadFeedback');
    const button = document.getElementById('uploadButton');
    const file = document.getElementById('uploadFile').files[0];
    if (!file) return;
    await Auth.ensure();
    const sessionId = newSessionId();
    const form = new FormData();
    form.append('sessionId', sessionId);
    const vendor = document.getElementById('uploadVendor').value.trim();
    if (vendor) form.append('vendor', vendor);
    form.append('csvFile', file, file.name);
    const kind = document.getElementById('uploadType').value === 'tickets' ? 'tickets' : 'vulnerabilities';
    button.disabled = true;
    feedback.className = 'col-12 small text-body-secondary';
    feedback.textContent = 'Uploading ' + file.name + '...';
    try {
      const res = await global.fetch('/api/' + kind + '/import', { method: 'POST', headers: Auth.headers(), body: form });
      const body = await res.json().catch(() => ({}));
      if (res.status === 202 || res.status === 200) {
        global.location.assign('/imports/' + encodeURIComponent(body.sessionId || sessionId));
        return;
      }
      if (res.status === 401) Auth.clear();
      feedback.className = 'col-12 small text-danger';
      feedback.textContent = 'Not imported: ' + (body.error || ('the server answered ' + res.status));
    } catch (e) {
      feedback.className = 'col-12 small text-danger';
      feedback.textContent = 'Upload failed: ' + e.message;
    } finally {
      button.disabled = false;
    }
  });

  document.getElementById('signOut').addEventListener('click', () => {
    Auth.clear();
    global.location.reload();
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) load(); });
  Auth.ensure().then(load);
})(window);
