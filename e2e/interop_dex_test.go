package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bff-project/bff/internal/htmlform"
)

// The Dex row of the interop matrix: Dex v2.45.1 (e2e/providers/dex/go.mod)
// with its in-memory storage, its built-in password database as the only
// connector and one static client. Source references below are to
// github.com/dexidp/dex at tag v2.45.1.

func init() {
	interopStarters = append(interopStarters, interopStarter{name: "dex", start: startDex})
}

const (
	dexClientID = "bff-interop"
	// A secret with the characters RFC 6749 section 2.3.1 makes a client
	// form-encode before Basic auth (Dex url.QueryUnescapes both halves,
	// server/handlers.go:819-834), and a '%' that must stay a '%'.
	dexClientSecret = "d3x:Secret+/%41 &=?~"
	dexUserEmail    = "interop@example.com" // Dex's password DB logs in by email
	dexUserName     = "interop-user"
	dexUserID       = "4f3c7a52-3f0e-4e8a-9a51-6d2f6c0b9e11"
	// idTokens also sets the access tokens' lifetime: an access token is
	// newIDToken with a random at_hash (server/oauth2.go:268-270, 317), and
	// expires_in is what remains of it, truncated to whole seconds
	// (server/handlers.go:1478): 9 when it was issued a moment ago.
	dexTokenTTL = 10 * time.Second
)

// dexOptions are the knobs of a Dex instance that differ between uses.
type dexOptions struct {
	// ReuseInterval is expiry.refreshTokens.reuseInterval: how long after a
	// rotation the replaced refresh token still works (and yields the
	// current one, server/refreshhandlers.go:336-349). "0s" turns reuse off
	// (AllowedToReuse, server/refreshhandlers.go:80-85), so a replayed old
	// refresh token is refused at once.
	ReuseInterval string
}

func startDex(t *testing.T, urls opURLs) *opProvider {
	return startDexWith(t, urls, dexOptions{ReuseInterval: "0s"})
}

func startDexWith(t *testing.T, urls opURLs, o dexOptions) *opProvider {
	t.Helper()
	bin := providerBinary(t, "dex")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	gate := startGate(t, addr)
	const prefix = "/dex" // Dex serves every route under the issuer's path (server/server.go:427-436)
	password := "interop-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	// Dex refuses a password whose hash costs less than bcrypt.DefaultCost
	// at login (checkCost, server/api.go:175-187), not at start.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	op := &opProvider{
		Name:         "dex",
		Issuer:       gate.URL() + prefix,
		Direct:       "http://" + addr + prefix,
		Gate:         gate,
		ClientID:     dexClientID,
		ClientSecret: dexClientSecret,
		AuthMethod:   "", // discovery: client_secret_basic, client_secret_post (server/handlers.go:121)
		// Dex's userinfo answers the claims of the access token it is
		// given (server/handlers.go:1115-1143); the BFF's call works, it
		// just learns nothing new (see Lacks).
		UserInfo:  true,
		AccessTTL: dexTokenTTL,
		User:      dexUserEmail,
		Password:  password,
		Claims:    map[string]string{"email": dexUserEmail, "name": dexUserName},
		Logs:      &syncBuffer{},
		Lacks: map[string]string{
			stepEndSession: "Dex has no RP-initiated logout: its discovery document has no end_session_endpoint " +
				"(struct discovery, server/handlers.go:75-91) and it routes no logout path (server/server.go:448-508)",
			stepRevocation: "Dex has no RFC 7009 revocation endpoint: none in discovery (server/handlers.go:75-91) " +
				"nor among its routes (server/server.go:448-508); refresh tokens are revoked only through the gRPC admin API (RevokeRefresh, server/api.go:382)",
			stepBackchannel: "Dex sends no back-channel logout tokens and advertises no backchannel_logout_supported " +
				"(no such code in v2.45.1; discovery struct server/handlers.go:75-91)",
			stepDenyConsent: "Dex does not redirect a refusal to the client: a POST of approval=rejected renders its own " +
				"500 page \"Approval rejected.\" (handleApproval, server/handlers.go:669-673), never error=access_denied",
			stepUserInfo: "Dex's userinfo returns the claims of the bearer access token itself, which carries the same " +
				"claims as the ID token (server/handlers.go:1115-1143, server/oauth2.go:268-270): there is no claim " +
				"only userinfo returns",
		},
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "dex.yaml")
	if err := os.WriteFile(cfgPath, []byte(dexConfig(op, addr, string(hash), urls, o)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = op.Logs, op.Logs
	proc := startProcess(t, cmd, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dex logs (last 8 KiB):\n%s", tail(op.Logs.String(), 8<<10))
		}
	})
	waitHTTP(t, proc, op.Direct+"/.well-known/openid-configuration", 30*time.Second, op.Logs)
	op.Validate = userinfoValidator(op.Direct)
	op.Fill = func(t *testing.T, page *url.URL, body []byte, deny bool) (*url.URL, url.Values) {
		t.Helper()
		return dexFill(t, op, page, body, deny)
	}
	return op
}

// dexConfig is Dex's YAML configuration (cmd/dex/config.go). Strings are
// written as JSON strings, which YAML reads as double-quoted scalars.
func dexConfig(op *opProvider, addr, hash string, urls opURLs, o dexOptions) string {
	q := strconv.Quote
	return fmt.Sprintf(`issuer: %s
storage:
  type: memory
web:
  http: %s
logger:
  level: "info"
  format: "text"
oauth2:
  responseTypes: ["code"]
  skipApprovalScreen: false
  alwaysShowLoginScreen: false
expiry:
  idTokens: %s
  refreshTokens:
    # rotation is on unless disableRotation (server/refreshhandlers.go:57)
    disableRotation: false
    reuseInterval: %s
enablePasswordDB: true
staticPasswords:
  - email: %s
    hash: %s
    username: %s
    preferredUsername: %s
    userID: %s
    emailVerified: true
staticClients:
  - id: %s
    secret: %s
    name: "BFF interop"
    redirectURIs: [%s]
`, q(op.Issuer), q(addr), q(dexTokenTTL.String()), q(o.ReuseInterval),
		q(dexUserEmail), q(hash), q(dexUserName), q(dexUserName), q(dexUserID),
		q(op.ClientID), q(op.ClientSecret), q(urls.Callback))
}

// dexFill answers Dex's pages: the password form (web/templates/password.html)
// and the approval page (web/templates/approval.html), which offers its two
// choices as two forms without an action (they post back to the page's own
// URL, whose query carries req and hmac, server/handlers.go:618).
func dexFill(t *testing.T, op *opProvider, page *url.URL, body []byte, deny bool) (*url.URL, url.Values) {
	t.Helper()
	forms := htmlform.All(body)
	if len(forms) == 0 {
		// With one connector Dex skips its connector list (server/handlers.go:185);
		// that page has only links, which a Fill cannot follow.
		t.Fatalf("dex: no form at %s: %.600s", redactURL(page.String()), body)
	}
	pick := func(f htmlform.Form) (*url.URL, url.Values) {
		action, err := page.Parse(f.Action)
		if err != nil {
			t.Fatalf("dex: bad form action %q: %v", f.Action, err)
		}
		return action, f.Fields
	}
	switch {
	case forms[0].Fields.Has("login") && forms[0].Fields.Has("password"):
		if bytes.Contains(body, []byte(`id="login-error"`)) {
			t.Fatalf("dex: the password form came back with \"Invalid ... and password\"")
		}
		f := forms[0]
		f.Fields.Set("login", op.User)
		f.Fields.Set("password", op.Password)
		return pick(f)
	case strings.HasSuffix(page.Path, "/approval"):
		want := "approve"
		if deny {
			want = "rejected"
		}
		for _, f := range forms {
			if f.Fields.Get("approval") == want {
				return pick(f)
			}
		}
		t.Fatalf("dex: approval page without an approval=%s form: %.600s", want, body)
	}
	t.Fatalf("dex: unknown page %s: %.600s", redactURL(page.String()), body)
	return nil, nil
}
