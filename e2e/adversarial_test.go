package e2e

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	bffcrypto "github.com/bff-project/bff/crypto"
	"github.com/bff-project/bff/keys"
)

// TestAdversarial attacks the built binary the way an attacker would, with
// the real provider, and checks that every refusal is clean (see
// advStack.refused) and changes nothing.
//
// ID-token checks (wrong iss, aud, azp, nonce, expired, unexpected alg,
// at_hash) are not repeated here: the real provider only signs good tokens,
// and faking one would test the fake. They are proven against the callback
// code in oauth/flow_test.go (TestCallback* tables) and server/callback_test.go
// (TestCallbackRefused).
func TestAdversarial(t *testing.T) {
	t.Parallel()
	t.Run("main", func(t *testing.T) {
		t.Parallel()
		advMain(t)
	})
	t.Run("aging", func(t *testing.T) {
		t.Parallel()
		advAging(t)
	})
}

func advMain(t *testing.T) {
	s := startAdvStack(t, time.Hour)
	bff := s.bff
	addr := strings.TrimPrefix(bff.URL(), "http://localhost")
	addr = "127.0.0.1" + addr

	// Slow headers: runs while everything else does. The BFF's
	// ReadHeaderTimeout is 10 s: the connection must be closed by then.
	slow := make(chan string, 1)
	go func() {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			slow <- "dial: " + err.Error()
			return
		}
		defer conn.Close()
		start := time.Now()
		conn.SetDeadline(start.Add(20 * time.Second))
		io.WriteString(conn, "GET /auth/user HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		took := time.Since(start)
		switch {
		case took >= 15*time.Second:
			slow <- fmt.Sprintf("connection still open after %s", took.Round(time.Second))
		case err == nil && resp.StatusCode >= 500:
			slow <- fmt.Sprintf("answered %d", resp.StatusCode)
		case err == nil:
			slow <- fmt.Sprintf("ok: answered %d after %s", resp.StatusCode, took.Round(100*time.Millisecond))
		default:
			slow <- fmt.Sprintf("ok: closed without an answer after %s", took.Round(100*time.Millisecond))
		}
	}()

	victim := s.login(t, "victim")
	s.setVictim(victim)
	attacker := s.login(t, "mallory")
	atkCookie := s.cookieHeader(attacker)
	sealed, ok := attacker.CookieValue(bffHost, sessionCookie)
	if !ok {
		t.Fatal("attacker has no session cookie")
	}
	if _, more := attacker.CookieValue(bffHost, sessionPrefix+".1"); more {
		t.Fatal("the session takes two chunks; the chunk cases below assume one")
	}
	chunk := func(parts ...string) string {
		var c []string
		for i, p := range parts {
			c = append(c, fmt.Sprintf("%s.%d=%s", sessionPrefix, i, p))
		}
		return strings.Join(c, "; ")
	}
	half := len(sealed) / 2
	c0, c1 := sealed[:half], sealed[half:]
	user := func(cookie string) func(t *testing.T) *Response {
		return func(t *testing.T) *Response { return s.send(t, http.MethodGet, "/auth/user", cookie, nil, "") }
	}
	unauth := advWant{status: http.StatusUnauthorized, reason: "unauthenticated", sessionEvent: "refused_invalid"}

	mustRun(t, "control_two_chunk_split_opens", func(t *testing.T) {
		if r := s.send(t, http.MethodGet, "/auth/user", chunk(c0, c1), nil, ""); r.Status != http.StatusOK {
			t.Fatalf("the session split in two chunks answers %d; the chunk cases would prove nothing", r.Status)
		}
	})

	t.Run("cookies", func(t *testing.T) {
		flip := func(s string, i int) string {
			const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			j := strings.IndexByte(alpha, s[i])
			if j < 0 {
				return s[:i] + "A" + s[i+1:]
			}
			return s[:i] + string(alpha[(j+1)%len(alpha)]) + s[i+1:]
		}
		for ci, c := range []string{c0, c1} {
			for _, pos := range []int{0, 7, len(c) / 4, len(c) / 2, 3 * len(c) / 4, len(c) - 2, len(c) - 1} {
				name := fmt.Sprintf("byte_changed_chunk%d_pos%d", ci, pos)
				parts := []string{c0, c1}
				parts[ci] = flip(c, pos)
				t.Run(name, func(t *testing.T) { s.refused(t, name, unauth, user(chunk(parts...))) })
			}
		}
		cases := []struct {
			name   string
			cookie string
		}{
			{"truncated_one_char", chunk(sealed[:len(sealed)-1])},
			{"truncated_tag", chunk(sealed[:len(sealed)-16])},
			{"truncated_to_header", chunk(sealed[:strings.IndexByte(sealed, '.')])},
			{"empty_second_chunk", chunk(c0, "")},
			{"chunks_reordered", chunk(c1, c0)},
			{"chunk_0_missing", sessionPrefix + ".1=" + c1},
			{"chunk_1_missing", chunk(c0)},
			{"chunk_duplicated", chunk(c0) + "; " + chunk(c0, c1)},
			{"chunk_duplicated_other_value", chunk(c0, c1) + "; " + sessionPrefix + ".1=" + c0},
			{"extra_chunk", chunk(c0, c1, "AAAA")},
			{"over_the_count_limit", chunk(sealed[:500], sealed[500:1000], sealed[1000:1500], sealed[1500:]) + "; " + sessionPrefix + ".4=AAAA"},
			{"non_canonical_index", sessionPrefix + ".00=" + c0 + "; " + sessionPrefix + ".1=" + c1},
			{"chunk_over_its_size", chunk(strings.Repeat("A", 3990))},
			{"quoted_value", sessionPrefix + `.0="` + sealed + `"`},
			{"twenty_kb_of_junk_chunks", chunk(strings.Repeat("A", 3900), strings.Repeat("B", 3900), strings.Repeat("C", 3900), strings.Repeat("D", 3900)) + "; " + strings.Repeat("x=1; ", 800)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { s.refused(t, tc.name, unauth, user(tc.cookie)) })
		}

		t.Run("login_cookie_as_session", func(t *testing.T) {
			b := newBrowser(t)
			b.StartLogin(t, bff.URL(), "/")
			s.keep(b)
			var login string
			for _, n := range b.CookieNames(bffHost) {
				if strings.HasPrefix(n, loginCookiePrefix) {
					login, _ = b.CookieValue(bffHost, n)
				}
			}
			if login == "" {
				t.Fatal("no login cookie")
			}
			s.refused(t, "login_cookie_as_session", unauth, user(chunk(login)))
		})
		t.Run("session_as_login_cookie", func(t *testing.T) {
			state := "adversary-chosen-state-0123456789abcdef"
			q := url.Values{"state": {state}, "code": {"x"}, "iss": {s.idp.Issuer()}}
			s.refused(t, "session_as_login_cookie", advWant{status: http.StatusBadRequest, reason: "invalid_state"}, func(t *testing.T) *Response {
				return s.send(t, http.MethodGet, "/auth/callback?"+q.Encode(), loginCookieName(state)+"="+sealed, nil, "")
			})
		})

		// Protected headers the BFF never writes, on the real cookie's
		// IV, ciphertext and tag.
		_, rest, _ := strings.Cut(sealed, ".") // ".iv.ct.tag" after the empty key
		var hdr struct {
			Kid string `json:"kid"`
		}
		// The real kid, or the cases below would test an empty one (refused
		// as unknown before the check each case names).
		protected, _, _ := strings.Cut(sealed, ".")
		raw, err := base64.RawURLEncoding.DecodeString(protected)
		if err != nil {
			t.Fatalf("the session cookie's protected header: %v", err)
		}
		if err := json.Unmarshal(raw, &hdr); err != nil || hdr.Kid == "" {
			t.Fatalf("the session cookie's protected header has no kid (%v): %q", err, raw)
		}
		kid := hdr.Kid
		pbes2 := `{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","p2c":2147483647,"p2s":"` + b64j("saltsaltsaltsalt") + `","kid":"` + kid + `","cty":"session"}`
		headers := []struct{ name, header, rest string }{
			{"unknown_kid", `{"alg":"dir","enc":"A256GCM","kid":"AAAAAAAAAAAA.1","cty":"session"}`, rest},
			{"malformed_kid_path", `{"alg":"dir","enc":"A256GCM","kid":"../../etc/passwd","cty":"session"}`, rest},
			{"malformed_kid_number", `{"alg":"dir","enc":"A256GCM","kid":7,"cty":"session"}`, rest},
			{"alg_none", `{"alg":"none","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, rest},
			{"alg_RSA-OAEP", `{"alg":"RSA-OAEP","enc":"A256GCM","kid":"` + kid + `","cty":"session"}`, "AAAA" + rest},
			{"alg_PBES2_huge_p2c", pbes2, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" + rest},
			{"enc_A128CBC-HS256", `{"alg":"dir","enc":"A128CBC-HS256","kid":"` + kid + `","cty":"session"}`, rest},
			{"zip_header_unauthenticated", `{"alg":"dir","enc":"A256GCM","zip":"DEF","kid":"` + kid + `","cty":"session"}`, rest},
			{"jku_header", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"session","jku":"http://evil.example/jwks"}`, rest},
			{"cty_login", `{"alg":"dir","enc":"A256GCM","kid":"` + kid + `","cty":"login"}`, rest},
		}
		for _, h := range headers {
			t.Run(h.name, func(t *testing.T) {
				start := time.Now()
				s.refused(t, h.name, unauth, user(chunk(b64j(h.header)+"."+h.rest)))
				if d := time.Since(start); d > time.Second {
					t.Errorf("refusing %s took %s (work done on an attacker's header?)", h.name, d)
				}
			})
		}

		// Authentic values sealed with the BFF's own master secret: the
		// refusal comes from the check named, not from a bad tag.
		secret, err := keys.ParseSecret(bff.opts.KeySecret)
		if err != nil {
			t.Fatal(err)
		}
		sealerAt := func(t *testing.T, at time.Time) (*bffcrypto.Sealer, keys.Key) {
			ring, err := keys.New(keys.Config{Secrets: [][]byte{secret}, Rotation: 24 * time.Hour, Window: time.Hour, Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			sl, err := bffcrypto.NewSealer(bffcrypto.Config{Ring: ring})
			if err != nil {
				t.Fatal(err)
			}
			return sl, ring.Sealing()
		}
		now := time.Now()
		payload := func(start, exp time.Time) []byte {
			b, _ := json.Marshal(map[string]any{
				"v": 1, "id": "forged-" + fmt.Sprint(start.UnixNano()), "sub": "mallory", "iss": s.idp.Issuer(),
				"st": start.Unix(), "exp": exp.Unix(), "at": "not-a-token", "ate": now.Add(time.Hour).Unix(),
			})
			return b
		}
		joseSeal := func(t *testing.T, key keys.Key, opts *jose.EncrypterOptions, body []byte) string {
			enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key.Secret, KeyID: key.ID}, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := enc.Encrypt(body)
			if err != nil {
				t.Fatal(err)
			}
			out, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		t.Run("epoch_outside_the_window_past", func(t *testing.T) {
			sl, _ := sealerAt(t, now.Add(-48*time.Hour))
			v, err := sl.Seal(bffcrypto.Session, payload(now.Add(-10*time.Minute), now.Add(time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			s.refused(t, "epoch_outside_the_window_past", unauth, user(chunk(v)))
		})
		t.Run("epoch_outside_the_window_future", func(t *testing.T) {
			sl, _ := sealerAt(t, now.Add(48*time.Hour))
			v, err := sl.Seal(bffcrypto.Session, payload(now.Add(-10*time.Minute), now.Add(time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			s.refused(t, "epoch_outside_the_window_future", unauth, user(chunk(v)))
		})
		t.Run("past_absolute_lifetime", func(t *testing.T) {
			sl, _ := sealerAt(t, now)
			v, err := sl.Seal(bffcrypto.Session, payload(now.Add(-2*time.Hour), now.Add(-time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			s.refused(t, "past_absolute_lifetime", advWant{status: http.StatusUnauthorized, reason: "unauthenticated", sessionEvent: "refused_expired"}, user(chunk(v)))
		})
		t.Run("authentic_zip_header", func(t *testing.T) {
			_, key := sealerAt(t, now)
			opts := (&jose.EncrypterOptions{Compression: jose.DEFLATE}).WithContentType("session")
			v := joseSeal(t, key, opts, append([]byte{0}, payload(now, now.Add(time.Hour))...))
			s.refused(t, "authentic_zip_header", unauth, user(chunk(v)))
		})
		t.Run("authentic_deflate_bomb", func(t *testing.T) {
			_, key := sealerAt(t, now)
			var buf bytes.Buffer
			buf.WriteByte(1) // the BFF's "deflate" body format
			w, _ := flate.NewWriter(&buf, flate.BestCompression)
			w.Write(make([]byte, 8<<20)) // 8 MiB of zeros, far over the 64 KiB plaintext limit
			w.Close()
			v := joseSeal(t, key, (&jose.EncrypterOptions{}).WithContentType("session"), buf.Bytes())
			start := time.Now()
			s.refused(t, "authentic_deflate_bomb", unauth, user(chunk(v[:min(len(v), 3900)], v[min(len(v), 3900):])))
			if d := time.Since(start); d > time.Second {
				t.Errorf("the bomb took %s to refuse", d)
			}
		})

		t.Run("cookie_header_far_over_the_budget", func(t *testing.T) {
			// Go's MaxHeaderBytes (32 KiB here) answers before the BFF does:
			// no JSON, no log line, no metric; but a 4xx, quickly, and
			// nothing else happens.
			before := s.state(t)
			big := chunk(c0, c1) + "; " + "pad=" + strings.Repeat("A", 64<<10)
			status, took := rawExchange(t, addr, "GET /auth/user HTTP/1.1\r\nHost: localhost\r\nCookie: "+big+"\r\n\r\n", 10*time.Second)
			if status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("a 64 KiB Cookie header answers %d, want 431", status)
			}
			if took > 2*time.Second {
				t.Errorf("the answer took %s", took)
			}
			s.checkNothingChanged(t, before, s.metrics(t), false)
			s.checkVictim(t)
			s.record(advResult{name: "cookie_header_64KiB (Go MaxHeaderBytes)", status: status, reason: "-", metric: "none (answered by net/http)"})
		})
	})

	t.Run("sign_in", func(t *testing.T) {
		invalidState := advWant{status: http.StatusBadRequest, reason: "invalid_state"}
		iss := s.idp.Issuer()
		t.Run("missing_state", func(t *testing.T) {
			s.refused(t, "callback_missing_state", invalidState, func(t *testing.T) *Response {
				return s.send(t, http.MethodGet, "/auth/callback?code=x&iss="+url.QueryEscape(iss), "", nil, "")
			})
		})
		t.Run("oversized_state", func(t *testing.T) {
			s.refused(t, "callback_oversized_state", invalidState, func(t *testing.T) *Response {
				return s.send(t, http.MethodGet, "/auth/callback?code=x&state="+strings.Repeat("s", 600), "", nil, "")
			})
		})

		// A sign-in in progress: its login cookie and state.
		b := newBrowser(t)
		authURL := b.StartLogin(t, bff.URL(), "/")
		s.keep(b)
		state := authURL.Query().Get("state")
		loginCookie := s.cookieHeader(b)
		if state == "" || !strings.Contains(loginCookie, loginCookieName(state)+"=") {
			t.Fatalf("no state or login cookie for the flow")
		}
		t.Run("forged_state", func(t *testing.T) {
			q := url.Values{"state": {"forged-" + state[:20]}, "code": {"x"}, "iss": {iss}}
			s.refused(t, "callback_forged_state", invalidState, func(t *testing.T) *Response {
				return s.send(t, http.MethodGet, "/auth/callback?"+q.Encode(), loginCookie, nil, "")
			})
		})
		t.Run("provider_error", func(t *testing.T) {
			q := url.Values{"state": {state}, "error": {"access_denied"}, "iss": {iss}}
			s.refused(t, "callback_provider_error_access_denied", advWant{status: http.StatusBadRequest, reason: "access_denied"}, func(t *testing.T) *Response {
				return s.send(t, http.MethodGet, "/auth/callback?"+q.Encode(), loginCookie, nil, "")
			})
		})
		t.Run("provider_error_code_is_not_a_metric_label", func(t *testing.T) {
			// Codes outside RFC 6749's set are reported as
			// "authorization_error": no label per attacker-chosen code.
			for i := range 3 {
				code := fmt.Sprintf("adv_label_%d_%d", time.Now().UnixNano()%1e6, i)
				q := url.Values{"state": {state}, "error": {code}, "iss": {iss}}
				s.send(t, http.MethodGet, "/auth/callback?"+q.Encode(), loginCookie, nil, "")
				if m := s.metrics(t); strings.Contains(m, code) {
					t.Errorf("bff_refused_total has a series labelled with the attacker's code %q", code)
				}
			}
		})

		t.Run("callback_replay", func(t *testing.T) {
			rb := newBrowser(t)
			start := rb.StartLogin(t, bff.URL(), "/")
			isCallback := func(u *url.URL) bool { return u.Path == "/auth/callback" && strings.HasSuffix(bff.URL(), u.Host) }
			cb := rb.Authorize(t, start.String(), "replayed", "pw", isCallback)
			withCookie := s.cookieHeader(rb)
			if r := rb.navigate(t, http.MethodGet, cb, nil, "cross-site", cb); r.Status != http.StatusFound {
				t.Fatalf("first callback: %d", r.Status)
			}
			issued := s.idp.Issued(t)
			legitRT := issued[len(issued)-1].RefreshToken
			s.keep(rb)
			cbPath := cb.RequestURI()
			t.Run("without_login_cookie", func(t *testing.T) {
				s.refused(t, "callback_replayed_without_login_cookie", invalidState, func(t *testing.T) *Response {
					return s.send(t, http.MethodGet, cbPath, "", nil, "")
				})
			})
			t.Run("with_login_cookie", func(t *testing.T) {
				s.refused(t, "callback_replayed_with_login_cookie", invalidState, func(t *testing.T) *Response {
					return s.send(t, http.MethodGet, cbPath, withCookie, nil, "")
				})
			})
			t.Run("replay_does_not_reach_the_provider", func(t *testing.T) {
				before := s.idp.Stats(t)
				s.send(t, http.MethodGet, cbPath, withCookie, nil, "")
				if after := s.idp.Stats(t); sumCounts(after.TokenCalls) != sumCounts(before.TokenCalls) {
					t.Errorf("the replayed callback made %d token-endpoint call(s)", sumCounts(after.TokenCalls)-sumCounts(before.TokenCalls))
				}
				// The provider treats a reused code as an attack and revokes
				// the grant issued for it: the legit sign-in's refresh token.
				if !s.idp.Introspect(t, legitRT) {
					t.Errorf("after the replay the legit sign-in's refresh token is no longer active at the provider")
				}
			})
			t.Run("legit_session_survives_the_replay", func(t *testing.T) {
				r := rb.Get(t, bff.URL()+"/auth/user", nil)
				if r.Status != http.StatusOK {
					t.Errorf("the replayed sign-in's own session answers %d", r.Status)
				}
			})
		})

		t.Run("return_to", func(t *testing.T) {
			bad := []struct{ name, value string }{
				{"scheme_relative", "//evil.com"},
				{"slash_backslash", `/\evil.com`},
				{"encoded_slashes", "/%2F%2Fevil.com"},
				{"encoded_slashes_lower", "/%2f%2fevil.com"},
				{"absolute_https", "https://evil.com"},
				{"javascript", "javascript:alert(1)"},
				{"crlf", "/\r\nSet-Cookie:x=1"},
				{"raw_tab", "/\t/evil.com"},
				{"raw_cr", "/\r/evil.com"},
				{"raw_lf", "/\n/evil.com"},
				{"double_backslash", `\\evil.com`},
				{"fullwidth_solidus", "/\uff0fevil.com"},
				{"division_slash", "/\u2215evil.com"},
				{"encoded_backslash", "/%5Cevil.com"},
				{"triple_slash", "///evil.com"},
				{"relative", "evil.com"},
				{"too_long", "/" + strings.Repeat("a", 2000)},
			}
			for _, tc := range bad {
				t.Run(tc.name, func(t *testing.T) {
					s.refused(t, "returnTo_"+tc.name, advWant{status: http.StatusBadRequest, reason: "invalid_request"}, func(t *testing.T) *Response {
						return s.send(t, http.MethodGet, "/auth/login?returnTo="+url.QueryEscape(tc.value), "", map[string]string{"Sec-Fetch-Mode": "navigate"}, "")
					})
				})
			}
			// Accepted spellings that only look odd: a browser resolves each
			// to a path on the app's own origin.
			for _, v := range []string{"/%0d%0aSet-Cookie:x=1", "/%EF%BC%8Fevil.com", "/.//evil.com", "/@evil.com", "/%09/evil.com"} {
				r := s.send(t, http.MethodGet, "/auth/login?returnTo="+url.QueryEscape(v), "", map[string]string{"Sec-Fetch-Mode": "navigate"}, "")
				if r.Status != http.StatusFound {
					t.Errorf("returnTo %q: %d", v, r.Status)
					continue
				}
				ref, err := url.Parse(v)
				if err != nil {
					t.Errorf("returnTo %q accepted but unparsable", v)
					continue
				}
				base, _ := url.Parse(bff.URL() + "/app")
				if got := base.ResolveReference(ref); got.Host != base.Host || got.Scheme != base.Scheme {
					t.Errorf("returnTo %q accepted and resolves to %s", v, got)
				}
			}
			// One of them through the whole sign-in: the Location is the
			// literal path, no header is injected.
			lb := newBrowser(t)
			final := lb.Login(t, bff.URL(), "/%0d%0aSet-Cookie:x=1", "crlf", "pw")
			s.keep(lb)
			if u, _ := url.Parse(final); u == nil || u.Host != "localhost"+strings.TrimPrefix(bff.URL(), "http://localhost") || u.EscapedPath() != "/%0d%0aSet-Cookie:x=1" {
				t.Errorf("sign-in with an encoded CRLF returnTo landed on %q", final)
			}
			if slices.Contains(lb.CookieNames(bffHost), "x") {
				t.Errorf("a cookie was injected through returnTo")
			}
		})

		t.Run("login_flood", func(t *testing.T) {
			before := s.state(t)
			fb := newBrowser(t)
			for range 50 {
				r := fb.do(t, http.MethodGet, bff.URL()+"/auth/login?returnTo=/", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}, nil)
				if r.Status != http.StatusFound {
					t.Fatalf("login: %d", r.Status)
				}
			}
			n := 0
			for _, c := range fb.CookieNames(bffHost) {
				if strings.HasPrefix(c, loginCookiePrefix) {
					n++
				}
			}
			if n > 4 || n == 0 {
				t.Errorf("after 50 sign-in starts the browser holds %d login cookies, want 1..4", n)
			}
			s.keep(fb)
			after := s.metrics(t)
			s.checkNothingChanged(t, before, after, false)
			s.checkVictim(t)
			s.checkLogs(t, before.logOff)
			s.record(advResult{name: "login_flood_50", status: http.StatusFound, reason: "-", metric: fmt.Sprintf("%d login cookies kept", n)})
		})
	})

	t.Run("requests", func(t *testing.T) {
		forbidden := advWant{status: http.StatusForbidden, reason: "forbidden"}
		cases := []struct {
			name, method, path string
			headers            map[string]string
		}{
			// A same-origin GET the browser marks with Fetch Metadata needs no
			// X-CSRF (EventSource cannot send it); everything else does.
			{"no_X-CSRF", http.MethodPost, "/api/echo", nil},
			{"X-CSRF_wrong_value", http.MethodPost, "/api/echo", map[string]string{"X-CSRF": "0"}},
			{"GET_without_fetch_metadata_or_X-CSRF", http.MethodGet, "/api/whoami",
				map[string]string{"Sec-Fetch-Site": "", "Sec-Fetch-Mode": "", "Sec-Fetch-Dest": ""}},
			{"GET_same-site_without_X-CSRF", http.MethodGet, "/api/whoami", map[string]string{"Sec-Fetch-Site": "same-site"}},
			{"navigation_to_API", http.MethodGet, "/api/whoami",
				map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "X-CSRF": "1"}},
			{"script_load_of_API", http.MethodGet, "/api/whoami", map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"}},
			{"WebSocket_foreign_Origin", http.MethodGet, "/api/whoami",
				map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
					"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "http://evil.example"}},
			{"Sec-Fetch-Site_cross-site", http.MethodGet, "/api/whoami", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "cross-site"}},
			{"foreign_Origin", http.MethodPost, "/api/echo", map[string]string{"X-CSRF": "1", "Origin": "http://evil.example"}},
			{"Origin_null", http.MethodPost, "/api/echo", map[string]string{"X-CSRF": "1", "Origin": "null"}},
			{"Origin_other_port", http.MethodPost, "/api/echo", map[string]string{"X-CSRF": "1", "Origin": "http://localhost:1"}},
			{"user_cross-site", http.MethodGet, "/auth/user", map[string]string{"Sec-Fetch-Site": "cross-site"}},
			{"logout_cross-site", http.MethodPost, "/auth/logout", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "cross-site"}},
			{"logout_foreign_Origin", http.MethodPost, "/auth/logout", map[string]string{"X-CSRF": "1", "Origin": "http://evil.example"}},
			{"logout_without_X-CSRF", http.MethodPost, "/auth/logout", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s.refused(t, tc.name, forbidden, func(t *testing.T) *Response {
					return s.send(t, tc.method, tc.path, atkCookie, tc.headers, "")
				})
			})
		}
		t.Run("spoofed_forwarding_headers_from_untrusted_peer", func(t *testing.T) {
			spoof := map[string]string{
				"X-CSRF": "1", "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "evil.example",
				"X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/evil", "X-Real-Ip": "203.0.113.8",
				"Forwarded": "for=203.0.113.9;host=evil.example", "True-Client-Ip": "203.0.113.10",
			}
			r := s.send(t, http.MethodGet, "/api/echo", atkCookie, spoof, "")
			if r.Status != http.StatusOK {
				t.Fatalf("status %d", r.Status)
			}
			rec, _ := s.tap.last()
			want := map[string][]string{
				"X-Forwarded-For":   {"127.0.0.1"},
				"X-Forwarded-Host":  {strings.TrimPrefix(bff.URL(), "http://")},
				"X-Forwarded-Proto": {"http"},
			}
			for k, v := range rec.Forwarding {
				if !slices.Equal(v, want[k]) {
					t.Errorf("upstream got %s: %q, want %q", k, v, want[k])
				}
			}
			for k := range want {
				if _, ok := rec.Forwarding[k]; !ok {
					t.Errorf("upstream got no %s", k)
				}
			}
			last, _ := s.up.Last()
			for _, n := range []string{"X-Forwarded-Prefix", "X-Real-Ip", "Forwarded", "True-Client-Ip"} {
				if containsName(last.HeaderNames, n) {
					t.Errorf("the harness upstream received %s", n)
				}
			}
			s.record(advResult{name: "spoofed_X-Forwarded-*/X-Real-Ip/Forwarded", status: r.Status, reason: "-", metric: "replaced by the BFF's own values"})
		})
		t.Run("spoofed_Host", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, bff.URL()+"/auth/login?returnTo=/", nil)
			req.Host = "evil.example"
			hc := &http.Client{Transport: &http.Transport{DialContext: loopbackDialer()}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("redirect_uri") != bff.URL()+"/auth/callback" {
				t.Errorf("login with Host: evil.example: %d, redirect_uri %q", resp.StatusCode, loc.Query().Get("redirect_uri"))
			}
			status, _ := rawExchange(t, addr, "GET /api/echo HTTP/1.1\r\nHost: evil.example\r\nX-CSRF: 1\r\nCookie: "+atkCookie+"\r\n\r\n", 10*time.Second)
			rec, _ := s.tap.last()
			xfh := rec.Forwarding["X-Forwarded-Host"]
			if status != http.StatusOK || rec.Host != strings.TrimPrefix(s.tap.URL(), "http://") || len(xfh) != 1 || xfh[0] != strings.TrimPrefix(bff.URL(), "http://") {
				t.Errorf("proxied with Host: evil.example: %d, upstream Host %q, X-Forwarded-Host %q", status, rec.Host, xfh)
			}
			s.record(advResult{name: "spoofed_Host", status: resp.StatusCode, reason: "-", metric: "redirect_uri and upstream Host unaffected"})
		})
		t.Run("inbound_Authorization_with_session", func(t *testing.T) {
			r := s.send(t, http.MethodGet, "/api/whoami", atkCookie, map[string]string{"X-CSRF": "1", "Authorization": "Bearer attacker-chosen"}, "")
			last, _ := s.up.Last()
			if r.Status != http.StatusOK || last.AuthHeaders != 1 || !last.AuthOK || last.Sub != "mallory" {
				t.Errorf("status %d; upstream saw %d Authorization header(s), ok %v, sub %q", r.Status, last.AuthHeaders, last.AuthOK, last.Sub)
			}
			s.record(advResult{name: "inbound_Authorization_with_session", status: r.Status, reason: "-", metric: "replaced by the session's bearer"})
		})
		t.Run("inbound_Authorization_without_session", func(t *testing.T) {
			tokens := s.idp.Issued(t)
			stolen := tokens[0].AccessToken // the victim's: a real, valid access token
			s.mu.Lock()
			s.secrets["stolen access token"] = stolen
			s.mu.Unlock()
			s.refused(t, "inbound_Authorization_without_session", advWant{status: http.StatusUnauthorized, reason: "unauthenticated"}, func(t *testing.T) *Response {
				return s.send(t, http.MethodGet, "/api/whoami", "", map[string]string{"X-CSRF": "1", "Authorization": "Bearer " + stolen}, "")
			})
		})
		for _, tc := range []struct{ name, path string }{
			{"dot_dot_encoded_slash", "/api/..%2fauth/user"},
			{"encoded_dot_dot", "/api/%2e%2e/admin"},
			{"dot_dot_matrix", "/api/x/..;/admin"},
			{"encoded_backslash", "/api/x%5c..%5cadmin"},
			{"single_dot", "/api/./whoami"},
		} {
			t.Run("path_"+tc.name, func(t *testing.T) {
				s.refused(t, "path_"+tc.name, advWant{status: http.StatusBadRequest, reason: "invalid_request"}, func(t *testing.T) *Response {
					return s.send(t, http.MethodGet, tc.path, atkCookie, map[string]string{"X-CSRF": "1"}, "")
				})
			})
		}
		for _, tc := range []struct{ name, method, path string }{
			{"TRACE_auth_user", "TRACE", "/auth/user"},
			{"GET_logout", http.MethodGet, "/auth/logout"},
			{"PUT_logout", http.MethodPut, "/auth/logout"},
			{"GET_backchannel", http.MethodGet, "/auth/backchannel-logout"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s.refused(t, tc.name, advWant{status: http.StatusMethodNotAllowed, reason: "method_not_allowed"}, func(t *testing.T) *Response {
					return s.send(t, tc.method, tc.path, atkCookie, map[string]string{"X-CSRF": "1"}, "")
				})
			})
		}
		t.Run("internal_refresh_without_cluster", func(t *testing.T) {
			s.refused(t, "POST_/_bff/refresh_forged", advWant{status: http.StatusNotFound, reason: "not_found"}, func(t *testing.T) *Response {
				return s.send(t, http.MethodPost, "/_bff/refresh", atkCookie, map[string]string{"Content-Type": "application/jose"}, "eyJhbGciOiJkaXIifQ..x.y.z")
			})
		})
		t.Run("unknown_auth_path", func(t *testing.T) {
			s.refused(t, "GET_/auth/admin", advWant{status: http.StatusNotFound, reason: "not_found"}, func(t *testing.T) *Response {
				return s.send(t, http.MethodGet, "/auth/admin", atkCookie, nil, "")
			})
		})
		t.Run("TRACE_through_the_proxy", func(t *testing.T) {
			// Refused by the proxy (proxy.ErrMethod) before forwarding: a
			// TRACE echo would reflect the user's bearer.
			s.refused(t, "TRACE_/api/echo (refused)", advWant{status: http.StatusMethodNotAllowed, reason: "method_not_allowed"}, func(t *testing.T) *Response {
				return s.send(t, http.MethodTrace, "/api/echo", atkCookie, map[string]string{"X-CSRF": "1"}, "")
			})
		})

		raw := []struct {
			name, req string
			want      int
		}{
			{"two_content_lengths", "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nX-CSRF: 1\r\nCookie: " + atkCookie + "\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", http.StatusBadRequest},
			// net/http answers 501 Not Implemented to a transfer coding it
			// does not know: the one documented 5xx here.
			{"transfer_encoding_identity_chunked", "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nX-CSRF: 1\r\nCookie: " + atkCookie + "\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", http.StatusNotImplemented},
			{"space_before_colon", "GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nX-CSRF : 1\r\nCookie: " + atkCookie + "\r\n\r\n", http.StatusBadRequest},
			// An obs-fold continues the value: "1 continued" is not "1".
			{"obs_fold", "GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nX-CSRF: 1\r\n continued\r\nCookie: " + atkCookie + "\r\n\r\n", http.StatusForbidden},
		}
		for _, tc := range raw {
			t.Run("raw_"+tc.name, func(t *testing.T) {
				before := s.state(t)
				status, _ := rawExchange(t, addr, tc.req, 10*time.Second)
				if status != tc.want {
					t.Errorf("answered %d, want %d", status, tc.want)
				}
				s.checkNothingChanged(t, before, s.metrics(t), false)
				s.checkVictim(t)
				note := "none (answered by net/http)"
				if status == http.StatusForbidden {
					note = "refused by the BFF: the folded X-CSRF is not \"1\""
				}
				s.record(advResult{name: "raw_" + tc.name, status: status, reason: "-", metric: note})
			})
		}
		t.Run("raw_content_length_and_transfer_encoding", func(t *testing.T) {
			// net/http does not answer 400 here: Transfer-Encoding wins
			// and Content-Length is dropped (RFC 9112 section 6.3 allows
			// it), so the BFF and its upstream see one consistently framed
			// request. RFC 9112 section 6.1 then requires closing the
			// connection: the bytes after the chunked body (which a front
			// proxy framing by Content-Length would have read as part of
			// the body) are never parsed as a request.
			before := s.state(t)
			req := "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nX-CSRF: 1\r\nCookie: " + atkCookie +
				"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
				"GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nX-CSRF: 1\r\nCookie: " + atkCookie + "\r\n\r\n"
			st := rawExchangeN(t, addr, req, 2, 10*time.Second)
			if st[0] != http.StatusOK || st[1] != 0 {
				t.Errorf("answers %v, want [200 0]: the chunked request proxied, then the connection closed", st)
			}
			if n := s.tap.count() - before.tap; n != 1 {
				t.Errorf("the upstream saw %d request(s), want 1", n)
			}
			// Positive control: the same pipelined pair with honest framing
			// gets both answers on the one connection.
			honest := "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nX-CSRF: 1\r\nCookie: " + atkCookie +
				"\r\nContent-Length: 0\r\n\r\n" +
				"GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nX-CSRF: 1\r\nCookie: " + atkCookie + "\r\n\r\n"
			if st := rawExchangeN(t, addr, honest, 2, 10*time.Second); st[0] != http.StatusOK || st[1] != http.StatusOK {
				t.Errorf("control: honest pipelined pair answered %v, want [200 200]", st)
			}
			s.record(advResult{name: "raw_content_length_and_transfer_encoding", status: st[0], reason: "-", metric: "TE wins, CL dropped; connection closed after the answer"})
		})
	})

	t.Run("logout", func(t *testing.T) {
		invalidToken := advWant{status: http.StatusBadRequest, reason: "invalid_request"}
		// The provider's key id, so the forged tokens name it.
		resp, err := http.Get(s.idp.Issuer() + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var disc struct {
			JWKS string `json:"jwks_uri"`
		}
		json.NewDecoder(resp.Body).Decode(&disc)
		resp.Body.Close()
		resp, err = http.Get(disc.JWKS)
		if err != nil {
			t.Fatal(err)
		}
		var set jose.JSONWebKeySet
		json.NewDecoder(resp.Body).Decode(&set)
		resp.Body.Close()
		if len(set.Keys) == 0 {
			t.Fatal("provider JWKS is empty")
		}
		kid := set.Keys[0].KeyID
		foreign, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		claims := func(edit func(map[string]any)) map[string]any {
			m := map[string]any{
				"iss": s.idp.Issuer(), "aud": s.idp.ClientID(), "iat": time.Now().Unix(), "jti": fmt.Sprintf("adv-%d", time.Now().UnixNano()),
				"sub": "victim", "sid": "adv-sid", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
			}
			if edit != nil {
				edit(m)
			}
			return m
		}
		signWith := func(alg jose.SignatureAlgorithm, key any, m map[string]any) string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}},
				(&jose.SignerOptions{}).WithType("logout+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(m)
			obj, err := signer.Sign(b)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := obj.CompactSerialize()
			return out
		}
		rs := func(edit func(map[string]any)) string { return signWith(jose.RS256, foreign, claims(edit)) }
		tokens := []struct{ name, token string }{
			{"well_formed_foreign_key", rs(nil)},
			{"no_jti", rs(func(m map[string]any) { delete(m, "jti") })},
			{"has_nonce", rs(func(m map[string]any) { m["nonce"] = "n" })},
			{"wrong_iss", rs(func(m map[string]any) { m["iss"] = "http://evil.example" })},
			{"wrong_aud", rs(func(m map[string]any) { m["aud"] = "other" })},
			{"no_events", rs(func(m map[string]any) { delete(m, "events") })},
			{"iat_too_old", rs(func(m map[string]any) { m["iat"] = time.Now().Add(-time.Hour).Unix() })},
			{"no_sub_no_sid", rs(func(m map[string]any) { delete(m, "sub"); delete(m, "sid") })},
			{"HS256_with_client_secret", signWith(jose.HS256, []byte(s.idp.ClientSecret()), claims(nil))},
			{"alg_none", b64j(`{"alg":"none","typ":"logout+jwt"}`) + "." + b64j(`{"iss":"`+s.idp.Issuer()+`","aud":"bff","iat":1,"jti":"j","sid":"adv-sid","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`) + "."},
			{"typ_access_token", b64j(`{"alg":"RS256","typ":"at+jwt","kid":"`+kid+`"}`) + ".e30.AAAA"},
			{"not_a_jwt", "garbage"},
		}
		for _, tc := range tokens {
			t.Run("backchannel_"+tc.name, func(t *testing.T) {
				s.refused(t, "backchannel_"+tc.name, invalidToken, func(t *testing.T) *Response {
					return s.send(t, http.MethodPost, "/auth/backchannel-logout", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": ""},
						url.Values{"logout_token": {tc.token}}.Encode())
				})
			})
		}
		bodies := []struct{ name, body string }{
			{"empty_form", ""},
			{"two_tokens", url.Values{"logout_token": {rs(nil), rs(nil)}}.Encode()},
			{"body_over_32KiB", "logout_token=" + strings.Repeat("A", 40<<10)},
		}
		for _, tc := range bodies {
			t.Run("backchannel_"+tc.name, func(t *testing.T) {
				s.refused(t, "backchannel_"+tc.name, invalidToken, func(t *testing.T) *Response {
					return s.send(t, http.MethodPost, "/auth/backchannel-logout", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": ""}, tc.body)
				})
			})
		}

		t.Run("backchannel_replay", func(t *testing.T) {
			carol := s.login(t, "carol")
			before := s.metrics(t)
			page := carol.Get(t, s.idp.EndSessionURL(), map[string]string{"Accept": "text/html"})
			f, ok := parseForm(page.Body)
			if page.Status != http.StatusOK || !ok {
				t.Fatalf("provider end-session page: %d", page.Status)
			}
			action, _ := page.URL.Parse(f.action)
			f.fields.Set("logout", "yes")
			carol.Do(t, http.MethodPost, action.String(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, f.fields.Encode())
			var bodies []string
			var statuses []int
			for deadline := time.Now().Add(5 * time.Second); len(bodies) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				bodies, statuses = s.capture.captured()
			}
			if len(bodies) != 1 || statuses[0] != http.StatusOK {
				t.Fatalf("captured %d back-channel POST(s), BFF answered %v; want one, 200", len(bodies), statuses)
			}
			if lt, _ := url.ParseQuery(bodies[0]); lt.Get("logout_token") != "" {
				s.mu.Lock()
				s.secrets["captured logout token"] = lt.Get("logout_token")
				s.mu.Unlock()
			}
			mid := s.metrics(t)
			if d := metric(mid, "bff_revocation_list_entries", nil) - metric(before, "bff_revocation_list_entries", nil); d != 1 {
				t.Errorf("the provider's logout token added %v revocation entries, want 1", d)
			}
			if r := carol.Get(t, bff.URL()+"/auth/user", nil); r.Status != http.StatusUnauthorized {
				t.Errorf("carol's session after the provider's back-channel logout: %d, want 401", r.Status)
			}
			// The provider's real token, captured on its way in: it can
			// only be refused as a replay.
			replayed := invalidToken
			replayed.logErr = "replayed jti"
			s.refused(t, "backchannel_replayed_provider_token", replayed, func(t *testing.T) *Response {
				return s.send(t, http.MethodPost, "/auth/backchannel-logout", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": ""}, bodies[0])
			})
		})
	})

	t.Run("slow_headers", func(t *testing.T) {
		select {
		case msg := <-slow:
			if !strings.HasPrefix(msg, "ok") {
				t.Errorf("slow headers: %s", msg)
			}
			s.record(advResult{name: "slow_headers (ReadHeaderTimeout 10s)", status: 0, reason: "-", metric: msg})
		case <-time.After(25 * time.Second):
			t.Errorf("slow-header probe never finished")
		}
	})

	t.Run("logs_hold_no_secrets", func(t *testing.T) {
		s.checkLogs(t, 0)
		for _, want := range []string{`"msg":"request refused"`} {
			if !strings.Contains(bff.Logs(), want) {
				t.Errorf("logs lack %s", want)
			}
		}
	})
	s.table(t, "main")
}

// advAging lets real cookies age out with keys.rotation 1s and a 6s session
// lifetime (Start and Expiry are whole seconds): a cookie re-sealed every second outlives the key window of the
// first one, then its own absolute lifetime.
func advAging(t *testing.T) {
	const lifetime = 6 * time.Second
	s := startAdvStack(t, lifetime, "BFF_KEYS_ROTATION=1s")
	b := s.login(t, "aging")
	signedIn := time.Now()
	first := s.cookieHeader(b)
	for i := 1; i <= 3; i++ {
		time.Sleep(time.Until(signedIn.Add(time.Duration(i) * 1100 * time.Millisecond)))
		if r := b.Get(t, s.bff.URL()+"/auth/user", nil); r.Status != http.StatusOK {
			t.Fatalf("/auth/user at %s: %d", time.Since(signedIn).Round(time.Millisecond), r.Status)
		}
		s.keep(b)
	}
	latest := s.cookieHeader(b)
	if latest == first {
		t.Fatal("the session was never re-sealed under a newer epoch")
	}
	time.Sleep(time.Until(signedIn.Add(lifetime + 1500*time.Millisecond)))
	t.Run("session_past_its_absolute_lifetime", func(t *testing.T) {
		s.refused(t, "aging_latest_cookie_past_lifetime", advWant{status: http.StatusUnauthorized, reason: "unauthenticated", sessionEvent: "refused_expired"}, func(t *testing.T) *Response {
			return s.send(t, http.MethodGet, "/auth/user", latest, nil, "")
		})
	})
	t.Run("epoch_outside_the_window", func(t *testing.T) {
		s.refused(t, "aging_first_cookie_epoch_out_of_window", advWant{status: http.StatusUnauthorized, reason: "unauthenticated", sessionEvent: "refused_invalid"}, func(t *testing.T) *Response {
			return s.send(t, http.MethodGet, "/auth/user", first, nil, "")
		})
	})
	s.table(t, "aging")
}
