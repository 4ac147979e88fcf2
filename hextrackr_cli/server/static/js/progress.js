/*
 * HexTrackr browser progress view: the seed's WebSocketClient and ProgressModal (websocket-progress-api.md),
 * talking to `hextrackr serve` as described in docs/wire.md.
 *
 * - The token is asked once, kept in sessionStorage, and sent as `Authorization: Bearer` (HTTP) and as the
 *   Socket.io `auth: {token}` payload. It never goes into a URL.
 * - Socket.io first (websocket, then Engine.IO polling); when it fails the page polls
 *   GET /api/import/progress/{id} and keeps trying to reconnect with exponential backoff (1, 2, 4, 8, 16 s,
 *   at most 5 attempts); the poller stops as soon as the socket is back and joined.
 */
(function (global) {
  'use strict';

  const doc = global.document;
  const TOKEN_KEY = 'hextrackr.token';
  const TERMINAL = { complete: true, error: true, cancelled: true };

  // ------------------------------------------------------------------ token
  const Auth = {
    _waiters: [],

    token() {
      try { return global.sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
    },

    headers() {
      const token = this.token();
      return token ? { Authorization: 'Bearer ' + token } : {};
    },

    clear() {
      try { global.sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }
    },

    /** Resolve with a token the server accepts; asks for one (once) when none is stored. */
    ensure(reason) {
      const token = this.token();
      if (token) return Promise.resolve(token);
      return new Promise((resolve) => {
        this._waiters.push(resolve);
        this._ask(reason);
      });
    },

    /** The server refused the stored token (HTTP 401 or Socket.io "unauthorized"): ask again. */
    rejected(message) {
      this.clear();
      return this.ensure(message || 'The server did not accept the token. Enter it again.');
    },

    _ask(reason) {
      const el = doc.getElementById('tokenModal');
      if (!el) return;
      const form = el.querySelector('form');
      const input = el.querySelector('#tokenInput');
      const feedback = el.querySelector('#tokenFeedback');
      feedback.textContent = reason || '';
      feedback.classList.toggle('d-none', !reason);
      const modal = global.bootstrap.Modal.getOrCreateInstance(el, { backdrop: 'static', keyboard: false });
      if (!form.dataset.bound) {
        form.dataset.bound = '1';
        el.addEventListener('shown.bs.modal', () => { el.dataset.shown = '1'; input.focus(); });
        el.addEventListener('hidden.bs.modal', () => { delete el.dataset.shown; });
        form.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          const candidate = input.value.trim();
          if (!candidate) return;
          const submit = form.querySelector('button[type=submit]');
          submit.disabled = true;
          try {
            const res = await global.fetch('/api/imports?limit=1', {
              headers: { Authorization: 'Bearer ' + candidate }, cache: 'no-store',
            });
            if (res.ok) {
              global.sessionStorage.setItem(TOKEN_KEY, candidate);
              input.value = '';
              if (el.dataset.shown) modal.hide();
              else el.addEventListener('shown.bs.modal', () => modal.hide(), { once: true }); // Bootstrap ignores
              // hide() while the modal is still fading in: a quick answer used to leave the prompt open for good
              const waiters = this._waiters.splice(0);
              waiters.forEach((w) => w(candidate));
            } else {
              const body = await res.json().catch(() => ({}));
              feedback.textContent = body.error ? 'Server: ' + body.error : 'The server answered ' + res.status;
              feedback.classList.remove('d-none');
            }
          } catch (e) {
            feedback.textContent = 'Cannot reach the server: ' + e.message;
            feedback.classList.remove('d-none');
          } finally {
            submit.disabled = false;
          }
        });
      }
      modal.show();
    },
  };

  /** GET a JSON API path with the token; a 401 asks for the token again and retries once. */
  async function apiGet(path) {
    await Auth.ensure();
    let res = await global.fetch(path, { headers: Auth.headers(), cache: 'no-store' });
    if (res.status === 401) {
      await Auth.rejected();
      res = await global.fetch(path, { headers: Auth.headers(), cache: 'no-store' });
    }
    const body = await res.json().catch(() => ({ error: 'the server answered ' + res.status + ' without JSON' }));
    return { status: res.status, ok: res.ok, body };
  }

  // ------------------------------------------------------------------ formatETA (seed)
  function formatETA(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '';
    const s = Math.max(0, Math.round(Number(seconds)));
    if (s < 60) return s + 's';
    return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  }

  // ------------------------------------------------------------------ WebSocketClient (seed)
  const WebSocketClient = {
    socket: null,
    connectionState: 'disconnected', // 'connecting' | 'connected' | 'disconnected' | 'failed'
    reconnectAttempts: 0,
    maxReconnectAttempts: 5,
    reconnectDelay: 1000, // ms, doubled per attempt: 1, 2, 4, 8, 16 s
    maxReconnectDelay: 16000,
    transport: null, // 'websocket' | 'polling' (Engine.IO) | 'http-polling' (our fallback) | null
    sessionId: null,
    joined: false,
    pollInterval: 1000,
    nextRetryAt: null,
    _pollTimer: null,
    _polling: false,
    _reconnectTimer: null,
    _listeners: [],

    /** Start the Socket.io connection. False when socket.io-client is not available (use polling). */
    connect() {
      if (typeof global.io !== 'function') {
        this.connectionState = 'failed';
        this._notify();
        return false;
      }
      if (this.socket) {
        if (!this.socket.connected && !this.socket.active) this._open();
        return true;
      }
      const socket = global.io({
        transports: ['websocket', 'polling'],
        tryAllTransports: true, // WebSocket refused (e.g. by a proxy): Engine.IO long-polling is still live
        timeout: 20000,
        reconnection: false, // attemptReconnect() does the seed's backoff
        auth: (cb) => cb({ token: Auth.token() }),
      });
      this.socket = socket;
      this.connectionState = 'connecting';
      socket.on('connect', () => {
        this.connectionState = 'connected';
        this.reconnectAttempts = 0;
        this.nextRetryAt = null;
        const engine = socket.io.engine;
        this.transport = engine && engine.transport ? engine.transport.name : 'websocket';
        if (engine) engine.once('upgrade', (t) => { this.transport = t.name; this._notify(); });
        this._notify();
        if (this.sessionId) this._join(this.sessionId);
      });
      socket.on('disconnect', (reason) => {
        this.connectionState = 'disconnected';
        this.joined = false;
        this._notify();
        if (reason === 'io client disconnect') return;
        this._fallBack();
      });
      socket.on('connect_error', (err) => {
        this.connectionState = 'disconnected';
        this.joined = false;
        const message = err && err.message ? err.message : String(err);
        if (message === 'unauthorized') {
          Auth.rejected('The server refused the live connection: the token is not valid. Enter it again.')
            .then(() => this._open());
          this._notify();
          return;
        }
        this._fallBack();
      });
      socket.on('importProgress', (data) => {
        if (data && data.sessionId === this.sessionId) global.ProgressModal.updateProgress(data);
      });
      socket.on('importCancelled', (data) => {
        if (data && data.sessionId === this.sessionId) global.ProgressModal.showCancelled(data);
      });
      this._notify();
      return true;
    },

    _open() {
      if (!this.socket) return;
      this.connectionState = 'connecting';
      this._notify();
      this.socket.connect();
    },

    /** The socket is down: poll over HTTP meanwhile, and try the socket again with backoff. */
    _fallBack() {
      if (this.sessionId && !global.ProgressModal.isFinished()) this.startPolling(this.sessionId);
      this.attemptReconnect();
    },

    /** Join an import session's room (joins on connect when the socket is not up yet). */
    joinSession(sessionId) {
      this.sessionId = sessionId;
      this.joined = false;
      if (!this.socket) {
        if (!this.connect()) this.startPolling(sessionId);
        return;
      }
      if (this.socket.connected) this._join(sessionId);
    },

    _join(sessionId) {
      this.socket.timeout(10000).emit('joinSession', sessionId, (err, ack) => {
        if (sessionId !== this.sessionId) return;
        if (err) { // no answer: treat like a broken socket
          this.startPolling(sessionId);
          return;
        }
        if (!ack || !ack.ok) {
          this.stopPolling();
          global.ProgressModal.showError((ack && ack.error) || 'The server refused to join the session');
          return;
        }
        this.joined = true;
        this.stopPolling();
        this._notify();
        if (ack.session) global.ProgressModal.applyState(ack.session);
      });
    },

    /** Ask the server to cancel; resolves with its acknowledgement {ok, error?}. */
    cancelImport(sessionId) {
      return new Promise((resolve) => {
        if (!this.socket || !this.socket.connected) {
          resolve({ ok: false, error: 'no live connection to the server (cancel needs Socket.io). Try again when '
            + 'the badge shows Live, or run: hextrackr cancel ' + sessionId });
          return;
        }
        this.socket.timeout(10000).emit('cancelImport', sessionId, (err, ack) => {
          resolve(err ? { ok: false, error: 'The server did not answer the cancel request' } : ack);
        });
      });
    },

    /** Reconnect with exponential backoff; after maxReconnectAttempts stay on HTTP polling. */
    attemptReconnect() {
      if (this._reconnectTimer || (this.socket && this.socket.connected)) return;
      if (this.reconnectAttempts >= this.maxReconnectAttempts) {
        this.connectionState = 'failed';
        this.nextRetryAt = null;
        this._notify();
        return;
      }
      const delay = Math.min(this.reconnectDelay * Math.pow(2, this.reconnectAttempts), this.maxReconnectDelay);
      this.reconnectAttempts += 1;
      this.nextRetryAt = Date.now() + delay;
      this._notify();
      this._reconnectTimer = global.setTimeout(() => {
        this._reconnectTimer = null;
        this.nextRetryAt = null;
        if (this.socket && !this.socket.connected) this._open();
      }, delay);
    },

    // ---------------------------------------------------------------- HTTP polling fallback
    startPolling(sessionId) {
      if (this._polling && this.sessionId === sessionId) return;
      this.sessionId = sessionId;
      this._polling = true;
      this.transport = 'http-polling';
      this._notify();
      const tick = async () => {
        this._pollTimer = null;
        if (!this._polling || this.sessionId !== sessionId) return;
        let again = true;
        try {
          const res = await apiGet('/api/import/progress/' + encodeURIComponent(sessionId));
          if (!this._polling) return;
          if (res.ok) {
            global.ProgressModal.applyState(res.body);
            if (global.ProgressModal.isFinished()) again = false;
          } else if (res.status === 400 || res.status === 404) {
            global.ProgressModal.showError(res.body.error || 'Import not found');
            again = false;
          }
        } catch (e) {
          // the server is unreachable: keep polling, the modal keeps its last state
        }
        if (again && this._polling) this._pollTimer = global.setTimeout(tick, this.pollInterval);
        else this.stopPolling();
      };
      tick();
    },

    stopPolling() {
      this._polling = false;
      if (this._pollTimer) global.clearTimeout(this._pollTimer);
      this._pollTimer = null;
      // Without a live socket the badge keeps saying how the last data came (HTTP polling).
      if (this.transport === 'http-polling' && this.socket && this.socket.connected && this.socket.io.engine) {
        this.transport = this.socket.io.engine.transport.name;
      }
      this._notify();
    },

    disconnect() {
      this.stopPolling();
      if (this._reconnectTimer) global.clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
      if (this.socket) this.socket.disconnect();
      this.connectionState = 'disconnected';
      this._notify();
    },

    /** Subscribe to connection changes (used for the status badge). */
    onChange(fn) { this._listeners.push(fn); },

    _notify() { this._listeners.forEach((fn) => { try { fn(this); } catch (e) { /* a view bug must not stop us */ } }); },
  };

  // ------------------------------------------------------------------ ProgressModal (seed)
  const MODAL_HTML = [
    '<div class="modal fade" id="progressModal" tabindex="-1" aria-labelledby="progressModalTitle" aria-hidden="true">',
    ' <div class="modal-dialog modal-dialog-centered">',
    '  <div class="modal-content">',
    '   <div class="modal-header">',
    '    <h5 class="modal-title" id="progressModalTitle">Import</h5>',
    '    <span class="badge text-bg-light connection-status ms-auto" title="How this page receives progress"></span>',
    '   </div>',
    '   <div class="modal-body">',
    '    <div class="progress" role="progressbar" aria-label="Import progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">',
    '     <div class="progress-bar progress-bar-striped progress-bar-animated">0%</div>',
    '    </div>',
    '    <div class="status-message mt-3">Initializing...</div>',
    '    <div class="eta-display text-body-secondary small mt-1"></div>',
    '    <div class="summary small mt-2 d-none"></div>',
    '    <div class="cancel-feedback small text-body-secondary mt-2 d-none"></div>',
    '    <div class="session-id text-body-tertiary small mt-2 font-monospace"></div>',
    '   </div>',
    '   <div class="modal-footer">',
    '    <button type="button" class="btn btn-outline-danger btn-cancel">Cancel Import</button>',
    '    <button type="button" class="btn btn-primary btn-close-modal d-none">Close</button>',
    '   </div>',
    '  </div>',
    ' </div>',
    '</div>',
  ].join('\n');

  const ProgressModal = {
    currentSessionId: null,
    modal: null,
    state: null, // 'running' | 'cancelling' | 'complete' | 'error' | 'cancelled'
    lastEvent: null,
    onHidden: null,
    visible: false, // true once Bootstrap finished showing it
    _hideWhenShown: false,

    _el() { return doc.getElementById('progressModal'); },
    _q(sel) { const el = this._el(); return el ? el.querySelector(sel) : null; },

    /** Display the modal for a session (the caller joins it: WebSocketClient.joinSession). */
    show(title, sessionId) {
      let el = this._el();
      if (!el) {
        const holder = doc.createElement('div');
        holder.innerHTML = MODAL_HTML;
        el = holder.firstElementChild;
        doc.body.appendChild(el);
        el.querySelector('.btn-cancel').addEventListener('click', () => this.cancel());
        el.querySelector('.btn-close-modal').addEventListener('click', () => this.hide());
        el.addEventListener('hidden.bs.modal', () => this._removed());
        el.addEventListener('shown.bs.modal', () => {
          this.visible = true;
          if (this._hideWhenShown) this.hide();
        });
      }
      this.currentSessionId = sessionId;
      this.state = 'running';
      this.lastEvent = null;
      el.dataset.state = 'running';
      el.dataset.sessionId = sessionId;
      this.setTitle(title);
      this._q('.session-id').textContent = 'Session ' + sessionId;
      const bar = this._q('.progress-bar');
      bar.className = 'progress-bar progress-bar-striped progress-bar-animated';
      this._setBar(0);
      this._q('.status-message').className = 'status-message mt-3';
      this._q('.status-message').textContent = 'Initializing...';
      this._q('.eta-display').textContent = '';
      this._q('.summary').classList.add('d-none');
      this._q('.cancel-feedback').classList.add('d-none');
      this._buttons(true);
      this.modal = global.bootstrap.Modal.getOrCreateInstance(el, { backdrop: 'static', keyboard: false });
      this.modal.show();
      this.setConnection(WebSocketClient);
    },

    setTitle(title) {
      const t = this._q('.modal-title');
      if (t) t.textContent = title;
    },

    isFinished() { return TERMINAL[this.state] === true; },

    /** Apply a progress event (Socket.io importProgress or the polling body's lastEvent). */
    updateProgress(data) {
      if (!data || data.sessionId !== this.currentSessionId || !this._el()) return;
      if (this.isFinished()) return; // a late or replayed event never undoes a final state
      if (data.type === 'error') {
        this.showError(data.message || 'The import failed');
        return;
      }
      this.lastEvent = data;
      const pct = Math.max(0, Math.min(100, Math.round(Number(data.progress) || 0)));
      this._setBar(pct);
      if (this.state !== 'cancelling') this._q('.status-message').textContent = data.message || '';
      const eta = this._q('.eta-display');
      if (data.type === 'complete') {
        this._showSuccess(data);
      } else if (data.eta !== null && data.eta !== undefined) {
        eta.textContent = 'ETA: ' + this.formatETA(data.eta);
      } else {
        eta.textContent = 'ETA: calculating...';
      }
    },

    /** Apply a SessionState (joinSession ack or GET /api/import/progress/{id}). */
    applyState(state) {
      if (!state || state.sessionId !== this.currentSessionId) return;
      if (state.importType) this.setTitle(state.importType === 'tickets' ? 'Importing Tickets' : 'Importing Vulnerabilities');
      if (state.outcome === 'cancelled') {
        this.showCancelled({ sessionId: state.sessionId });
        return;
      }
      const event = state.lastEvent || {
        sessionId: state.sessionId, type: state.type, progress: state.progress, message: state.message,
        eta: state.eta,
      };
      if (state.outcome === 'failed' && event.type !== 'error') {
        this.showError(state.error || state.message || 'The import failed');
        return;
      }
      if (state.outcome === 'completed' && event.type !== 'complete') {
        this.updateProgress(Object.assign({}, event, state.summary || {}, { type: 'complete', progress: 100 }));
        return;
      }
      this.updateProgress(event);
    },

    /** Error state: red bar, animation stopped, the server's message; the modal stays open. */
    showError(errorMessage) {
      if (!this._el() || this.state === 'complete' || this.state === 'cancelled') return;
      this.state = 'error';
      this._el().dataset.state = 'error';
      const bar = this._q('.progress-bar');
      bar.classList.remove('progress-bar-animated', 'progress-bar-striped', 'bg-success');
      bar.classList.add('bg-danger');
      const msg = this._q('.status-message');
      msg.className = 'status-message mt-3 alert alert-danger mb-0';
      msg.textContent = errorMessage;
      this._q('.eta-display').textContent = '';
      this._buttons(false);
      WebSocketClient.stopPolling();
    },

    /** Confirmation from importCancelled: the server rolled back, nothing was changed. */
    showCancelled() {
      if (!this._el() || this.state === 'complete' || this.state === 'cancelled') return;
      this.state = 'cancelled';
      this._el().dataset.state = 'cancelled';
      this.setTitle('Import cancelled');
      const bar = this._q('.progress-bar');
      bar.classList.remove('progress-bar-animated', 'progress-bar-striped', 'bg-success', 'bg-danger');
      bar.classList.add('bg-secondary');
      const msg = this._q('.status-message');
      msg.className = 'status-message mt-3 alert alert-warning mb-0';
      msg.textContent = 'Import cancelled: the server rolled the import back, nothing was changed.';
      this._q('.eta-display').textContent = '';
      this._q('.cancel-feedback').classList.add('d-none');
      this._buttons(false);
      WebSocketClient.stopPolling();
    },

    _showSuccess(data) {
      this.state = 'complete';
      this._el().dataset.state = 'complete';
      const bar = this._q('.progress-bar');
      bar.classList.remove('progress-bar-animated', 'progress-bar-striped', 'bg-danger');
      bar.classList.add('bg-success');
      this._setBar(100);
      const msg = this._q('.status-message');
      msg.className = 'status-message mt-3 alert alert-success mb-0';
      msg.textContent = data.message || 'Import completed';
      const parts = [];
      ['rows', 'inserted', 'updated', 'resolved'].forEach((k) => {
        if (data[k] !== undefined && data[k] !== null) parts.push(k + ': ' + Number(data[k]).toLocaleString('en-US'));
      });
      if (data.durationMs !== undefined && data.durationMs !== null) {
        parts.push('took ' + this.formatETA(data.durationMs / 1000));
      }
      const summary = this._q('.summary');
      summary.textContent = parts.join(' \u00b7 ');
      summary.classList.toggle('d-none', parts.length === 0);
      this._q('.eta-display').textContent = '';
      this._q('.cancel-feedback').classList.add('d-none');
      this._buttons(false);
      WebSocketClient.stopPolling();
    },

    /** Send cancelImport; the confirmation comes from importCancelled (showCancelled). */
    cancel() {
      const sessionId = this.currentSessionId;
      if (!sessionId || this.state !== 'running') return;
      this.state = 'cancelling';
      this._el().dataset.state = 'cancelling';
      const btn = this._q('.btn-cancel');
      btn.disabled = true;
      btn.textContent = 'Cancelling...';
      const feedback = this._q('.cancel-feedback');
      feedback.textContent = 'Cancel requested; waiting for the server to roll back...';
      feedback.classList.remove('d-none');
      WebSocketClient.cancelImport(sessionId).then((ack) => {
        if (ack && ack.ok) return;
        if (this.state === 'cancelling') {
          this.state = 'running';
          this._el().dataset.state = 'running';
          btn.disabled = false;
          btn.textContent = 'Cancel Import';
        }
        feedback.textContent = 'Not cancelled: ' + ((ack && ack.error) || 'no answer');
        feedback.classList.remove('d-none');
      });
    },

    /** Close and remove the modal; resets currentSessionId. */
    hide() {
      if (!this.modal) {
        this._removed();
      } else if (!this.visible) { // Bootstrap ignores hide() while the modal is still fading in
        this._hideWhenShown = true;
      } else {
        this._hideWhenShown = false;
        this.modal.hide();
      }
    },

    _removed() {
      const el = this._el();
      if (this.modal) this.modal.dispose();
      if (el) el.remove();
      this.modal = null;
      this.visible = false;
      this._hideWhenShown = false;
      this.currentSessionId = null;
      WebSocketClient.stopPolling();
      if (typeof this.onHidden === 'function') this.onHidden();
    },

    setConnection(client) {
      const badge = this._q('.connection-status');
      if (!badge) return;
      let text;
      if (client.transport === 'http-polling') {
        text = 'HTTP polling';
        if (client.nextRetryAt) text += ' (reconnecting)';
      } else if (client.connectionState === 'connected') {
        text = client.transport === 'polling' ? 'Live (long-polling)' : 'Live (WebSocket)';
      } else if (client.connectionState === 'connecting') {
        text = 'Connecting...';
      } else {
        text = 'Offline';
      }
      badge.textContent = text;
      badge.dataset.transport = client.transport || '';
    },

    _setBar(pct) {
      const bar = this._q('.progress-bar');
      bar.style.width = pct + '%';
      bar.textContent = pct + '%';
      bar.parentElement.setAttribute('aria-valuenow', String(pct));
    },

    _buttons(running) {
      const cancel = this._q('.btn-cancel');
      cancel.classList.toggle('d-none', !running);
      cancel.disabled = !running;
      cancel.textContent = 'Cancel Import';
      this._q('.btn-close-modal').classList.toggle('d-none', running);
    },

    formatETA,
  };

  WebSocketClient.onChange((client) => ProgressModal.setConnection(client));

  global.HexTrackr = { Auth, apiGet, formatETA };
  global.WebSocketClient = WebSocketClient;
  global.ProgressModal = ProgressModal;
})(window);
