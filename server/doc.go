// Package server is the BFF's HTTP face: the Gin engine with the /auth
// endpoints (login, callback, user, logout), health checks, the anti-forgery
// and security-header middleware, the one place that maps errors to statuses,
// and the wiring of keys, crypto, session, revocation, oauth and proxy.
//
// It is the only package that imports Gin. It does not parse configuration
// files or flags (main does) and does not serve the demo (package demo is
// plugged in as an ordinary static handler).
package server
