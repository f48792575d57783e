package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"
)

// The zitadel row of the interop matrix: the example OP of
// github.com/zitadel/oidc (example/server, pinned in
// e2e/providers/zitadel/go.mod), run by our own thin main
// (e2e/providers/zitadel/main.go) so that its issuer is the gate's URL.
// File references below are to github.com/zitadel/oidc/v3@v3.52.0.
//
// What this row is for: the example's client (storage.WebClient) does not
// assert profile and email claims into the ID token when an access token is
// issued (idTokenUserinfoClaimsAssertion false, example/server/storage/
// client.go:191; pkg/op/token.go:227-228 drops those scopes), so name,
// email and preferred_username reach /auth/user only through userinfo.
//
// Facts of the provider the lifecycle meets, provoked against it:
//   - refresh tokens rotate: the used one is deleted (storage.go:626) and
//     answers 400 {"error":"invalid_grant"}, as does a garbage one
//     (pkg/op/token_refresh.go:150);
//   - a refresh also deletes the access token the old refresh token had
//     issued (storage.go:629): userinfo answers it 403 {} at once, so a
//     request still carrying the predecessor fails at the API;
//   - a wrong client secret answers 401 {"error":"invalid_client",
//     "error_description":"invalid client_id / client_secret"}
//     (pkg/op/token_request.go:161), an unknown client_id 500
//     {"error":"server_error","error_description":"client not found"};
//   - the client is registered for client_secret_basic (client.go:185) but
//     the OP accepts client_secret_post from it as well (AuthMethodPost,
//     example/server/exampleop/op.go:133);
//   - RFC 7009 revocation works (storage.go:372): the refresh token and its
//     access token are gone;
//   - no iss in the authorization response, and discovery does not carry
//     authorization_response_iss_parameter_supported.

// startZitadel starts the example OP behind a gate, with one web client for
// the BFF at urls.
func startZitadel(t *testing.T, urls opURLs) *opProvider {
	t.Helper()
	bin := providerBinary(t, "zitadel")
	port := freePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	gate := startGate(t, listen)
	op := &opProvider{
		Name: "zitadel",
		// The example keeps the issuer as given, trailing slash included,
		// in discovery and in the tokens (checked below).
		Issuer:       gate.URL() + "/",
		Direct:       "http://" + listen,
		Gate:         gate,
		ClientID:     "bff-interop",
		ClientSecret: rand.Text(),
		AuthMethod:   "", // discovery lists client_secret_basic: the BFF picks it, as the client is registered
		UserInfo:     true,
		// storage.go:654: every access token lives 5 minutes (expires_in 299).
		AccessTTL: 5 * time.Minute,
		// The example's first user (storage/user.go:63-75); its login name
		// carries the host of the issuer the user store was made with.
		User:     "test-user@127.0.0.1",
		Password: "verysecure",
		// Only userinfo has these (see above); the ID token carries sub,
		// amr, auth_time and the protocol claims only.
		Claims: map[string]string{
			"email":              "test-user@zitadel.ch",
			"name":               "Test User",
			"preferred_username": "test-user@127.0.0.1",
		},
		Validate: userinfoValidator("http://" + listen),
		Lacks: map[string]string{
			stepExpiry: "the example hard-codes 5-minute access tokens " +
				"(example/server/storage/storage.go:654), too long to wait for",
			stepDenyConsent: "the example has no consent page, only a username/password form " +
				"(example/server/exampleop/templates/login.html), so there is nothing to refuse",
			stepEndSession: "the example's client cannot register a post_logout_redirect_uri: " +
				"Client.PostLogoutRedirectURIs returns an empty list (example/server/storage/client.go:50) " +
				"and its globs are unexported, so end_session answers 400 " +
				`{"error":"invalid_request","error_description":"post_logout_redirect_uri invalid"} (pkg/op/session.go:145)`,
			stepBackchannel: "zitadel/oidc sends no logout tokens: the op package only has the discovery flag " +
				"(pkg/op/op.go:185, unset by example/server/exampleop/op.go), the Client interface " +
				"has no backchannel_logout_uri, and nothing builds pkg/oidc.LogoutTokenClaims",
		},
		Logs: &syncBuffer{},
	}
	op.Fill = func(t *testing.T, page *url.URL, body []byte, deny bool) (*url.URL, url.Values) {
		return zitadelFill(t, op, page, body, deny)
	}

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"ISSUER="+op.Issuer,
		"LISTEN="+listen,
		"CLIENT_ID="+op.ClientID,
		"CLIENT_SECRET="+op.ClientSecret,
		"REDIRECT_URI="+urls.Callback,
	)
	cmd.Stdout, cmd.Stderr = op.Logs, op.Logs
	proc := startProcess(t, cmd, 5*time.Second)
	waitHTTP(t, proc, op.Direct+"/.well-known/openid-configuration", 20*time.Second, op.Logs)

	// The BFF compares the issuer exactly: make sure this one is discovery's.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	doc, err := discoveryOf(ctx, op.Direct)
	if err != nil {
		t.Fatalf("e2e: zitadel discovery: %v", err)
	}
	if iss, _ := doc["issuer"].(string); iss != op.Issuer {
		t.Fatalf("e2e: zitadel discovery issuer %q, want %q", iss, op.Issuer)
	}
	return op
}

// zitadelFill fills the example's only page, its login form
// (example/server/exampleop/templates/login.html: hidden id, username,
// password), posted to /login/username (exampleop/login.go:30). A failed
// login renders the same form again with the error in a red paragraph.
func zitadelFill(t *testing.T, op *opProvider, page *url.URL, body []byte, deny bool) (*url.URL, url.Values) {
	t.Helper()
	if deny {
		t.Fatalf("e2e: zitadel: asked to refuse, but the example OP has no consent page")
	}
	for _, msg := range []string{"username or password wrong", "request not found"} {
		if bytes.Contains(body, []byte(msg)) {
			t.Fatalf("e2e: zitadel: login page at %s says %q", redactURL(page.String()), msg)
		}
	}
	f, ok := parseForm(body)
	if !ok || !f.fields.Has("id") || !f.fields.Has("username") || !f.fields.Has("password") {
		t.Fatalf("e2e: zitadel: %s is not the example's login form: %.600s", redactURL(page.String()), body)
	}
	if f.fields.Get("id") == "" {
		t.Fatalf("e2e: zitadel: login form without an auth request id")
	}
	action, err := page.Parse(f.action)
	if err != nil {
		t.Fatalf("e2e: zitadel: bad form action %q: %v", f.action, err)
	}
	f.fields.Set("username", op.User)
	f.fields.Set("password", op.Password)
	return action, f.fields
}

func init() {
	interopStarters = append(interopStarters, interopStarter{name: "zitadel", start: startZitadel})
}
