// Command login signs in through a real provider the way the end-to-end
// tests' Browser does: it opens -start on the relying party (the BFF's
// /auth/login, or oauth2-proxy's /oauth2/start), follows redirects across
// hosts, fills the provider's development login form (-user / -password) and
// submits its consent form, visits the relying party's callback, and stops
// before following the callback's redirect. It then writes the Cookie header
// the relying party's host would get (cookies whose name starts with
// -cookie-prefix) to -out, mode 0600, and nothing to stdout.
//
// The sign-in itself is package bench/internal/signin (bench/cmd/storm signs
// in a population with it).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bff-project/bff/bench/internal/signin"
)

func main() {
	start := flag.String("start", "", "sign-in URL on the relying party, e.g. http://localhost:8080/auth/login?returnTo=/ (required)")
	callback := flag.String("callback-path", "/auth/callback", "the relying party's callback path")
	user := flag.String("user", "bench-user", "login for the provider's form")
	pass := flag.String("password", "bench-password", "password for the provider's form")
	prefix := flag.String("cookie-prefix", "", "only write the relying party's cookies whose name starts with this")
	out := flag.String("out", "", "file for the Cookie header (required)")
	flag.Parse()
	if *start == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "login: -start and -out are required")
		os.Exit(2)
	}
	res, err := signin.Login(signin.NewClient(), *start, *callback, *user, *pass, *prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, []byte(res.Header+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "login:", err)
		os.Exit(1)
	}
}
