package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/bff-project/bff/proxy"
)

// routes validates the routes section and turns it into the proxy's routes.
func (fc *fileConfig) routes() ([]proxy.Route, error) {
	var routes []proxy.Route
	for i, r := range fc.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		u, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, &configError{field + ".upstream", "not a URL"}
		}
		if !strings.HasPrefix(r.Path, "/") {
			return nil, &configError{field + ".path", "must start with /"}
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &configError{field + ".upstream", "must be an absolute http(s) URL"}
		}
		switch r.Token {
		case "", "user", "optional", "none", "client":
		default:
			return nil, &configError{field + ".token", "must be user, optional, none or client"}
		}
		switch r.AntiForgery {
		case "", "header":
		default:
			return nil, &configError{field + ".anti_forgery", `must be "" (by kind of request) or "header"`}
		}
		bodyTimeout, err := r.BodyTimeout.parseSigned(field + ".body_timeout")
		if err != nil {
			return nil, err
		}
		if r.BodyMinRate < 0 {
			return nil, &configError{field + ".body_min_rate", "must not be negative (bytes per second)"}
		}
		rt := proxy.Route{
			Path: r.Path, Upstream: u, Token: proxy.TokenMode(r.Token), StripPrefix: r.StripPrefix,
			InsecureUpstream: r.InsecureUpstream, BodyTimeout: bodyTimeout, BodyMinRate: r.BodyMinRate,
			AntiForgery: proxy.AntiForgery(r.AntiForgery), Downloads: r.Downloads, BearerOnly: r.BearerOnly,
			Resource: r.Resource, Audience: r.Audience, Scopes: r.Scopes,
		}
		routes = append(routes, rt)
	}
	return routes, nil
}
