// Command storm is the load generator of bench/cluster.sh: a population of
// real sessions, each with a cookie jar of its own, sent round-robin to one
// URL by -c concurrent workers for -d.
//
// The sessions come from -cookies (one Cookie header per line) or storm
// signs them in itself: -login names the BFF's sign-in URL and -n how many,
// each through the provider's login and consent forms like bench/cmd/login
// (package bench/internal/signin), -login-parallel at a time; -save writes
// their Cookie headers and -times when each was signed in.
//
// Every request is the same-origin fetch() GET of bench/load.lua (Accept:
// application/json, X-CSRF: 1, Sec-Fetch-Site: same-origin, Sec-Fetch-Mode:
// cors, Sec-Fetch-Dest: empty) with the session's current cookies. Unlike
// wrk, each session keeps a jar as a browser would: every Set-Cookie in an
// answer replaces that cookie in the session's jar (a refreshed session's
// new cookie is sent from then on), a deleting one (Max-Age <= 0, or
// Expires in the past) removes it. An answer that renews the cookies the
// request was sent with is a renewal of the session; one that arrives after
// another answer had already renewed them (two requests of one session in
// flight across a refresh) is a late update, applied too, as a browser
// would.
//
// It ends with one line on stdout:
//
//	RESULT requests=N duration_us=N non2xx=N errors=N p50_us=N p99_us=N cookie_updates=N sessions=N renewed0=N renewed1=N renewed2plus=N late_updates=N ended=N renew_first_ms=N renew_last_ms=N client_cpu_us=N
//
// (renewedK: sessions renewed K times; ended: sessions whose cookies an
// answer deleted, which is not a renewal; renew_*_ms: the first and last
// renewal after the start) and exits 1 if any answer was not 2xx, any
// request failed, a session ended, or (with -expect-renewals) a session was
// not renewed exactly that often.
//
// Refresh window: with -ttl (the provider's access-token lifetime),
// -refresh-margin (the BFF's session.refresh_margin) and the sign-in times,
// storm knows when each session's access token enters the refresh margin,
// to within the provider's whole-second expiry. -plan prints when a load of
// -d must start so that every session's token enters the margin during the
// load, at least -guard before its end, and the token that replaces it does
// not, at least -guard after its end: each session is then due exactly one
// refresh. A load with -ttl checks that it starts inside that window.
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bff-project/bff/bench/internal/signin"
)

func main() {
	target := flag.String("url", "", "GET this URL under load (none: sign in, or plan, only)")
	cookiesFile := flag.String("cookies", "", "file of Cookie headers, one session a line")
	login := flag.String("login", "", "sign-in URL on the BFF, e.g. http://localhost:8080/auth/login?returnTo=/: sign in -n sessions")
	n := flag.Int("n", 0, "sessions to sign in with -login")
	par := flag.Int("login-parallel", 4, "sign-ins at a time")
	callback := flag.String("callback-path", "/auth/callback", "the BFF's callback path")
	user := flag.String("user", "bench-user", "login for the provider's form: session i signs in as USER-i")
	pass := flag.String("password", "bench-password", "password for the provider's form")
	prefix := flag.String("cookie-prefix", "__Host-Http-bff", "the session's cookies start with this: -login keeps only them; an answer deleting all of them ended the session")
	save := flag.String("save", "", "with -login: write the sessions' Cookie headers here, one a line (mode 0600)")
	timesFile := flag.String("times", "", "with -login: write each sign-in's times here; with -cookies: read them (for -ttl)")
	conns := flag.Int("c", 32, "concurrent requests (workers, and idle connections kept)")
	dur := flag.Duration("d", 10*time.Second, "load duration")
	ttl := flag.Duration("ttl", 0, "the provider's access-token lifetime: check the refresh window (needs sign-in times)")
	margin := flag.Duration("refresh-margin", 0, "the BFF's session.refresh_margin (with -ttl)")
	guard := flag.Duration("guard", 2*time.Second, "with -ttl: room at each end of the refresh window")
	plan := flag.Bool("plan", false, "with -ttl: print when a load of -d must start (a PLAN line) and exit")
	expect := flag.Int("expect-renewals", -1, "fail unless every session was renewed exactly this often (-1: no check)")
	flag.Parse()

	if err := run(config{
		target: *target, cookiesFile: *cookiesFile, login: *login, n: *n, par: *par, callback: *callback,
		user: *user, pass: *pass, prefix: *prefix, save: *save, timesFile: *timesFile, conns: *conns,
		dur: *dur, ttl: *ttl, margin: *margin, guard: *guard, plan: *plan, expect: *expect,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

type config struct {
	target, cookiesFile, login   string
	n, par                       int
	callback, user, pass, prefix string
	save, timesFile              string
	conns                        int
	dur, ttl, margin, guard      time.Duration
	plan                         bool
	expect                       int
}

// signinTimes says when a session got its first tokens: between the
// callback request's sending and its answer.
type signinTimes struct{ sent, done time.Time }

func run(cfg config) error {
	var headers []string
	var times []signinTimes
	switch {
	case cfg.login != "" && cfg.cookiesFile != "":
		return errors.New("-login and -cookies exclude each other")
	case cfg.login != "":
		if cfg.n <= 0 {
			return errors.New("-login needs -n > 0")
		}
		var err error
		if headers, times, err = signInAll(cfg); err != nil {
			return err
		}
	case cfg.cookiesFile != "":
		var err error
		if headers, err = readLines(cfg.cookiesFile); err != nil {
			return err
		}
		if cfg.timesFile != "" {
			if times, err = readTimes(cfg.timesFile, len(headers)); err != nil {
				return err
			}
		}
	default:
		return errors.New("-login or -cookies is required")
	}
	if len(headers) == 0 {
		return errors.New("no sessions")
	}

	var w *refreshWindow
	if cfg.ttl > 0 {
		if times == nil {
			return errors.New("-ttl needs the sign-in times (-login, or -cookies with -times)")
		}
		if cfg.margin <= 0 || cfg.margin >= cfg.ttl {
			return errors.New("-refresh-margin must be positive and shorter than -ttl")
		}
		w = newWindow(times, cfg.ttl, cfg.margin, cfg.guard, cfg.dur)
	}
	if cfg.plan {
		if w == nil {
			return errors.New("-plan needs -ttl")
		}
		start, err := w.choose(time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("PLAN start_ms=%d lo_ms=%d hi_ms=%d wait_ms=%d spread_ms=%d first_entry_ms=%d last_entry_ms=%d\n",
			start.UnixMilli(), w.lo.UnixMilli(), w.hi.UnixMilli(), time.Until(start).Milliseconds(),
			w.lastDone.Sub(w.firstSent).Milliseconds(),
			w.firstEntry.Sub(start).Milliseconds(), w.lastEntry.Sub(start).Milliseconds())
		return nil
	}
	if cfg.target == "" {
		return nil // signed in (and saved) only
	}
	return load(cfg, headers, times, w)
}

// signInAll signs in cfg.n sessions, cfg.par at a time, and saves them.
func signInAll(cfg config) ([]string, []signinTimes, error) {
	client := signin.NewClient()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = max(cfg.par, 2)
	defer client.CloseIdleConnections()
	headers := make([]string, cfg.n)
	times := make([]signinTimes, cfg.n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	began := time.Now()
	for range max(cfg.par, 1) {
		wg.Go(func() {
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.n {
					return
				}
				r, err := signin.Login(client, cfg.login, cfg.callback, cfg.user+"-"+strconv.Itoa(i), cfg.pass, cfg.prefix)
				if err == nil && r.Header == "" {
					err = fmt.Errorf("login: no cookie starting with %q after the callback", cfg.prefix)
				}
				if err != nil {
					err = fmt.Errorf("session %d: %w", i, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
				headers[i], times[i] = r.Header, signinTimes{r.CallbackSent, r.Done}
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return nil, nil, *e
	}
	took := time.Since(began)
	fmt.Printf("SIGNIN sessions=%d duration_ms=%d per_s=%.1f cookie_bytes=%d\n", cfg.n, took.Milliseconds(),
		float64(cfg.n)/took.Seconds(), len(headers[0]))
	if cfg.save != "" {
		if err := os.WriteFile(cfg.save, []byte(strings.Join(headers, "\n")+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
	}
	if cfg.timesFile != "" {
		var b strings.Builder
		for _, t := range times {
			fmt.Fprintf(&b, "%d %d\n", t.sent.UnixNano(), t.done.UnixNano())
		}
		if err := os.WriteFile(cfg.timesFile, []byte(b.String()), 0o600); err != nil {
			return nil, nil, err
		}
	}
	return headers, times, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

func readTimes(path string, n int) ([]signinTimes, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	if len(lines) != n {
		return nil, fmt.Errorf("%s: %d lines for %d sessions", path, len(lines), n)
	}
	out := make([]signinTimes, n)
	for i, l := range lines {
		var a, b int64
		if _, err := fmt.Sscanf(l, "%d %d", &a, &b); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		out[i] = signinTimes{time.Unix(0, a), time.Unix(0, b)}
	}
	return out, nil
}

// expiryRounding bounds how much earlier than its sign-in (or refresh)
// time plus the lifetime a token can enter the refresh margin: the
// provider's expires_in is whole seconds and may be one short when a second
// boundary passes while it answers, and the BFF keeps the expiry in whole
// seconds.
const expiryRounding = 2 * time.Second

// refreshWindow is when a load of a given duration may start so that each
// session's access token enters the refresh margin exactly once during it.
//
// A session signed in between sent and done enters the margin (the BFF
// refreshes on its next request) at some time in [sent+ttl-margin-2s,
// done+ttl-margin]. Its refresh happens at or after max(start, that entry),
// and the new token enters the margin again no earlier than ttl-margin-2s
// after that. A load [start, start+d] sees exactly one entry per session when
//
//	start + d >= last done + ttl - margin + guard   (every first entry, guard before the end)
//	max(start, first entry) + ttl - margin - 2s >= start + d + guard   (no second entry, guard after the end)
type refreshWindow struct {
	lo, hi                time.Time
	firstSent, lastDone   time.Time
	firstEntry, lastEntry time.Time // earliest and latest possible first entries into the margin
	span                  time.Duration
}

func newWindow(times []signinTimes, ttl, margin, guard, d time.Duration) *refreshWindow {
	w := &refreshWindow{firstSent: times[0].sent, lastDone: times[0].done}
	for _, t := range times {
		if t.sent.Before(w.firstSent) {
			w.firstSent = t.sent
		}
		if t.done.After(w.lastDone) {
			w.lastDone = t.done
		}
	}
	w.span = ttl - margin
	w.firstEntry = w.firstSent.Add(w.span - expiryRounding)
	w.lastEntry = w.lastDone.Add(w.span)
	w.lo = w.lastEntry.Add(guard - d)
	if need := d + guard + expiryRounding - w.span; need <= 0 {
		// The load is shorter than a token's time outside the margin: no
		// refreshed token can come due again before it ends.
		w.hi = w.lo.Add(24 * time.Hour)
	} else {
		// The first entry must come after the start, and the second
		// entry of the earliest session after the end.
		w.hi = w.firstEntry.Add(-need)
	}
	return w
}

// check says whether a load starting at start is inside the window.
func (w *refreshWindow) check(start time.Time) error {
	if start.Before(w.lo) || start.After(w.hi) {
		return fmt.Errorf("a load starting now is outside the refresh window by %s: it must start between %s and %s from now "+
			"(the sign-ins spread over %s)", max(w.lo.Sub(start), start.Sub(w.hi)).Round(time.Millisecond),
			w.lo.Sub(start).Round(time.Millisecond), w.hi.Sub(start).Round(time.Millisecond),
			w.lastDone.Sub(w.firstSent).Round(time.Millisecond))
	}
	return nil
}

// choose picks a start at least a second from now: half the window's room
// past its opening, at most 10 s, so that both ends keep room to spare.
func (w *refreshWindow) choose(now time.Time) (time.Time, error) {
	lo := w.lo
	if earliest := now.Add(time.Second); lo.Before(earliest) {
		lo = earliest
	}
	if lo.After(w.hi) {
		return time.Time{}, fmt.Errorf("no start gives every session exactly one refresh: the sign-ins spread over %s "+
			"(from the first callback to the last answer), the window needs the latest start %s to be after the earliest %s; "+
			"use a longer -ttl, a shorter -d, or fewer sessions or more -login-parallel",
			w.lastDone.Sub(w.firstSent).Round(time.Millisecond), w.hi.Sub(now).Round(time.Millisecond), lo.Sub(now).Round(time.Millisecond))
	}
	return lo.Add(min(w.hi.Sub(lo)/2, 10*time.Second)), nil
}

// jarState is one session's cookies at one moment; replaced, never changed.
type jarState struct {
	version int
	cookies []jarCookie
	header  string // the Cookie header for the target's path
}

type jarCookie struct{ name, path, value string }

// session is one browser: its jar and what happened to it.
type session struct {
	cur atomic.Pointer[jarState]

	mu       sync.Mutex
	updates  int         // Set-Cookie answers applied
	late     int         // of which to requests sent with cookies already replaced
	renewals []time.Time // answers that renewed the cookies their request carried
	ended    time.Time   // when an answer deleted its last session cookie (zero: never)
}

func newSession(header string) *session {
	s := &session{}
	var cs []jarCookie
	for part := range strings.SplitSeq(header, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && name != "" {
			cs = append(cs, jarCookie{name: name, path: "/", value: value})
		}
	}
	s.cur.Store(&jarState{cookies: cs, header: header})
	return s
}

// apply stores an answer's Set-Cookie lines, for a request sent with the
// jar at version sent, as a browser would. An answer that leaves the jar
// without a cookie whose name starts with prefix ended the session: it is
// not a renewal.
func (s *session) apply(sent int, lines []string, path, prefix string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.cur.Load()
	cs := slices.Clone(st.cookies)
	for _, line := range lines {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			continue // a browser ignores it too
		}
		p := signin.CookiePath(c)
		cs = slices.DeleteFunc(cs, func(k jarCookie) bool { return k.name == c.Name && k.path == p })
		if !signin.Expired(c, at) {
			cs = append(cs, jarCookie{name: c.Name, path: p, value: c.Value})
		}
	}
	var parts []string
	for _, c := range cs {
		if signin.PathMatch(path, c.path) {
			parts = append(parts, c.name+"="+c.value)
		}
	}
	s.cur.Store(&jarState{version: st.version + 1, cookies: cs, header: strings.Join(parts, "; ")})
	s.updates++
	if !slices.ContainsFunc(cs, func(c jarCookie) bool { return strings.HasPrefix(c.name, prefix) }) {
		if s.ended.IsZero() {
			s.ended = at
		}
		return
	}
	if sent == st.version {
		s.renewals = append(s.renewals, at)
	} else {
		s.late++
	}
}

// failure is one failed request, kept for the report (the first 5 of each
// worker; the earliest 20 are printed).
type failure struct {
	at      time.Duration
	session int
	status  int
	detail  string
}

type worker struct {
	lat      []uint32 // microseconds
	non2xx   int
	errs     int
	failures []failure
}

func load(cfg config, headers []string, times []signinTimes, w *refreshWindow) error {
	u, err := url.Parse(cfg.target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q: not an absolute URL", cfg.target)
	}
	sessions := make([]*session, len(headers))
	for i, h := range headers {
		sessions[i] = newSession(h)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:          cfg.conns,
		MaxIdleConnsPerHost:   cfg.conns,
		MaxConnsPerHost:       cfg.conns,
		ResponseHeaderTimeout: 20 * time.Second,
		DisableCompression:    true,
	}
	defer tr.CloseIdleConnections()
	base := http.Header{
		"Accept":         {"application/json"},
		"X-Csrf":         {"1"},
		"Sec-Fetch-Site": {"same-origin"},
		"Sec-Fetch-Mode": {"cors"},
		"Sec-Fetch-Dest": {"empty"},
	}
	template := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}

	var usage0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage0)
	start := time.Now()
	if w != nil {
		if err := w.check(start); err != nil {
			return err
		}
	}
	deadline := start.Add(cfg.dur)
	var next atomic.Uint64
	workers := make([]*worker, cfg.conns)
	var wg sync.WaitGroup
	for wi := range workers {
		wk := &worker{lat: make([]uint32, 0, 1<<16)}
		workers[wi] = wk
		wg.Go(func() {
			drain := make([]byte, 32<<10)
			for time.Now().Before(deadline) {
				i := int(next.Add(1)-1) % len(sessions)
				s := sessions[i]
				st := s.cur.Load()
				h := make(http.Header, len(base)+1)
				for k, v := range base {
					h[k] = v
				}
				if st.header != "" {
					h["Cookie"] = []string{st.header}
				}
				req := new(http.Request)
				*req = *template
				req.Header = h
				t0 := time.Now()
				resp, err := tr.RoundTrip(req)
				if err != nil {
					wk.errs++
					if len(wk.failures) < 5 {
						wk.failures = append(wk.failures, failure{at: t0.Sub(start), session: i, detail: err.Error()})
					}
					continue
				}
				var snippet []byte
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					snippet, _ = io.ReadAll(io.LimitReader(resp.Body, 300))
				}
				for {
					if _, err := resp.Body.Read(drain); err != nil {
						break
					}
				}
				resp.Body.Close()
				t1 := time.Now()
				wk.lat = append(wk.lat, uint32(min(t1.Sub(t0).Microseconds(), 1<<32-1)))
				if lines := resp.Header["Set-Cookie"]; len(lines) > 0 {
					s.apply(st.version, lines, u.Path, cfg.prefix, t1)
				}
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					wk.non2xx++
					if len(wk.failures) < 5 {
						wk.failures = append(wk.failures, failure{at: t0.Sub(start), session: i, status: resp.StatusCode,
							detail: strings.TrimSpace(string(snippet))})
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var usage1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage1)
	cpu := time.Duration(usage1.Utime.Nano()+usage1.Stime.Nano()-usage0.Utime.Nano()-usage0.Stime.Nano()) * time.Nanosecond

	var lat []uint32
	var non2xx, errs int
	var failures []failure
	for _, wk := range workers {
		lat = append(lat, wk.lat...)
		non2xx += wk.non2xx
		errs += wk.errs
		failures = append(failures, wk.failures...)
	}
	slices.Sort(lat)
	var updates, late, r0, r1, r2, ended int
	var firstRenew, lastRenew time.Time
	var wrong []int
	for i, s := range sessions {
		s.mu.Lock()
		updates += s.updates
		late += s.late
		if !s.ended.IsZero() {
			ended++
		}
		switch len(s.renewals) {
		case 0:
			r0++
		case 1:
			r1++
		default:
			r2++
		}
		for _, t := range s.renewals {
			if firstRenew.IsZero() || t.Before(firstRenew) {
				firstRenew = t
			}
			if t.After(lastRenew) {
				lastRenew = t
			}
		}
		if cfg.expect >= 0 && len(s.renewals) != cfg.expect {
			wrong = append(wrong, i)
		}
		s.mu.Unlock()
	}
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return -1
		}
		return t.Sub(start).Milliseconds()
	}
	fmt.Printf("RESULT requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d cookie_updates=%d sessions=%d "+
		"renewed0=%d renewed1=%d renewed2plus=%d late_updates=%d ended=%d renew_first_ms=%d renew_last_ms=%d client_cpu_us=%d\n",
		len(lat), elapsed.Microseconds(), non2xx, errs, percentile(lat, 50), percentile(lat, 99), updates, len(sessions),
		r0, r1, r2, late, ended, ms(firstRenew), ms(lastRenew), cpu.Microseconds())

	var problems []string
	slices.SortFunc(failures, func(a, b failure) int { return cmp.Compare(a.at, b.at) })
	for _, f := range failures[:min(len(failures), 20)] {
		what := f.detail
		if f.status != 0 {
			what = fmt.Sprintf("status %d: %s", f.status, f.detail)
		}
		fmt.Fprintf(os.Stderr, "storm: at %s, session %d: %s\n", f.at.Round(time.Millisecond), f.session, what)
	}
	if non2xx > 0 || errs > 0 {
		problems = append(problems, fmt.Sprintf("%d answers were not 2xx and %d requests failed", non2xx, errs))
	}
	if ended > 0 {
		problems = append(problems, fmt.Sprintf("%d sessions ended: an answer deleted their session cookies", ended))
	}
	if len(wrong) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d sessions were not renewed exactly %d time(s)", len(wrong), len(sessions), cfg.expect))
		for _, i := range wrong[:min(len(wrong), 10)] {
			s := sessions[i]
			var rs []string
			for _, t := range s.renewals {
				rs = append(rs, fmt.Sprintf("%.3fs", t.Sub(start).Seconds()))
			}
			line := fmt.Sprintf("storm: session %d: renewed at [%s] (late updates %d)", i, strings.Join(rs, " "), s.late)
			if !s.ended.IsZero() {
				line += fmt.Sprintf(", ended at %.3fs", s.ended.Sub(start).Seconds())
			}
			if times != nil && w != nil {
				t := times[i]
				line += fmt.Sprintf("; signed in %.3fs..%.3fs, its token enters the refresh margin in [%.3fs, %.3fs]; the load ran [0, %.3fs]",
					t.sent.Sub(start).Seconds(), t.done.Sub(start).Seconds(),
					t.sent.Add(w.span-expiryRounding).Sub(start).Seconds(), t.done.Add(w.span).Sub(start).Seconds(), elapsed.Seconds())
			}
			fmt.Fprintln(os.Stderr, line)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// percentile is the nearest-rank percentile p (0..100) of sorted v.
func percentile(v []uint32, p float64) uint32 {
	if len(v) == 0 {
		return 0
	}
	rank := int(float64(len(v))*p/100+0.999999) - 1
	return v[min(max(rank, 0), len(v)-1)]
}
