// sheping · the supervisor's live progress: fetches the tables every few seconds and swaps
// them in. Without JavaScript the page reloads itself (meta refresh in <noscript>).
(function () {
  'use strict';
  var box = document.getElementById('live');
  if (!box || !window.fetch) return;
  var src = box.getAttribute('data-src');
  var every = 5000;
  var timer = null;
  var note = document.createElement('p');
  note.className = 'alert live-alert';
  note.hidden = true;
  box.parentNode.insertBefore(note, box);

  function warn(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  function tick() {
    if (document.hidden) return;
    fetch(src, {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'X-Requested-With': 'fetch' }
    }).then(function (r) {
      if (r.status === 401) {
        clearInterval(timer);
        warn('登录已超时,进度不再刷新。请刷新页面重新登录。');
        return null;
      }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.text();
    }).then(function (html) {
      if (html === null) return;
      box.innerHTML = html;
      warn('');
    }).catch(function () {
      warn('暂时无法连接服务器,显示的是上次的数据;恢复后会自动刷新。');
    });
  }

  timer = setInterval(tick, every);
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) tick();
  });
})();
