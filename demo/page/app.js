'use strict';

// The sample app of `bff demo`. It holds no token and never could: every call
// is same-origin, and the session lives in HttpOnly cookies the BFF sealed.

const $ = (id) => document.getElementById(id);

// call fetches a same-origin URL with the BFF's anti-forgery header and returns
// the status and the parsed JSON body (or the text if it is not JSON).
async function call(url, method = 'GET') {
  const res = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: { 'X-CSRF': '1', Accept: 'application/json' },
  });
  const text = await res.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // keep the text
  }
  return { status: res.status, ok: res.ok, body };
}

function show(el, r) {
  el.textContent = 'HTTP ' + r.status + '\n' + (typeof r.body === 'string' ? r.body : JSON.stringify(r.body, null, 2));
}

function showError(el, err) {
  el.textContent = 'Request failed: ' + err.message;
}

function showCookies() {
  const c = document.cookie;
  $('cookies').textContent = 'document.cookie = ' + JSON.stringify(c);
  $('cookies-note').textContent = c === ''
    ? 'Empty: it holds no token. The session cookies are HttpOnly, so script cannot read them at all.'
    : 'These are the only cookies script can read; none of them holds a token. The session cookies are HttpOnly.';
}

// showHeldCookies lists what the browser sends to this origin, as the demo
// server saw it (names and sizes only), and checks that page script cannot
// read any of those cookies through document.cookie.
async function showHeldCookies() {
  const list = $('cookie-list');
  const verdict = $('cookie-verdict');
  try {
    const r = await fetch('/demo/cookies', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (r.status !== 200) {
      list.textContent = '(GET /demo/cookies answered HTTP ' + r.status + ': only `bff demo` serves it)';
      verdict.textContent = '';
      return;
    }
    const held = await r.json();
    const cookies = held.cookies || [];
    const width = Math.max(0, ...cookies.map((c) => c.name.length));
    list.textContent = cookies.length === 0
      ? '(none)'
      : cookies.map((c) => c.name.padEnd(width) + '  ' + c.bytes + ' bytes').join('\n') +
        '\n\nCookie header: ' + held.header_bytes + ' bytes';
    const visible = document.cookie === '' ? [] : document.cookie.split('; ').map((kv) => kv.split('=')[0]);
    const readable = cookies.map((c) => c.name).filter((n) => visible.includes(n));
    if (cookies.length === 0) {
      verdict.textContent = 'No cookie yet: sign in, and the BFF sets its sealed session cookies.';
    } else if (readable.length === 0) {
      verdict.textContent = 'Page script could not read any of them: document.cookie holds ' +
        (cookies.length === 1 ? 'no trace of this cookie' : 'none of these ' + cookies.length + ' cookies') +
        '. They are HttpOnly; only the browser sends them.';
    } else {
      verdict.textContent = 'Page script can read ' + readable.join(', ') + '; none of them may hold a token.';
    }
  } catch (err) {
    list.textContent = 'Request failed: ' + err.message;
    verdict.textContent = '';
  }
}

// The live event stream: an EventSource, which cannot send a custom header.
let events = null;
const eventLines = [];

function clock(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString();
}

function startEvents() {
  const status = $('events-status');
  events = new EventSource('/api/events');
  $('events-toggle').textContent = 'Stop';
  status.textContent = 'Connecting…';
  events.onopen = () => {
    status.textContent = 'Connected: GET /api/events is open, without any header from page script.';
    showHeldCookies(); // a refresh on the way changes the session cookies
  };
  events.onmessage = (ev) => {
    let tick;
    try {
      tick = JSON.parse(ev.data);
    } catch {
      return;
    }
    const left = Math.round(tick.exp - Date.now() / 1000);
    eventLines.unshift('#' + tick.n + '  ' + new Date(tick.time).toLocaleTimeString() + '  sub ' + tick.sub +
      '  token exp ' + clock(tick.exp) + ' (in ' + left + ' s)');
    eventLines.length = Math.min(eventLines.length, 5);
    $('events').textContent = eventLines.join('\n');
  };
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) {
      status.textContent = 'Closed: the BFF or the API refused the stream (signed out?).';
      stopEvents(false);
      return;
    }
    status.textContent = 'Reconnecting… (the stream ended: the token expired, or the API went away)';
  };
}

function stopEvents(say = true) {
  if (events) events.close();
  events = null;
  $('events-toggle').textContent = 'Watch live events';
  if (say) $('events-status').textContent = 'Stopped.';
}

async function loadUser() {
  const user = $('user');
  try {
    const r = await call('/auth/user');
    const signedIn = r.status === 200 && r.body && typeof r.body === 'object';
    $('login').hidden = signedIn;
    $('logout').hidden = !signedIn;
    if (!signedIn) {
      user.textContent = 'Signed out.';
      return;
    }
    const claims = r.body.claims || {};
    const who = claims.name || claims.preferred_username || r.body.sub;
    const parts = ['Signed in as ' + who];
    if (claims.email) parts.push('<' + claims.email + '>');
    parts.push('(sub ' + r.body.sub + ')');
    if (r.body.expires_at) parts.push('— session until ' + new Date(r.body.expires_at).toLocaleString());
    user.textContent = parts.join(' ');
  } catch (err) {
    user.textContent = 'Could not load the user: ' + err.message;
    $('login').hidden = false;
    $('logout').hidden = true;
  }
}

async function logout() {
  try {
    const r = await call('/auth/logout', 'POST');
    if (r.ok && r.body && r.body.logout_url) {
      location.href = r.body.logout_url;
      return;
    }
    $('user').textContent = 'Sign-out failed: HTTP ' + r.status;
  } catch (err) {
    $('user').textContent = 'Sign-out failed: ' + err.message;
  }
  await loadUser();
}

document.addEventListener('DOMContentLoaded', () => {
  $('call-api').addEventListener('click', () =>
    call('/api/whoami').then((r) => show($('api-result'), r), (err) => showError($('api-result'), err))
      .then(showHeldCookies));
  $('call-echo').addEventListener('click', () =>
    call('/api/echo', 'POST').then((r) => show($('echo-result'), r), (err) => showError($('echo-result'), err))
      .then(showHeldCookies));
  $('events-toggle').addEventListener('click', () => (events ? stopEvents() : startEvents()));
  $('logout').addEventListener('click', () => {
    stopEvents(false);
    logout();
  });
  showCookies();
  loadUser().then(showHeldCookies);
});
