package server_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bff-project/bff/server"
)

// TestRunWithoutProvider: while the provider cannot be reached Run retries
// with backoff (500 ms, then 1 s, ...), is not ready and says so, and
// when its context ends it returns the context's error, not nil.
func TestRunWithoutProvider(t *testing.T) {
	logs := &syncBuffer{}
	srv, err := server.New(server.Config{
		PublicURL: "https://app.example.test",
		OIDC:      oauthConfig("http://127.0.0.1:1", "https://app.example.test"), // nothing listens on port 1
		Secrets:   [][]byte{testMaster},
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	const failed = `"msg":"identity provider discovery failed; retrying"`
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), failed); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no failed discovery logged:\n%s", logs)
		}
	}
	// The second attempt comes 500 ms later, and waits twice as long.
	for deadline := time.Now().Add(5 * time.Second); strings.Count(logs.String(), failed) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no second attempt:\n%s", logs)
		}
	}
	var retries []string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, failed) {
			_, r, _ := strings.Cut(line, `"retry_in":`)
			retries = append(retries, strings.TrimSuffix(r, "}"))
		}
	}
	if retries[0] != "500000000" || retries[1] != "1000000000" {
		t.Errorf("retries in %v ns, want 500 ms then 1 s", retries[:2])
	}
	if srv.Ready() || strings.Contains(logs.String(), "identity provider ready") {
		t.Errorf("ready (%v) or logged ready without a provider:\n%s", srv.Ready(), logs)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
