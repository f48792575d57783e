package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// secureJar is a browser-like cookie jar for loopback tests. Unlike
// net/http/cookiejar it treats http://localhost and http://127.0.0.1 as secure
// contexts, as browsers do, so Secure and __Host- cookies work over plain
// HTTP. Cookies are kept per host name (ports do not separate cookies), all
// host-only; prefix rules are enforced and violations recorded.
type secureJar struct {
	mu       sync.Mutex
	seq      int
	hosts    map[string]map[string]jarEntry
	rejected []string
}

type jarEntry struct {
	c   http.Cookie
	exp time.Time // zero: session cookie
	seq int
}

var _ http.CookieJar = (*secureJar)(nil)

func newJar() *secureJar { return &secureJar{hosts: map[string]map[string]jarEntry{}} }

func (j *secureJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	host := u.Hostname()
	m := j.hosts[host]
	if m == nil {
		m = map[string]jarEntry{}
		j.hosts[host] = m
	}
	now := time.Now()
	for _, c := range cookies {
		if why := prefixViolation(c); why != "" {
			j.rejected = append(j.rejected, c.Name+": "+why)
			continue
		}
		var exp time.Time
		switch {
		case c.MaxAge < 0:
			delete(m, c.Name)
			continue
		case c.MaxAge > 0:
			exp = now.Add(time.Duration(c.MaxAge) * time.Second)
		case !c.Expires.IsZero():
			if !c.Expires.After(now) {
				delete(m, c.Name)
				continue
			}
			exp = c.Expires
		}
		j.seq++
		m[c.Name] = jarEntry{c: *c, exp: exp, seq: j.seq}
	}
}

func (j *secureJar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var es []jarEntry
	now := time.Now()
	for _, e := range j.hosts[u.Hostname()] {
		if e.exp.IsZero() || e.exp.After(now) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b jarEntry) int { return a.seq - b.seq })
	out := make([]*http.Cookie, 0, len(es))
	for _, e := range es {
		out = append(out, &http.Cookie{Name: e.c.Name, Value: e.c.Value})
	}
	return out
}

// names lists the cookie names stored for host that start with prefix.
func (j *secureJar) names(host, prefix string) []string {
	var out []string
	for _, c := range j.Cookies(&url.URL{Scheme: "http", Host: host}) {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c.Name)
		}
	}
	return out
}

// value returns the stored value of a cookie, or "".
func (j *secureJar) value(host, name string) string {
	for _, c := range j.Cookies(&url.URL{Scheme: "http", Host: host}) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// put stores a cookie as an attacker or a test would: no attribute checks.
func (j *secureJar) put(host, name, value string) {
	j.SetCookies(&url.URL{Scheme: "http", Host: host}, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true}})
}

// clone copies the jar (for replaying old cookies later).
func (j *secureJar) clone() *secureJar {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := newJar()
	n.seq = j.seq
	for h, m := range j.hosts {
		nm := map[string]jarEntry{}
		for k, v := range m {
			nm[k] = v
		}
		n.hosts[h] = nm
	}
	return n
}

// prefixViolation applies the browser rules of __Host- and __Host-Http-.
func prefixViolation(c *http.Cookie) string {
	switch {
	case strings.HasPrefix(c.Name, "__Host-Http-"):
		if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
			return "__Host-Http- cookie needs Secure, HttpOnly, Path=/ and no Domain"
		}
	case strings.HasPrefix(c.Name, "__Host-"):
		if !c.Secure || c.Path != "/" || c.Domain != "" {
			return "__Host- cookie needs Secure, Path=/ and no Domain"
		}
	}
	return ""
}
