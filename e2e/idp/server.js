// Test-only OpenID provider for the BFF end-to-end tests.
//
// It runs the real, maintained `oidc-provider` library (pinned in package.json)
// on 127.0.0.1 with one confidential client configured from the environment,
// and adds two test-only endpoints:
//
//   GET  /__test/stats  JSON counters (token calls by grant_type, successful
//                       refreshes, revocations, introspections)
//   POST /__test/reset  zero the counters
//   GET  /__test/tokens JSON list of every successful token-endpoint answer
//                       ({access_token, refresh_token, id_token}), oldest
//                       first, so tests can compare what a page sees with the
//                       real tokens (kept in memory only, never printed)
//
// Token exchange (RFC 8693): oidc-provider has no such grant, so this file
// registers one through the library's registerGrantType extension point and
// its own grant helpers (DPoP validation and binding, resource servers,
// token formats): the subject must be an access token this provider issued
// to the requesting client, unexpired, and (when DPoP-bound) presented with
// a proof by the same key; the issued token is for one resource of RESOURCE
// and RESOURCES, with scopes no wider than the subject's, expiring no later.
//
// It prints exactly one line "READY <issuer>" on stdout once it listens; every
// other message of the library goes to stderr. It is NOT a production
// provider: keys are generated at start, storage is in memory, and the
// development login form accepts any login with any password.
//
// Environment:
//   PORT                       listen port (required)
//   ISSUER                     issuer URL, default http://127.0.0.1:PORT (the
//                              interop matrix puts a gate in front of it)
//   CLIENT_ID, CLIENT_SECRET   the client (default "bff" / "bff-secret")
//   REDIRECT_URIS              comma-separated redirect URIs (required)
//   POST_LOGOUT_REDIRECT_URIS  comma-separated, optional
//   BACKCHANNEL_LOGOUT_URI     optional back-channel logout endpoint
//   TOKEN_AUTH_METHOD          client_secret_basic (default), client_secret_post
//                              or private_key_jwt (the client then has no
//                              secret at all)
//   CLIENT_JWKS_URI            private_key_jwt: where the provider fetches the
//                              client's public keys (the BFF's jwks.json)
//   DPOP                       "optional" (default, the library's default: a
//                              token request with a DPoP proof gets a
//                              DPoP-bound token), "required" (the client must
//                              send proofs: dpop_bound_access_tokens) or
//                              "nonce" (required, and every proof must carry
//                              the provider's DPoP-Nonce)
//   MTLS_PORT, MTLS_CERT,      mutual TLS (RFC 8705): a second, https listener
//   MTLS_KEY, MTLS_CA          on MTLS_PORT (server certificate and key, CA of
//                              client certificates) published as the
//                              mtls_endpoint_aliases of the token, PAR and
//                              revocation endpoints; with TOKEN_AUTH_METHOD
//                              tls_client_auth the client is registered with
//   TLS_CLIENT_SUBJECT_DN      this subject ("CN=...") and no secret
//   FAPI                       "2.0": the library's FAPI 2.0 profile (client
//                              assertions audienced to the issuer, PKCE,
//                              redirect_uri required), with PAR required,
//                              DPOP=nonce, PS256 ID tokens; needs
//                              TOKEN_AUTH_METHOD=private_key_jwt
//   ACCESS_TOKEN_TTL           seconds, default 60
//   ROTATE_REFRESH             "true" (default) or "false"
//   RESOURCE                   access-token audience, default "http://api.test"
//   RESOURCES                  comma-separated more resource indicators (RFC
//                              8707) the client may ask tokens for: by token
//                              exchange (RFC 8693, below) or client
//                              credentials; each token's aud is its resource
//   USERINFO_CLAIMS            "true": profile and email claims only from the
//                              userinfo endpoint, as in a conforming provider
//                              (conformIdTokenClaims on); access tokens are
//                              then issued for userinfo (opaque, no audience)
//                              unless the client names a resource. Default
//                              "false": the claims are in the ID token too,
//                              access tokens are JWTs for RESOURCE.
//   PAR                        pushed authorization requests (RFC 9126):
//                              "offered" (default, the library's default),
//                              "required" (a plain authorization request is
//                              refused) or "disabled" (not advertised)

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { jwtVerify } from 'jose';

// Keep stdout for the READY line only: the library prints notices with
// console.info/console.log.
console.info = console.error;
console.log = console.error;

const { default: Provider, errors } = await import('oidc-provider');
const { default: MemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');

const env = (name, dflt) => {
  const v = process.env[name];
  return v === undefined || v === '' ? dflt : v;
};
const list = (v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);

const port = Number.parseInt(env('PORT', ''), 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error('idp: PORT must be set to a port number');
  process.exit(2);
}
const redirectUris = list(env('REDIRECT_URIS', ''));
if (redirectUris.length === 0) {
  console.error('idp: REDIRECT_URIS must list at least one URI');
  process.exit(2);
}

const clientId = env('CLIENT_ID', 'bff');
const clientSecret = env('CLIENT_SECRET', 'bff-secret');
const postLogoutRedirectUris = list(env('POST_LOGOUT_REDIRECT_URIS', ''));
const backchannelLogoutUri = env('BACKCHANNEL_LOGOUT_URI', '');
const tokenAuthMethod = env('TOKEN_AUTH_METHOD', 'client_secret_basic');
const accessTokenTTL = Number.parseInt(env('ACCESS_TOKEN_TTL', '60'), 10);
const rotateRefresh = env('ROTATE_REFRESH', 'true') !== 'false';
const resource = env('RESOURCE', 'http://api.test');
const resources = new Set([resource, ...list(env('RESOURCES', ''))]);
const userinfoClaims = env('USERINFO_CLAIMS', 'false') === 'true';
const fapi = env('FAPI', '');
const par = fapi ? 'required' : env('PAR', 'offered');
const dpop = fapi ? 'nonce' : env('DPOP', 'optional');
const scope = 'openid profile email offline_access';
const issuer = env('ISSUER', `http://127.0.0.1:${port}`);

if (!['', '2.0'].includes(fapi) || (fapi && tokenAuthMethod !== 'private_key_jwt')) {
  console.error('idp: FAPI must be empty or 2.0, and 2.0 needs TOKEN_AUTH_METHOD=private_key_jwt');
  process.exit(2);
}
if (!['optional', 'required', 'nonce'].includes(dpop)) {
  console.error('idp: DPOP must be optional, required or nonce');
  process.exit(2);
}
if (!['offered', 'required', 'disabled'].includes(par)) {
  console.error('idp: PAR must be offered, required or disabled');
  process.exit(2);
}
if (!['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth'].includes(tokenAuthMethod)) {
  console.error('idp: TOKEN_AUTH_METHOD must be client_secret_basic, client_secret_post, private_key_jwt or tls_client_auth');
  process.exit(2);
}
const mtlsPort = Number.parseInt(env('MTLS_PORT', '0'), 10);
const tlsClientSubject = env('TLS_CLIENT_SUBJECT_DN', '');
if ((tokenAuthMethod === 'tls_client_auth') && (!mtlsPort || !tlsClientSubject)) {
  console.error('idp: tls_client_auth needs MTLS_PORT and TLS_CLIENT_SUBJECT_DN');
  process.exit(2);
}
const clientJwksUri = env('CLIENT_JWKS_URI', '');
if ((tokenAuthMethod === 'private_key_jwt') !== (clientJwksUri !== '')) {
  console.error('idp: CLIENT_JWKS_URI is set exactly when TOKEN_AUTH_METHOD is private_key_jwt');
  process.exit(2);
}

// Fresh signing key per run, so no "development keys" in use.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `k-${randomBytes(4).toString('hex')}`, alg: fapi ? 'PS256' : 'RS256', use: 'sig' };

const stats = {
  token_calls: {}, // grant_type -> count of token-endpoint calls (success or not)
  token_errors: {}, // grant_type -> count of failed token-endpoint calls
  refresh_success: 0, // refresh_token grants that issued tokens
  revocations: 0, // revocation calls that found and destroyed a token
  revocation_calls: 0, // every revocation-endpoint call
  introspections: 0, // every introspection-endpoint call
  introspections_active: 0, // introspections answering active=true
  grants_revoked: 0, // grants revoked (revocation, refresh-token reuse, logout)
  end_sessions: 0, // RP-initiated logouts completed
  backchannel_success: 0,
  backchannel_error: 0,
  client_assertions: {}, // kid -> token, PAR and revocation calls authenticated with a client assertion by it
  exchanges: {}, // resource -> tokens issued by token exchange
  client_credentials: {}, // resource -> tokens issued by client credentials
  mtls_calls: {}, // path -> successful calls over the mutual-TLS listener with a client certificate
};
// Successful token-endpoint answers, for GET /__test/tokens. Not cleared by
// /__test/reset. Never printed.
const issued = [];

const resetStats = () => {
  stats.token_calls = {};
  stats.token_errors = {};
  stats.client_assertions = {};
  stats.exchanges = {};
  stats.client_credentials = {};
  stats.mtls_calls = {};
  for (const k of Object.keys(stats)) {
    if (typeof stats[k] === 'number') stats[k] = 0;
  }
};

const client = {
  client_id: clientId,
  redirect_uris: redirectUris,
  post_logout_redirect_uris: postLogoutRedirectUris,
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
  response_types: ['code'],
  token_endpoint_auth_method: tokenAuthMethod,
  scope,
};
if (dpop !== 'optional') client.dpop_bound_access_tokens = true;
if (fapi) client.id_token_signed_response_alg = 'PS256';
if (tokenAuthMethod === 'private_key_jwt') {
  client.jwks_uri = clientJwksUri;
} else if (tokenAuthMethod === 'tls_client_auth') {
  client.tls_client_auth_subject_dn = tlsClientSubject;
} else {
  client.client_secret = clientSecret;
}
if (backchannelLogoutUri) {
  client.backchannel_logout_uri = backchannelLogoutUri;
  client.backchannel_logout_session_required = true;
}

// The library's default store is an LRU of 1,000 entries, about ten per
// sign-in: past ~100 sessions it forgets grants and refresh tokens that have
// not expired, and their refresh fails with invalid_grant, which a real
// provider's database never does (bench/cluster.sh signs in 1,000). The
// library's own memory adapter over this store keeps every entry until it
// expires instead.
class ExpiringStore {
  #m = new Map(); // key -> {value, expiry (ms, or Infinity)}
  get(key) {
    const e = this.#m.get(key);
    if (e && e.expiry <= Date.now()) {
      this.#m.delete(key);
      return undefined;
    }
    return e?.value;
  }
  set(key, value, { maxAge } = {}) {
    this.#m.set(key, { value, expiry: typeof maxAge === 'number' ? Date.now() + maxAge : Infinity });
    return this;
  }
  delete(key) { return this.#m.delete(key); }
}
const store = new ExpiringStore();

const mtlsBase = `https://127.0.0.1:${mtlsPort}`;
const configuration = {
  adapter: (model) => new MemoryAdapter(model, store),
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none',
    ...(mtlsPort ? ['tls_client_auth'] : [])],
  discovery: mtlsPort ? {
    mtls_endpoint_aliases: {
      token_endpoint: `${mtlsBase}/token`,
      pushed_authorization_request_endpoint: `${mtlsBase}/request`,
      revocation_endpoint: `${mtlsBase}/token/revocation`,
    },
  } : {},
  clients: [client],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: scope.split(' '),
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // With conformIdTokenClaims on, oidc-provider leaves the scope claims out
  // of the ID token only when the access token has no audience (it is then
  // usable at userinfo), hence no default resource in that mode.
  conformIdTokenClaims: userinfoClaims,
  // Explicit lifetimes (seconds); access tokens take ACCESS_TOKEN_TTL from
  // the resource server below.
  ttl: {
    AccessToken: accessTokenTTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  pkce: { required: () => true },
  issueRefreshToken: async () => true,
  rotateRefreshToken: () => rotateRefresh,
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: `Test User ${sub}`,
          email: `${sub}@example.test`,
          email_verified: true,
          preferred_username: sub,
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    // Only the client a token was issued to may revoke or introspect it.
    revocation: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
    },
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
    },
    rpInitiatedLogout: { enabled: true },
    clientCredentials: { enabled: true },
    pushedAuthorizationRequests: {
      enabled: par !== 'disabled',
      requirePushedAuthorizationRequests: par === 'required',
    },
    backchannelLogout: { enabled: true },
    dPoP: {
      enabled: true,
      nonceSecret: randomBytes(32),
      requireNonce: () => dpop === 'nonce',
    },
    fapi: { enabled: fapi !== '', profile: fapi || undefined },
    mTLS: {
      enabled: mtlsPort > 0,
      tlsClientAuth: true,
      // The certificate of this connection, when it came through the https
      // listener (the plain one has none).
      getCertificate(ctx) {
        const peer = ctx.socket.getPeerCertificate?.();
        if (!peer?.raw) return undefined;
        return `-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64')}\n-----END CERTIFICATE-----`;
      },
      certificateAuthorized: (ctx) => ctx.socket.authorized === true,
      certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_subject_dn'
        && `CN=${ctx.socket.getPeerCertificate?.()?.subject?.CN}` === expected,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => (userinfoClaims ? undefined : resource),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (!resources.has(indicator)) throw new errors.InvalidTarget();
        return {
          scope,
          audience: indicator,
          accessTokenFormat: 'jwt',
          accessTokenTTL,
          jwt: { sign: { alg: signingKey.alg } },
        };
      },
    },
  },
  // oidc-provider refuses to deliver back-channel logout tokens to
  // special-use addresses (SSRF protection through an undici dispatcher it
  // passes in options.dispatcher). Every test server is on loopback, so drop
  // that dispatcher here. Test-only.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
};

const provider = new Provider(issuer, configuration);

const grantHelpers = Object.fromEntries(
  Object.entries(await import('oidc-provider/lib/helpers/grants.js')).map(([n, h]) => [n, h.bind(undefined, provider)]),
);
const { applyDpopBinding } = await import('oidc-provider/lib/helpers/grant_common.js');
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const epoch = () => Math.floor(Date.now() / 1000);

provider.registerGrantType('urn:ietf:params:oauth:grant-type:token-exchange', async (ctx) => {
  const p = ctx.oidc.params;
  const { client } = ctx.oidc;
  if (p.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('subject_token_type must be an access token');
  }
  if (p.requested_token_type && p.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('only access tokens are issued');
  }
  let subject;
  try {
    ({ payload: subject } = await jwtVerify(p.subject_token, publicKey, { issuer, algorithms: [signingKey.alg] }));
  } catch {
    throw new errors.InvalidGrant('subject_token is invalid or expired');
  }
  if (subject.client_id !== client.clientId) throw new errors.InvalidGrant('subject_token was issued to another client');
  const dPoP = await grantHelpers.validateDpop(ctx);
  if (subject.cnf?.jkt && subject.cnf.jkt !== dPoP?.thumbprint) {
    throw new errors.InvalidGrant('subject_token is bound to another key');
  }
  const target = p.resource;
  if (typeof target !== 'string' || !resources.has(target)) throw new errors.InvalidTarget();
  const granted = new Set(String(subject.scope || '').split(' ').filter(Boolean));
  const asked = String(p.scope || '').split(' ').filter(Boolean);
  for (const sc of asked) {
    if (!granted.has(sc)) throw new errors.InvalidScope('requested scope exceeds the subject token', sc);
  }
  // save() stamps exp = its own now + ttl: one second less, so a second
  // boundary in between cannot carry the token past its subject.
  const ttl = Math.min(accessTokenTTL, subject.exp - epoch() - 1);
  if (ttl <= 0) throw new errors.InvalidGrant('subject_token expires too soon');
  // expiresIn: the configured ttl.AccessToken (a number) would otherwise
  // win over the resource server's accessTokenTTL.
  const at = new provider.AccessToken({
    accountId: subject.sub, client, gty: 'token_exchange', grantId: subject.jti, expiresIn: ttl,
    scope: (asked.length ? asked : [...granted]).join(' ') || undefined,
  });
  at.resourceServer = new provider.ResourceServer(target, {
    scope, audience: target, accessTokenFormat: 'jwt', accessTokenTTL: ttl, jwt: { sign: { alg: signingKey.alg } },
  });
  await applyDpopBinding(provider, ctx, dPoP, at);
  grantHelpers.checkDpopRequired(ctx, dPoP);
  const value = await at.save();
  stats.exchanges[target] = (stats.exchanges[target] || 0) + 1;
  ctx.body = {
    access_token: value, issued_token_type: ACCESS_TOKEN_TYPE, token_type: at.tokenType,
    expires_in: at.expiration, scope: at.scope,
  };
}, ['subject_token', 'subject_token_type', 'requested_token_type', 'resource', 'audience', 'scope', 'actor_token', 'actor_token_type'], ['resource']);
provider.on('client_credentials.issued', (token) => {
  const r = token.resourceServer?.identifier() || '';
  stats.client_credentials[r] = (stats.client_credentials[r] || 0) + 1;
});

provider.on('grant.success', (ctx) => {
  if (ctx.oidc?.params?.grant_type === 'refresh_token') stats.refresh_success += 1;
});
provider.on('grant.revoked', () => { stats.grants_revoked += 1; });
provider.on('end_session.success', () => { stats.end_sessions += 1; });
provider.on('backchannel.success', () => { stats.backchannel_success += 1; });
provider.on('backchannel.error', (ctx, err) => {
  stats.backchannel_error += 1;
  console.error(`idp: back-channel logout delivery failed: ${err?.message}`);
});
provider.on('server_error', (ctx, err) => {
  console.error('idp: server_error', err);
});

const json = (ctx, status, body) => {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('cache-control', 'no-store');
  ctx.body = JSON.stringify(body);
};

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/stats' && ctx.method === 'GET') {
    json(ctx, 200, stats);
    return;
  }
  if (ctx.path === '/__test/tokens' && ctx.method === 'GET') {
    json(ctx, 200, issued);
    return;
  }
  if (ctx.path === '/__test/reset' && ctx.method === 'POST') {
    resetStats();
    json(ctx, 200, stats);
    return;
  }

  await next();

  // Count the client assertions the provider accepted, by kid (from the
  // header; the provider verified the signature before a 2xx).
  if (ctx.socket.getPeerCertificate?.()?.raw && ctx.status < 400) {
    stats.mtls_calls[ctx.path] = (stats.mtls_calls[ctx.path] || 0) + 1;
  }
  const assertion = ctx.oidc?.body?.client_assertion;
  if (typeof assertion === 'string' && ctx.status < 400) {
    try {
      const { kid } = JSON.parse(Buffer.from(assertion.split('.')[0], 'base64url').toString());
      stats.client_assertions[kid] = (stats.client_assertions[kid] || 0) + 1;
    } catch { /* not a JWS: the provider refused it */ }
  }

  switch (ctx.path) {
    case '/token': {
      if (ctx.method !== 'POST') break;
      const gt = ctx.oidc?.params?.grant_type || 'unknown';
      stats.token_calls[gt] = (stats.token_calls[gt] || 0) + 1;
      if (ctx.status >= 400) stats.token_errors[gt] = (stats.token_errors[gt] || 0) + 1;
      if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        const { access_token, refresh_token, id_token } = ctx.body;
        issued.push({ access_token, refresh_token, id_token });
      }
      break;
    }
    case '/token/revocation': {
      if (ctx.method !== 'POST') break;
      stats.revocation_calls += 1;
      const e = ctx.oidc?.entities || {};
      if (ctx.status === 200 && (e.RefreshToken || e.AccessToken)) stats.revocations += 1;
      break;
    }
    case '/token/introspection': {
      if (ctx.method !== 'POST') break;
      stats.introspections += 1;
      if (ctx.status === 200 && typeof ctx.body === 'object' && ctx.body?.active === true) {
        stats.introspections_active += 1;
      }
      break;
    }
    default:
  }
});

let mtlsServer;
const listening = [];
if (mtlsPort) {
  mtlsServer = https.createServer({
    cert: readFileSync(env('MTLS_CERT', '')), key: readFileSync(env('MTLS_KEY', '')),
    ca: readFileSync(env('MTLS_CA', '')), requestCert: true, rejectUnauthorized: false,
  }, provider.callback());
  listening.push(new Promise((resolve) => { mtlsServer.listen(mtlsPort, '127.0.0.1', resolve); }));
  mtlsServer.on('error', (err) => {
    console.error(`idp: mTLS listen: ${err.message}`);
    process.exit(1);
  });
}
const server = provider.listen(port, '127.0.0.1');
listening.push(new Promise((resolve) => { server.on('listening', resolve); }));
Promise.all(listening).then(() => {
  process.stdout.write(`READY ${issuer}\n`);
});
server.on('error', (err) => {
  console.error(`idp: listen: ${err.message}`);
  process.exit(1);
});

const stop = () => {
  mtlsServer?.close();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
