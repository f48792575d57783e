package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/bff-project/bff/cluster"
)

// clusterConfig validates the cluster section; nil when it is absent.
func (fc *fileConfig) clusterConfig() (*cluster.Config, error) {
	c := fc.Cluster
	if c.Bind == "" {
		if c.Secret != "" || c.SecretFile != "" || len(c.Join) > 0 {
			return nil, &configError{"cluster.bind", "required when the cluster section is used"}
		}
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(c.Bind); err != nil {
		return nil, &configError{"cluster.bind", "must be host:port"}
	}
	secret, err := secretOrFile("cluster.secret", c.Secret, c.SecretFile)
	if err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, &configError{"cluster.secret", "required (base64 of 32 random bytes; bff keygen makes one)"}
	}
	key, err := decodeBase64(secret)
	if err != nil {
		return nil, &configError{"cluster.secret", "is not base64"}
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, &configError{"cluster.secret", fmt.Sprintf("must decode to 16, 24 or 32 bytes, not %d", n)}
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return nil, &configError{fmt.Sprintf("cluster.join[%d]", i), "must be host:port"}
		}
	}
	return &cluster.Config{Bind: c.Bind, Advertise: c.Advertise, Join: c.Join, Secret: key, Name: c.Name}, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// internalURL is cluster.internal_url, how the other instances reach this
// one's listener, without a trailing slash; by default http://<listen> when
// listen names a host and TLS is off.
func (fc *fileConfig) internalURL() (string, error) {
	s := fc.Cluster.InternalURL
	if s == "" {
		host, _, _ := net.SplitHostPort(fc.Listen)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) || fc.TLS.CertFile != "" {
			return "", &configError{"cluster.internal_url", "required when listen has no specific host or TLS is on (e.g. http://10.0.0.5:8080)"}
		}
		s = "http://" + fc.Listen
	}
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", &configError{"cluster.internal_url", "must be an http(s) origin like http://10.0.0.5:8080"}
	}
	return strings.TrimSuffix(s, "/"), nil
}
