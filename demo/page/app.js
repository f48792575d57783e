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
    call('/api/whoami').then((r) => show($('api-result'), r), (err) => showError($('api-result'), err)));
  $('call-echo').addEventListener('click', () =>
    call('/api/echo', 'POST').then((r) => show($('echo-result'), r), (err) => showError($('echo-result'), err)));
  $('logout').addEventListener('click', logout);
  showCookies();
  loadUser();
});
