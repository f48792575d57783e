package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/server"
)

// checkDiscoveryTimeout bounds the discovery `bff check` makes.
const checkDiscoveryTimeout = 5 * time.Second

// Check is `bff check` once the configuration has loaded: it builds the
// server c describes without starting it (no port bound, no cluster
// joined, no revocation list opened: a running instance owns that file),
// and writes to w what the BFF would do, without secrets, and which BFF_*
// variables of environ (KEY=VALUE, as os.Environ) name no field.
//
// Then it asks the provider, in one discovery bounded by 5 s, what it
// offers (client authentication, RFC 9207 iss, logout, revocation). A
// provider that answers for another issuer, or without PKCE S256, is an
// error; one that cannot be reached now is reported but is not, unless
// online. With online the provider's signing keys are fetched too.
func (c *Config) Check(ctx context.Context, w io.Writer, environ []string, online bool) error {
	sc := c.Server
	sc.Logger = slog.New(slog.DiscardHandler)
	// check binds nothing: the cluster section is validated, not started.
	cc := sc.Cluster
	sc.Cluster = nil
	// Nor does it open the revocation list (its directory was found
	// writable): a running instance owns that file.
	snapshot := sc.SnapshotFile
	sc.SnapshotFile = ""
	srv, err := server.New(sc)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "config ok: listen %s\n%s", c.Listen, srv)
	for _, name := range UnknownEnv(environ) {
		fmt.Fprintf(w, "warning: %s names no config field; ignored (a typo?)\n", name)
	}
	if snapshot != "" {
		fmt.Fprintf(w, "revocation list persisted to %s\n", snapshot)
	} else {
		fmt.Fprintln(w, "revocation list in memory only: a restart undoes every logout")
	}
	if c.AdminListen != "" {
		fmt.Fprintf(w, "admin API: on %s (token required)\n", c.AdminListen)
	} else {
		fmt.Fprintln(w, "admin API: off")
	}
	if cc != nil {
		fmt.Fprintf(w, "cluster: gossip on %s, joining %v\n", cc.Bind, cc.Join)
	} else {
		fmt.Fprintln(w, "cluster: none (single instance)")
	}
	ctx, cancel := context.WithTimeout(ctx, checkDiscoveryTimeout)
	defer cancel()
	report, err := srv.ProviderReport(ctx)
	switch {
	case err == nil:
		fmt.Fprint(w, report)
		if online {
			keys, err := srv.ProviderKeys(ctx)
			if err != nil {
				return fmt.Errorf("oidc.issuer: signing keys: %w", err)
			}
			fmt.Fprint(w, keys)
		}
	case online:
		return fmt.Errorf("oidc.issuer: provider not reachable (-online): %w", err)
	case errors.Is(err, oauth.ErrProvider), errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(w, "provider %s: not reachable from here now (%v); serve retries discovery until it answers\n", c.Server.OIDC.Issuer, err)
	default:
		return fmt.Errorf("oidc.issuer: %w", err)
	}
	return nil
}
