package config

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bff-project/bff/server"
)

// Config is a validated configuration: the server's, and the settings the
// command applies itself at start (listeners, TLS, logging, the admin API).
type Config struct {
	// Server is what server.New and (*server.Server).Reload take. Logger
	// and AccessLogger are left for the caller to set.
	Server server.Config
	// Listen is the address (host:port) of the app's listener; default
	// 127.0.0.1:8080.
	Listen string
	// MetricsListen is the address of the metrics listener; "" for none.
	MetricsListen string
	// AdminListen and AdminToken are the address and bearer token of the
	// incident-response API (server.AdminHandler); both "" when it is off.
	// AdminListen never equals Listen.
	AdminListen, AdminToken string
	// TLSCertFile and TLSKeyFile are the PEM certificate and key of the
	// app's listener; both "" for plain HTTP.
	TLSCertFile, TLSKeyFile string
	// Log is how the BFF logs.
	Log Log

	// logFormat and logLevel are log.format and log.level as written, for
	// RestartField.
	logFormat, logLevel string
}

// Log is the log section, validated.
type Log struct {
	// Format is "json" (the default) or "text".
	Format string
	// Level is the least level written (log.level; default info).
	Level slog.Level
	// AccessFlush is how long access-log lines may wait in a buffer before
	// they are written (log.access_flush; default 1s); zero writes each
	// line at once.
	AccessFlush time.Duration
}

// Load reads the YAML file at path, overlays the BFF_* environment
// variables that getenv returns, and validates the result. An empty path
// means $BFF_CONFIG, and when that is empty too, the environment alone.
// STATE_DIRECTORY (systemd) is read for the revocation snapshot's default
// place, whose directory is created when missing and must be writable.
//
// Every error starts with "config:" and quotes no secret. A rule's error
// names the field ("config: oidc.issuer: required"); the YAML decoder's
// names the file and line.
func Load(path string, getenv func(string) string) (*Config, error) {
	if path == "" {
		path = getenv("BFF_CONFIG")
	}
	fc, err := loadFile(path, getenv)
	if err != nil {
		return nil, err
	}
	return fc.resolve()
}

// configError names the field that is wrong, never its value when secret.
type configError struct {
	field string
	msg   string
}

func (e *configError) Error() string { return "config: " + e.field + ": " + e.msg }

// resolve validates fc and turns it into a Config. Every error names the
// field.
func (fc *fileConfig) resolve() (*Config, error) {
	if fc.Listen == "" {
		fc.Listen = "127.0.0.1:8080"
	}
	log, err := fc.logConfig()
	if err != nil {
		return nil, err
	}
	adminToken, err := fc.adminToken()
	if err != nil {
		return nil, err
	}
	for _, l := range []struct{ field, addr string }{{"listen", fc.Listen}, {"metrics_listen", fc.MetricsListen}, {"admin.listen", fc.Admin.Listen}} {
		if err := validListen(l.field, l.addr); err != nil {
			return nil, err
		}
	}
	sc, err := fc.serverConfig()
	if err != nil {
		return nil, err
	}
	return &Config{
		Server: sc, Listen: fc.Listen, MetricsListen: fc.MetricsListen, Log: log,
		AdminListen: fc.Admin.Listen, AdminToken: adminToken,
		TLSCertFile: fc.TLS.CertFile, TLSKeyFile: fc.TLS.KeyFile,
		logFormat: fc.Log.Format, logLevel: fc.Log.Level,
	}, nil
}

// logConfig validates the log section.
func (fc *fileConfig) logConfig() (Log, error) {
	l := Log{Format: fc.Log.Format, AccessFlush: time.Second}
	if fc.Log.Level != "" {
		if err := l.Level.UnmarshalText([]byte(fc.Log.Level)); err != nil {
			return l, &configError{"log.level", "must be debug, info, warn or error"}
		}
	}
	switch fc.Log.Format {
	case "":
		l.Format = "json"
	case "json", "text":
	default:
		return l, &configError{"log.format", "must be json or text"}
	}
	if strings.TrimSpace(string(fc.Log.AccessFlush)) != "" {
		d, err := fc.Log.AccessFlush.parse("log.access_flush")
		if err != nil {
			return l, err
		}
		l.AccessFlush = d
	}
	return l, nil
}

// adminToken validates the admin section and returns its token, "" when
// the admin API is off.
func (fc *fileConfig) adminToken() (string, error) {
	a := fc.Admin
	token, err := secretOrFile("admin.token", a.Token, a.TokenFile)
	if err != nil {
		return "", err
	}
	switch {
	case a.Listen == "" && token == "":
		return "", nil
	case a.Listen == "":
		return "", &configError{"admin.listen", "required with an admin token (a loopback or private address, never the public listener)"}
	case token == "":
		return "", &configError{"admin.token", "required with admin.listen (or token_file, or BFF_ADMIN_TOKEN)"}
	case len(token) < server.MinAdminToken:
		return "", &configError{"admin.token", fmt.Sprintf("%d bytes; use at least %d (bff keygen makes one)", len(token), server.MinAdminToken)}
	case a.Listen == fc.Listen:
		return "", &configError{"admin.listen", "must differ from listen: the admin API never shares the public listener"}
	}
	return token, nil // admin.listen's syntax: validListen, with the other listeners
}

// validListen checks a listen address: host:port with a port number (the
// host may be empty: every interface). Empty addr is valid (unset).
func validListen(field, addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &configError{field, fmt.Sprintf("%q: want host:port, e.g. 127.0.0.1:8080 (%s)", addr, strings.TrimPrefix(err.Error(), "address "+addr+": "))}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &configError{field, fmt.Sprintf("%q: the port must be a number from 0 to 65535", addr)}
	}
	return nil
}

// secretOrFile returns a secret given either inline (field) or as a file
// (field + "_file"), never both; a file's content is trimmed.
func secretOrFile(field, inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	if inline != "" {
		name := field[strings.LastIndex(field, ".")+1:]
		return "", &configError{field + "_file", "set either " + name + " or " + name + "_file, not both"}
	}
	b, err := ReadNamedFile(file)
	if err != nil {
		return "", &configError{field + "_file", err.Error()}
	}
	return strings.TrimSpace(string(b)), nil
}

// maxNamedFile bounds a secret, key or certificate file the configuration
// names: such files are a few KB, and a path to /dev/zero or a log file
// must fail, not fill the memory.
const maxNamedFile = 1 << 20

// ReadNamedFile reads a file the configuration names, at most 1 MiB: the
// secret, key and certificate files Load reads, and the listener's TLS pair
// the command loads at start and on reload.
func ReadNamedFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNamedFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxNamedFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a secret, key or certificate file", path, maxNamedFile)
	}
	return b, nil
}

// RestartField names the first setting that the command applies at start
// only (the listeners, the logging, the admin API, TLS) and that differs
// between running and next, or "" when none does. Log settings are compared
// as written. (*server.Server).Reload judges the server's own settings.
func RestartField(running, next *Config) string {
	for _, c := range []struct {
		field   string
		changed bool
	}{
		{"listen", next.Listen != running.Listen},
		{"metrics_listen", next.MetricsListen != running.MetricsListen},
		{"admin.listen", next.AdminListen != running.AdminListen},
		{"admin.token", next.AdminToken != running.AdminToken},
		{"log.format", next.logFormat != running.logFormat},
		{"log.level", next.logLevel != running.logLevel},
		{"tls", next.TLSCertFile != running.TLSCertFile || next.TLSKeyFile != running.TLSKeyFile},
	} {
		if c.changed {
			return c.field
		}
	}
	return ""
}
