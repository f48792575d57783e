// Package e2e holds the end-to-end tests of the BFF. It has no production
// code: everything lives in _test.go files.
//
// The tests start real processes and clean up every one of them:
//   - a real OpenID provider, the pinned npm package oidc-provider, run by
//     idp/server.js under Node (see idp/package.json and package-lock.json);
//   - an upstream API (an httptest server) that validates bearer JWTs against
//     the provider's JWKS, the way an unchanged existing API would;
//   - the BFF binary itself, built once from the repository root and started
//     with `bff serve -config file.yaml`, secrets passed through the
//     environment;
//   - a browser-like HTTP client with its own cookie jar (loopback counts as a
//     secure context, like in browsers) that walks the provider's development
//     login and consent forms.
//
// Running: `go test ./e2e/`. Node.js must be installed; the first run does
// `npm ci` in idp/ when idp/node_modules is missing. A missing Node.js or a
// failed `npm ci` fails the run, it never skips silently.
//
// What it does NOT do: unit-test packages (each package has its own tests),
// drive a real browser engine (cookie prefixes, SameSite and Sec-Fetch-*
// behaviour are emulated by the test client), or talk to anything but
// loopback.
package e2e
