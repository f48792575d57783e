package proxy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bff-project/bff/proxy"
)

// TestSuccessorCacheFull: a full successor cache makes room (the oldest
// entries go) rather than refusing the newest successor, which a request
// racing the refresh is about to need.
func TestSuccessorCacheFull(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	refresh := func(rt string) proxy.Outcome {
		t.Helper()
		_, o, err := h.p.RefreshLocal(ctx, rt, "alice")
		if err != nil {
			t.Fatalf("RefreshLocal(%s): %v", rt, err)
		}
		return o
	}
	for i := range proxy.MaxSuccessors {
		refresh(fmt.Sprintf("RT-%d", i))
	}
	h.clk.Advance(10 * time.Second) // inside the grace: nothing has expired
	if o := refresh("RT-newest"); o != proxy.OutcomeRefreshed {
		t.Fatalf("newest: outcome %q", o)
	}
	calls := h.ref.Calls()
	if o := refresh("RT-newest"); o != proxy.OutcomeSuccessor {
		t.Errorf("newest again: outcome %q, want %q (the successor was not cached)", o, proxy.OutcomeSuccessor)
	}
	if o := refresh(fmt.Sprintf("RT-%d", proxy.MaxSuccessors-1)); o != proxy.OutcomeSuccessor {
		t.Errorf("a recent one: outcome %q, want %q", o, proxy.OutcomeSuccessor)
	}
	if got := h.ref.Calls(); got != calls {
		t.Errorf("Refresher called %d more times, want 0", got-calls)
	}
	// The control: the cache stayed bounded, the oldest entry made room.
	if o := refresh("RT-0"); o != proxy.OutcomeRefreshed {
		t.Errorf("oldest: outcome %q, want %q (evicted)", o, proxy.OutcomeRefreshed)
	}
}
