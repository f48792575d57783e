package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bff-project/bff/oauth"
	"github.com/bff-project/bff/revocation"
)

// MinAdminToken is the shortest admin credential AdminHandler accepts.
const MinAdminToken = 32

// AdminHandler serves the incident-response API, for a listener of its own
// that the public one never routes to (Config has no admin path: /admin/ on
// the public listener is a 404 like any unknown path). Every request needs
// "Authorization: Bearer <token>".
//
//	POST /admin/v1/revoke  {"sub": "..."} or {"sid": "..."}
//	    ends every session of a subject that started before now, or every
//	    session of one provider session (the ID token's sid), on every
//	    instance: the entry is replicated like a logout.
//	GET  /admin/v1/status
//	    the revocation list's size, the master secrets' ids (the sealing one
//	    first), the cluster's members and whether the provider is ready.
func (s *Server) AdminHandler(token string) (http.Handler, error) {
	if len(token) < MinAdminToken {
		return nil, fmt.Errorf("server: the admin token is %d bytes, need at least %d", len(token), MinAdminToken)
	}
	want := sha256.Sum256([]byte(token))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/revoke", s.adminRevoke)
	mux.HandleFunc("GET /admin/v1/status", s.adminStatus)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		bearer, ok := bearerToken(r)
		got := sha256.Sum256([]byte(bearer))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.metrics.adminRefused.Inc()
			s.log.Warn("admin request refused", "method", r.Method, "path", r.URL.Path, "peer", r.RemoteAddr,
				"reason", map[bool]string{true: "wrong token", false: "no bearer token"}[ok])
			w.Header().Set("WWW-Authenticate", `Bearer realm="bff-admin"`)
			adminJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// bearerToken is the token of an "Authorization: Bearer" header (the scheme
// case-insensitive, RFC 6750 2.1); ok is false without one.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 || len(h[0]) <= len("Bearer ") || !strings.EqualFold(h[0][:len("Bearer ")], "Bearer ") {
		return "", false
	}
	return h[0][len("Bearer "):], true
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// adminRevoke answers POST /admin/v1/revoke.
func (s *Server) adminRevoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Sub string `json:"sub"`
		Sid string `json:"sid"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		adminJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "want a JSON object with sub or sid"})
		return
	}
	if (req.Sub == "") == (req.Sid == "") {
		adminJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "give exactly one of sub and sid"})
		return
	}
	e := s.endSessionsEntry(req.Sid, req.Sub, s.now())
	by := "subject"
	if req.Sid != "" {
		by = "provider_session"
	}
	if err := s.revoke(e); err != nil {
		status, code := http.StatusServiceUnavailable, "temporarily_unavailable"
		if errors.Is(err, revocation.ErrInvalid) {
			status, code = http.StatusBadRequest, "invalid_request"
		}
		s.log.Error("admin revocation failed", "by", by, "err", err)
		adminJSON(w, status, map[string]string{"error": code})
		return
	}
	s.metrics.revocation.WithLabelValues("admin").Inc()
	s.log.Warn("admin revocation", "by", by, "sub_hash", oauth.ShortHash(req.Sub), "sid_hash", oauth.ShortHash(req.Sid), "peer", r.RemoteAddr)
	adminJSON(w, http.StatusOK, map[string]string{"revoked": by, "until": e.Expiry.UTC().Format(time.RFC3339)})
}

// adminStatus answers GET /admin/v1/status.
func (s *Server) adminStatus(w http.ResponseWriter, r *http.Request) {
	st := map[string]any{
		"revocation_entries": s.revoked.Len(),
		"single_use_entries": s.revoked.OnceLen(),
		"master_secret_ids":  s.ring.MasterIDs(),
		"sealing_key_id":     s.ring.Sealing().ID,
		"provider_ready":     s.idp.Ready(),
	}
	if s.cluster != nil {
		var names []string
		for _, m := range s.cluster.Members() {
			names = append(names, m.Name)
		}
		st["cluster_members"] = names
	}
	adminJSON(w, http.StatusOK, st)
}
