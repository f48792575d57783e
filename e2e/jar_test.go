package e2e

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// cookieJar is a small browser-like cookie store. Unlike net/http/cookiejar
// it treats http://localhost and http://127.0.0.1 as secure contexts, as
// browsers do, so Secure and __Host- cookies work over plain loopback HTTP.
//
// Cookies are kept per host name (ports do not separate cookies, as in
// browsers) and treated as host-only. Prefix rules are enforced the way
// browsers enforce them; refused cookies are recorded, not stored.
type cookieJar struct {
	mu       sync.Mutex
	now      func() time.Time
	seq      int
	hosts    map[string]map[cookieKey]jarCookie
	rejected []string
}

type cookieKey struct{ name, path string }

type jarCookie struct {
	Name, Value, Path string
	Expires           time.Time // zero: session cookie
	Secure, HttpOnly  bool
	SameSite          http.SameSite
	seq               int // creation order, for a stable Cookie header
}

// JarSnapshot is a frozen copy of a jar's cookies, for replay tests.
type JarSnapshot struct {
	hosts map[string]map[cookieKey]jarCookie
}

func newCookieJar() *cookieJar {
	return &cookieJar{now: time.Now, hosts: map[string]map[cookieKey]jarCookie{}}
}

// isLoopbackHost reports whether host counts as a secure context over http.
func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func secureContext(u *url.URL) bool {
	return u.Scheme == "https" || isLoopbackHost(u.Hostname())
}

// defaultPath is RFC 6265 section 5.1.4's default-path of a request URL.
func defaultPath(u *url.URL) string {
	p := u.Path
	if p == "" || p[0] != '/' {
		return "/"
	}
	i := strings.LastIndex(p, "/")
	if i == 0 {
		return "/"
	}
	return p[:i]
}

// pathMatch is RFC 6265 section 5.1.4's path-match.
func pathMatch(reqPath, cookiePath string) bool {
	if reqPath == "" {
		reqPath = "/"
	}
	if reqPath == cookiePath {
		return true
	}
	if strings.HasPrefix(reqPath, cookiePath) {
		return strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/'
	}
	return false
}

// checkPrefix applies the cookie name prefix rules of browsers
// (__Secure-, __Host-, and the __Http-/__Host-Http- prefixes that also
// require HttpOnly). It returns why the cookie is refused, or "".
func checkPrefix(c *http.Cookie) string {
	name := c.Name
	switch {
	case strings.HasPrefix(name, "__Host-Http-"):
		if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
			return "__Host-Http- cookie needs Secure, HttpOnly, Path=/ and no Domain"
		}
	case strings.HasPrefix(name, "__Host-"):
		if !c.Secure || c.Path != "/" || c.Domain != "" {
			return "__Host- cookie needs Secure, Path=/ and no Domain"
		}
	case strings.HasPrefix(name, "__Http-"):
		if !c.Secure || !c.HttpOnly {
			return "__Http- cookie needs Secure and HttpOnly"
		}
	case strings.HasPrefix(name, "__Secure-"):
		if !c.Secure {
			return "__Secure- cookie needs Secure"
		}
	}
	return ""
}

// setCookies stores the Set-Cookie headers of a response to u.
func (j *cookieJar) setCookies(u *url.URL, h http.Header) {
	j.mu.Lock()
	defer j.mu.Unlock()
	host := u.Hostname()
	now := j.now()
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			j.rejected = append(j.rejected, fmt.Sprintf("%s: unparsable Set-Cookie: %v", host, err))
			continue
		}
		if reason := checkPrefix(c); reason != "" {
			j.rejected = append(j.rejected, fmt.Sprintf("%s: %s: %s", host, c.Name, reason))
			continue
		}
		if c.Secure && !secureContext(u) {
			j.rejected = append(j.rejected, fmt.Sprintf("%s: %s: Secure cookie from an insecure origin", host, c.Name))
			continue
		}
		if c.Domain != "" && strings.TrimPrefix(c.Domain, ".") != host {
			j.rejected = append(j.rejected, fmt.Sprintf("%s: %s: foreign Domain", host, c.Name))
			continue
		}
		path := c.Path
		if path == "" || path[0] != '/' {
			path = defaultPath(u)
		}
		key := cookieKey{name: c.Name, path: path}
		var expires time.Time
		switch {
		case c.MaxAge < 0: // Max-Age=0 or negative
			expires = now.Add(-time.Second)
		case c.MaxAge > 0:
			expires = now.Add(time.Duration(c.MaxAge) * time.Second)
		case !c.Expires.IsZero():
			expires = c.Expires
		}
		if !expires.IsZero() && !expires.After(now) {
			delete(j.hosts[host], key)
			continue
		}
		if j.hosts[host] == nil {
			j.hosts[host] = map[cookieKey]jarCookie{}
		}
		seq := j.seq
		if old, ok := j.hosts[host][key]; ok {
			seq = old.seq // replacing keeps the creation time, as in RFC 6265
		} else {
			j.seq++
		}
		j.hosts[host][key] = jarCookie{
			Name: c.Name, Value: c.Value, Path: path, Expires: expires,
			Secure: c.Secure, HttpOnly: c.HttpOnly, SameSite: c.SameSite, seq: seq,
		}
	}
}

// cookies returns the cookies a browser would send to u, longest path first.
func (j *cookieJar) cookies(u *url.URL) []jarCookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	var out []jarCookie
	for key, c := range j.hosts[u.Hostname()] {
		if !c.Expires.IsZero() && !c.Expires.After(now) {
			delete(j.hosts[u.Hostname()], key)
			continue
		}
		if c.Secure && !secureContext(u) {
			continue
		}
		if !pathMatch(u.Path, c.Path) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b jarCookie) int {
		if len(a.Path) != len(b.Path) {
			return len(b.Path) - len(a.Path)
		}
		return a.seq - b.seq
	})
	return out
}

// header is the Cookie header value for u, "" when there is none.
func (j *cookieJar) header(u *url.URL) string {
	cs := j.cookies(u)
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// names lists the names of the live cookies stored for host, sorted.
func (j *cookieJar) names(host string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	var out []string
	for _, c := range j.hosts[host] {
		if c.Expires.IsZero() || c.Expires.After(now) {
			out = append(out, c.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// value returns the value of the live cookie name stored for host.
func (j *cookieJar) value(host, name string) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	for _, c := range j.hosts[host] {
		if c.Name == name && (c.Expires.IsZero() || c.Expires.After(now)) {
			return c.Value, true
		}
	}
	return "", false
}

func (j *cookieJar) snapshot() JarSnapshot {
	j.mu.Lock()
	defer j.mu.Unlock()
	return JarSnapshot{hosts: cloneHosts(j.hosts)}
}

func (j *cookieJar) restore(s JarSnapshot) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.hosts = cloneHosts(s.hosts)
}

func (j *cookieJar) rejections() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.rejected)
}

func cloneHosts(in map[string]map[cookieKey]jarCookie) map[string]map[cookieKey]jarCookie {
	out := make(map[string]map[cookieKey]jarCookie, len(in))
	for h, m := range in {
		out[h] = maps.Clone(m)
	}
	return out
}
