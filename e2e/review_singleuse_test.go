package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReviewSingleUse: findings 1 and 9, on a BFF with the new fields
// revocation.max_single_use and a route's body_timeout.
func TestReviewSingleUse(t *testing.T) {
	t.Parallel()
	const maxSingleUse = 500
	s := startRevStack(t, []revRoute{
		{path: "/api/", token: "user"},
		{path: "/body/", token: "user", extra: `    body_timeout: "2s"`},
	}, func(c *revConfig) {
		c.revocation = "  snapshot_file: " + fmt.Sprintf("%q", filepath.Join(t.TempDir(), "revoked")) + fmt.Sprintf("\n  max_single_use: %d\n", maxSingleUse)
	})
	bff := s.bff
	victim := s.login(t, "victim")
	s.adv.setVictim(victim)
	uploader := s.login(t, "uploader")
	upCookie := s.adv.cookieHeader(uploader)

	// Finding 9: a body that trickles in is cut.
	t.Run("body_trickle_cut", func(t *testing.T) {
		s.adv.refused(t, "body_trickle_1_byte_per_s", advWant{status: http.StatusRequestTimeout, reason: "request_timeout", streamed: true, maxElapsed: 5 * time.Second}, func(t *testing.T) *Response {
			head := "POST /body/upload HTTP/1.1\r\nHost: " + strings.TrimPrefix(bff.URL(), "http://") + "\r\nX-CSRF: 1\r\nSec-Fetch-Site: same-origin\r\n" +
				"Origin: " + bff.URL() + "\r\nCookie: " + upCookie + "\r\nContent-Type: application/octet-stream\r\nContent-Length: 64\r\n\r\n"
			r, took := revTrickle(t, bff.cfg.port, head, 64, 15*time.Second)
			if took < 1500*time.Millisecond || took > 4500*time.Millisecond {
				t.Errorf("the trickle was answered after %s, want about 2-4 s (body_timeout 2s)", took.Round(100*time.Millisecond))
			}
			return r
		})
		// The body is streamed, not buffered: the upstream may have the
		// head, but never a complete body.
		for _, b := range s.rev.bodyLog() {
			if b.complete {
				t.Errorf("the upstream received a complete trickled body (%d bytes)", b.n)
			}
		}
	})
	t.Run("control_fair_rate_body_longer_than_timeout", func(t *testing.T) {
		const size = 30 << 10 // 1 KiB every 100 ms: 3 s at 10 KiB/s
		req, _ := http.NewRequest(http.MethodPost, bff.URL()+"/body/upload", &pacedReader{left: size, chunk: 1 << 10, every: 100 * time.Millisecond})
		req.ContentLength = size
		u, _ := url.Parse(bff.URL() + "/")
		for k, v := range fetchHeaders(http.MethodPost, bff.URL()+"/body/upload", csrf) {
			req.Header.Set(k, v)
		}
		req.Header.Set("Cookie", uploader.jar.header(u))
		req.Header.Set("Content-Type", "application/octet-stream")
		start := time.Now()
		resp, err := uploader.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a %d KiB body at 10 KiB/s (%s): %d %s", size>>10, took.Round(100*time.Millisecond), resp.StatusCode, body)
		}
		if took < 2*time.Second {
			t.Errorf("the upload took %s: not longer than body_timeout, the control proves nothing", took)
		}
		bl := s.rev.bodyLog()
		if len(bl) == 0 || !bl[len(bl)-1].complete || bl[len(bl)-1].n != size {
			t.Errorf("the upstream did not receive the whole fair-rate body: %+v", bl)
		}
	})

	// Finding 1: flooding the single-use set cannot stop sign-ins.
	t.Run("single_use_flood_does_not_stop_sign_in", func(t *testing.T) {
		control := newBrowser(t)
		control.Login(t, bff.URL(), "/", "before-flood", "pw")
		if r := control.Get(t, bff.URL()+"/auth/user", nil); r.Status != http.StatusOK {
			t.Fatalf("sign-in before the flood: /auth/user %d (positive control)", r.Status)
		}
		n := 3 * maxSingleUse
		start := time.Now()
		counts, err := revFlood(bff.URL(), s.idp.Issuer(), n, 8)
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
		t.Logf("%d code-less callbacks in %s: statuses %v", n, time.Since(start).Round(time.Millisecond), counts)
		for st, c := range counts {
			if st < 400 || st >= 500 {
				t.Errorf("%d flood callback(s) answered %d, want 4xx", c, st)
			}
		}
		after := newBrowser(t)
		final := after.Login(t, bff.URL(), "/after", "after-flood", "pw")
		if u, _ := url.Parse(final); u == nil || u.Path != "/after" {
			t.Errorf("sign-in after the flood landed on %q", final)
		}
		if r := after.Get(t, bff.URL()+"/auth/user", nil); r.Status != http.StatusOK {
			t.Errorf("sign-in after the flood: /auth/user %d", r.Status)
		}

		// Eviction drops the oldest values, not the newest: a genuine
		// callback completed after the flood is still single use.
		rb := newBrowser(t)
		startURL := rb.StartLogin(t, bff.URL(), "/")
		cb := rb.Authorize(t, startURL.String(), "replayed", "pw", func(u *url.URL) bool {
			return u.Path == "/auth/callback" && strings.HasSuffix(bff.URL(), u.Host)
		})
		withCookie := s.adv.cookieHeader(rb)
		if r := rb.navigate(t, http.MethodGet, cb, nil, "cross-site", cb); r.Status != http.StatusFound {
			t.Fatalf("genuine callback after the flood: %d", r.Status)
		}
		s.adv.keep(rb)
		st0 := s.idp.Stats(t)
		r := s.adv.send(t, http.MethodGet, cb.RequestURI(), withCookie, map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "cross-site"}, "")
		// A navigation is sent back to the app with the error.
		if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.Contains(loc, "login_error=invalid_state") {
			t.Errorf("replayed callback after the flood: %d to %q, want 302 with login_error=invalid_state", r.Status, loc)
		}
		if d := sumCounts(s.idp.Stats(t).TokenCalls) - sumCounts(st0.TokenCalls); d != 0 {
			t.Errorf("the replayed callback reached the provider's token endpoint %d time(s)", d)
		}
	})

	t.Run("logs_hold_no_secrets", func(t *testing.T) { revCheckLogs(t, s.adv) })
	s.adv.table(t, "review single use")
}

// revFlood starts n sign-ins and calls each one's callback without a code
// (with its login cookie), workers at a time, and counts the callbacks'
// statuses.
func revFlood(bffURL, issuer string, n, workers int) (map[int]int, error) {
	hc := &http.Client{
		Transport:     &http.Transport{DialContext: loopbackDialer(), MaxIdleConnsPerHost: workers},
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer hc.CloseIdleConnections()
	// The sign-ins start as navigations; the code-less callbacks are sent
	// as the attacker's script sends them (a navigation would be answered
	// with a redirect to the app carrying login_error: the same refusal).
	get := func(u, cookie string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if cookie == "" {
			req.Header.Set("Sec-Fetch-Mode", "navigate")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		} else {
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		first  error
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				resp, err := get(bffURL+"/auth/login?returnTo=/", "")
				if err != nil {
					fail(err)
					return
				}
				loc, err := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusFound || err != nil {
					fail(fmt.Errorf("login answered %d", resp.StatusCode))
					return
				}
				state, cookie := loc.Query().Get("state"), ""
				for _, c := range resp.Cookies() {
					if strings.HasPrefix(c.Name, loginCookiePrefix) && c.Value != "" {
						cookie = c.Name + "=" + c.Value
					}
				}
				if state == "" || cookie == "" {
					fail(fmt.Errorf("login gave no state or no login cookie"))
					return
				}
				q := url.Values{"state": {state}, "iss": {issuer}}
				resp, err = get(bffURL+"/auth/callback?"+q.Encode(), cookie)
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				counts[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts, first
}

// TestReviewSingleUseDefaultBound floods 100,001 code-less callbacks at a
// BFF with the default bound (the old cache refused every new state once it
// held 100,000), then signs in. It takes tens of seconds: it runs only with
// BFF_E2E_REVIEW_BIG_FLOOD=1.
func TestReviewSingleUseDefaultBound(t *testing.T) {
	if os.Getenv("BFF_E2E_REVIEW_BIG_FLOOD") == "" {
		t.Skip("set BFF_E2E_REVIEW_BIG_FLOOD=1 to flood 100,001 sign-ins (tens of seconds); the bounded set's eviction is proven by TestReviewSingleUse")
	}
	t.Parallel()
	st := startStack(t, StackOptions{})
	control := newBrowser(t)
	control.Login(t, st.BFF.URL(), "/", "before-flood", "pw")
	start := time.Now()
	counts, err := revFlood(st.BFF.URL(), st.IDP.Issuer(), 100_001, 8)
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	t.Logf("100,001 code-less callbacks in %s: statuses %v", time.Since(start).Round(time.Millisecond), counts)
	after := newBrowser(t)
	startURL := after.StartLogin(t, st.BFF.URL(), "/")
	cb := after.Authorize(t, startURL.String(), "after-flood", "pw", func(u *url.URL) bool { return u.Path == "/auth/callback" })
	if r := after.navigate(t, http.MethodGet, cb, nil, "cross-site", cb); r.Status != http.StatusFound {
		t.Errorf("a genuine callback after the flood answered %d %.200s, want 302", r.Status, r.Body)
	}
}
