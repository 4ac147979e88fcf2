/* /imports/{sessionId}: open the progress modal for one session. */
(function (global) {
  'use strict';
  const { Auth } = global.HexTrackr;
  const sessionId = decodeURIComponent(global.location.pathname.split('/').filter(Boolean).pop() || '');
  document.getElementById('sessionLabel').textContent = sessionId;
  document.title = 'Import ' + sessionId.slice(0, 8) + ' - HexTrackr';

  const reopen = document.getElementById('reopen');
  function open() {
    reopen.classList.add('d-none');
    global.ProgressModal.show('Import progress', sessionId);
    global.WebSocketClient.joinSession(sessionId);
  }
  global.ProgressModal.onHidden = () => reopen.classList.remove('d-none');
  reopen.addEventListener('click', open);
  document.getElementById('signOut').addEventListener('click', () => {
    Auth.clear();
    global.WebSocketClient.disconnect();
    global.location.assign('/');
  });
  Auth.ensure().then(open);
})(window);
