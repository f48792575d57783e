// Package e2e holds the end-to-end tests of the BFF. It has no production
// code: everything lives in _test.go files.
//
// The tests start real processes and clean up every one of them:
//   - a real OpenID provider, the pinned npm package oidc-provider, run by
//     idp/server.js under Node (see idp/package.json and package-lock.json);
//   - an upstream API (an httptest server) that validates bearer JWTs against
//     the provider's JWKS, the way an unchanged existing API would;
//   - the BFF binary itself, built once from the repository root and started
//     with `bff serve -config file.yaml` (or `bff demo`), secrets passed
//     through the environment;
//   - Debian's Chromium, headless, driven with chromedp (browser_*_test.go):
//     what a person sees, and what page script can and cannot read.
//     BFF_E2E_CHROMIUM overrides the path (default /usr/bin/chromium);
//   - nginx from Debian as a round-robin load balancer in front of three BFF
//     instances gossiping their revocations (cluster_*_test.go);
//   - a browser-like HTTP client with its own cookie jar (loopback counts as a
//     secure context, like in browsers) that walks the provider's login and
//     consent forms, for the flows that need no rendering.
//
// Running: `go test ./e2e/`, or one case alone with an anchored pattern, e.g.
// `go test ./e2e/ -run '^TestBrowser$/^sign_out_kills_session_everywhere$' -v`.
// The first run does `npm ci` in idp/ when idp/node_modules is missing; a
// missing Node.js, Chromium or nginx fails the run with what to install, it
// never skips silently (../test.sh installs them).
//
// What it does NOT do: unit-test packages (each package has its own tests)
// or talk to anything but loopback.
package e2e
