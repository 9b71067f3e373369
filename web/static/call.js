// sheping · the operator's call screen: keyboard control for the plain HTML form.
//
// Without this script the form still works (radio buttons, submit buttons). With it:
//   1–4 (the number of levels)  answer the current question and move to the next open one
//   Backspace / ←               go back one question (→ goes forward)
//   Enter                       submit the complete interview when every question is answered,
//                               or confirm the outcome chosen with its letter
//   letters (shown on buttons)  choose a non-complete outcome; Enter confirms, Esc cancels
//   H                           appointment: the time field takes the focus (type 15:30 or
//                               12-08 15:30, or ↑/↓ for in an hour, 14:30, tomorrow 09:00);
//                               Enter records
//   a click on an outcome       arms it like its letter; a second click (or Enter) records
//   /                           write in the comment box (Esc leaves it, Ctrl+Enter submits)
//   Esc                         release the contact back to the queue
// A complete interview is therefore five digits and Enter. Each answer's time since the claim
// is kept in the hidden ms fields, so statisticians get per-question timing. The claim is
// renewed while the page is open (POST /call/renew), with a warning before a lapse.
(function () {
  'use strict';

  function typingIn(el) {
    if (!el || !el.tagName) return false;
    var t = el.tagName;
    if (t === 'TEXTAREA' || t === 'SELECT') return true;
    return t === 'INPUT' && !/^(radio|checkbox|hidden|submit|button|reset)$/.test(el.type);
  }

  // A Chinese input method may report letter keys as key 'Process' (keyCode 229): the
  // hotkeys read the physical key (event.code), and nothing while a composition runs.
  function plainKey(e) {
    return !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing;
  }
  function keyOf(e) {
    var c = e.code || '';
    var m = /^Key([A-Z])$/.exec(c) || /^(?:Digit|Numpad)([0-9])$/.exec(c);
    if (m) return m[1];
    switch (c) {
      case 'Enter': case 'NumpadEnter': return 'Enter';
      case 'Escape': case 'Backspace': case 'ArrowLeft': case 'ArrowRight': return c;
      case 'Slash': case 'NumpadDivide': return '/';
    }
    return e.key === 'Process' ? '' : (e.key || '');
  }

  // Marks the page as scripted (key hints show, the no-script notes hide), and tells the
  // server to answer a record with the next screen itself rather than a redirect.
  document.body.classList.add('js');
  var nojs = document.getElementById('nojs');
  if (nojs) nojs.parentNode.removeChild(nojs);
  // A screen restored from the back-forward cache is stale (a saved contact, keys dead while
  // "saving"): read it again.
  window.addEventListener('pageshow', function (e) {
    if (e.persisted) location.reload();
  });

  // The answer to a recorded call is the next screen itself (one round trip). The address
  // bar shows that screen's own address, so a reload reads it again instead of resending.
  var self = document.getElementById('page-url');
  var own = self && self.getAttribute('data-url');
  if (own && window.history && history.replaceState &&
      own !== location.pathname + location.search) {
    history.replaceState(null, '', own);
  }

  // The idle screen: Enter (or N) claims the next contact.
  var nextForm = document.getElementById('nextform');
  var form = document.getElementById('callform');
  if (!form) {
    if (nextForm) {
      var nextBtn = document.getElementById('next');
      document.addEventListener('keydown', function (e) {
        if (!plainKey(e) || typingIn(e.target)) return;
        var k = keyOf(e);
        if (k === 'Enter' || k === 'N') {
          e.preventDefault();
          if (nextBtn && !nextBtn.disabled && !nextForm.dataset.sent) {
            nextForm.dataset.sent = '1';
            nextForm.submit();
          }
        }
      });
    }
    return;
  }

  var qs = Array.prototype.slice.call(form.querySelectorAll('li.q'));
  var n = qs.length;
  var levels = qs.length ? qs[0].querySelectorAll('input[type=radio]').length : 0;
  var claimed = Number(form.getAttribute('data-claimed')) || 0;
  var rendered = Number(form.getAttribute('data-rendered')) || 0;
  var status = document.getElementById('status');
  var appt = document.getElementById('appointment');
  var comment = document.getElementById('comment');
  var complete = document.getElementById('submit-complete');
  var release = document.getElementById('release');
  var outcomeButtons = Array.prototype.slice.call(form.querySelectorAll('button[data-hotkey]'));
  var errorBanner = document.getElementById('error');
  var apptError = document.getElementById('appointment-error');
  var cur = 0;
  var armed = null;
  var releaseArmed = false;

  function answer(i) {
    var c = qs[i].querySelector('input[type=radio]:checked');
    return c ? Number(c.value) : 0;
  }
  function answeredCount() {
    var k = 0;
    for (var i = 0; i < n; i++) if (answer(i)) k++;
    return k;
  }
  function firstOpen(from) {
    for (var i = from; i < n; i++) if (!answer(i)) return i;
    for (i = 0; i < from && i < n; i++) if (!answer(i)) return i;
    return n;
  }
  // Milliseconds since the claim, on the server's clock plus the time this page has been open.
  function elapsed() {
    return Math.max(0, Math.round(rendered - claimed + performance.now()));
  }
  function label(btn) {
    return btn.textContent.replace(btn.querySelector('kbd').textContent, '').trim();
  }
  function say(text, cls) {
    status.textContent = text;
    status.className = 'status' + (cls ? ' ' + cls : '');
  }
  // A refusal shown by the server is about the last submission: gone once the operator acts.
  function dismissErrors() {
    if (errorBanner) errorBanner.hidden = true;
  }
  function paint() {
    var all = answeredCount() === n;
    qs.forEach(function (q, i) {
      q.classList.toggle('current', i === cur && !armed);
      q.classList.toggle('answered', !!answer(i));
    });
    // Zoomed in (200 %), the current question may be below the fold: keep it in view.
    if (cur < n && !armed && qs[cur].scrollIntoView) {
      qs[cur].scrollIntoView({ block: 'nearest' });
    }
    outcomeButtons.forEach(function (b) { b.classList.toggle('armed', b === armed); });
    form.classList.toggle('ready', all && !armed);
    if (armed) {
      say('按 Enter(或再点一次)确认“' + label(armed) + '”,Esc 取消', 'armed');
    } else if (releaseArmed) {
      say('已有答案:再按 Esc 放弃答案并释放', 'warn');
    } else if (all) {
      say('全部 ' + n + ' 题已答,按 Enter 提交', 'ready');
    } else {
      say('第 ' + (cur + 1) + ' 题:按 1–' + levels + ' 作答');
    }
  }
  function choose(i, v) {
    var r = qs[i].querySelector('input[type=radio][value="' + v + '"]');
    if (!r) return false;
    r.checked = true;
    qs[i].querySelector('input.ms').value = String(elapsed());
    return true;
  }
  function send(btn) {
    if (form.dataset.sent) return;
    if (form.requestSubmit) form.requestSubmit(btn);
    else btn.click();
  }
  function disarm() {
    armed = null;
    if (document.activeElement === appt) appt.blur();
  }
  function arm(btn) {
    var key = btn.value;
    var k = answeredCount();
    if (key === 'partial') {
      if (k === 0) return say('部分完成至少要回答一题', 'warn');
      if (k === n) return say('全部 ' + n + ' 题已答,请按 Enter 提交完成访问', 'warn');
    } else if (k > 0) {
      return say('已有答案,“' + label(btn) + '”不能带答案(中途结束按 P)', 'warn');
    }
    armed = btn;
    releaseArmed = false;
    dismissErrors();
    paint();
    if (key === 'appointment' && appt) {
      appt.focus();
    }
  }

  // The appointment field: H puts the focus there with its text selected, so typing 15:30
  // (today, or tomorrow once passed) or 12-08 15:30 replaces it; ↑/↓ step through the presets
  // (in an hour, 14:30, tomorrow 09:00); Enter records, Esc cancels.
  var presets = Array.prototype.slice.call(form.querySelectorAll('button.preset'));
  var preset = 0; // the field's default is the first preset
  function choosePreset(i) {
    if (!presets.length) return;
    preset = (i + presets.length) % presets.length;
    appt.value = presets[preset].getAttribute('data-value');
    presets.forEach(function (p, k) { p.classList.toggle('chosen', k === preset); });
    var b = form.querySelector('button[value=appointment]');
    if (b && armed !== b) arm(b);
    appt.focus();
    appt.select();
  }
  presets.forEach(function (p, k) {
    p.addEventListener('click', function (e) {
      e.preventDefault();
      choosePreset(k);
    });
  });
  if (appt) {
    appt.addEventListener('focus', function () { appt.select(); });
    appt.addEventListener('keydown', function (e) {
      if (e.isComposing) return;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        choosePreset(preset + (e.key === 'ArrowDown' ? 1 : -1));
      } else if (e.key === 'Enter') {
        e.preventDefault();
        var b = armed || form.querySelector('button[value=appointment]');
        send(b);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        disarm();
        paint();
      }
    });
  }
  if (comment) {
    comment.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        comment.blur();
      } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        comment.blur();
        onEnter();
      }
    });
  }

  function onEnter() {
    if (armed) return send(armed);
    if (answeredCount() === n) return send(complete);
    var missing = n - answeredCount();
    say('还有 ' + missing + ' 题未答(中途结束按 P)', 'warn');
  }

  document.addEventListener('keydown', function (e) {
    var key = keyOf(e);
    if (!plainKey(e) && !(key === 'Enter' && e.ctrlKey)) return;
    if (e.target === appt || e.target === comment) return;
    if (typingIn(e.target)) return;
    if (form.dataset.sent) {
      e.preventDefault();
      return;
    }
    if (/^[1-9]$/.test(key)) {
      var v = Number(key);
      if (v > levels) return;
      e.preventDefault();
      dismissErrors();
      disarm();
      releaseArmed = false;
      if (cur >= n) {
        say('已全部作答:按 ← 修改,按 Enter 提交', 'ready');
        return;
      }
      choose(cur, v);
      cur = firstOpen(cur + 1);
      paint();
      return;
    }
    switch (key) {
      case 'Backspace':
      case 'ArrowLeft':
        e.preventDefault();
        disarm();
        cur = Math.max(0, Math.min(cur, n) - 1);
        paint();
        return;
      case 'ArrowRight':
        e.preventDefault();
        disarm();
        cur = Math.min(n - 1, cur + 1);
        paint();
        return;
      case 'Enter':
        e.preventDefault();
        onEnter();
        return;
      case 'Escape':
        e.preventDefault();
        if (armed) {
          disarm();
          paint();
          return;
        }
        if (answeredCount() > 0 && !releaseArmed) {
          releaseArmed = true;
          paint();
          return;
        }
        send(release);
        return;
      case '/':
        e.preventDefault();
        if (comment) comment.focus();
        return;
    }
    if (key.length === 1) {
      var upper = key.toUpperCase();
      dismissErrors();
      for (var i = 0; i < outcomeButtons.length; i++) {
        if (outcomeButtons[i].getAttribute('data-hotkey') === upper) {
          e.preventDefault();
          arm(outcomeButtons[i]);
          return;
        }
      }
    }
  });

  // Mouse use keeps the same state: a clicked answer is timed and moves the cursor on.
  form.addEventListener('change', function (e) {
    if (e.target.type !== 'radio') return;
    var li = e.target.closest('li.q');
    var i = qs.indexOf(li);
    if (i < 0) return;
    li.querySelector('input.ms').value = String(elapsed());
    cur = firstOpen(i + 1);
    dismissErrors();
    disarm();
    paint();
  });
  // "清空答案" empties the answers. A plain reset would restore the answers the server sent
  // back with a refusal (they are the form's defaults then), so each one is cleared itself.
  form.addEventListener('reset', function (e) {
    e.preventDefault();
    form.querySelectorAll('input[type=radio]').forEach(function (r) { r.checked = false; });
    form.querySelectorAll('input.ms').forEach(function (m) { m.value = ''; });
    cur = 0;
    dismissErrors();
    disarm();
    releaseArmed = false;
    paint();
  });
  // A click on an outcome asks the same confirmation as its letter: the first click arms it,
  // a second click (or Enter) records.
  outcomeButtons.forEach(function (b) {
    b.addEventListener('click', function (e) {
      if (armed === b) return;
      e.preventDefault();
      arm(b);
    });
  });
  // One submission per form: a double click or a repeated key sends nothing more.
  form.addEventListener('submit', function (e) {
    if (form.dataset.sent) {
      e.preventDefault();
      return;
    }
    form.dataset.sent = '1';
    form.classList.add('sending');
    say('正在保存…', 'ready');
  });

  // The claim's lease. While the page is open it is renewed every third of the lease, so a
  // long conversation never lapses; if renewal fails (network, server) the operator is warned
  // a minute before the lapse (half the lease when it is shorter). A record sent after a lapse
  // is still stored by the server; this only keeps it from happening unannounced.
  var warning = document.getElementById('lease-warning');
  var leaseText = document.getElementById('lease-expires');
  var expires = Number(form.getAttribute('data-expires')) || 0;
  var lease = Math.max(1000, expires - claimed);
  var every = Math.max(1000, Math.min(lease / 3, 5 * 60 * 1000));
  var warnBefore = Math.min(60 * 1000, lease / 2);
  var lastTry = performance.now();
  var inFlight = false;
  var lost = null;
  var failure = '';
  function serverNow() {
    return rendered + performance.now();
  }
  function warn(text) {
    if (!warning) return;
    warning.textContent = text;
    warning.hidden = !text;
  }
  function renew() {
    if (inFlight || form.dataset.sent || lost || !window.fetch) return;
    inFlight = true;
    lastTry = performance.now();
    var body = new URLSearchParams();
    body.set('csrf', form.querySelector('input[name=csrf]').value);
    body.set('round', form.querySelector('input[name=round]').value);
    body.set('token', form.querySelector('input[name=token]').value);
    fetch('/call/renew', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json' },
      body: body
    }).then(function (r) {
      return r.json().then(function (j) { return { status: r.status, body: j }; },
        function () { return { status: r.status, body: {} }; });
    }).then(function (r) {
      inFlight = false;
      if (r.status === 200 && r.body.renewed) {
        expires = r.body.expires_at_ms;
        failure = '';
        if (leaseText && r.body.expires) leaseText.textContent = r.body.expires;
        form.setAttribute('data-expires', String(expires));
        warn('');
      } else if (r.status === 409) {
        lost = r.body.error || '该联系人已不在您的名下。';
        warn(lost);
      } else {
        failure = '服务器返回 ' + r.status;
      }
    }, function () {
      inFlight = false;
      failure = '网络不通';
    });
  }
  function watchLease() {
    if (form.dataset.sent || !expires) return;
    if (!lost && performance.now() - lastTry >= (failure ? Math.min(every, 5000) : every)) renew();
    if (lost) return;
    var left = expires - serverNow();
    if (left <= 0) {
      warn('领取已超时,续期失败(' + (failure || '无法连接服务器') + ')。请照常提交:若其间无人领取该联系人,记录照常保存;否则保存并标记为迟交记录。');
    } else if (left <= warnBefore && failure) {
      warn('领取将在 ' + Math.ceil(left / 1000) + ' 秒后超时,自动续期失败(' + failure + ')。请尽快提交本次访问。');
    }
  }
  setInterval(watchLease, 1000);

  cur = firstOpen(0);
  if (cur >= n) cur = n;
  if (document.activeElement && document.activeElement !== document.body) {
    document.activeElement.blur();
  }
  paint();
})();
