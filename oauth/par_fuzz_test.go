package oauth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzPARAnswer: any answer of a PAR endpoint gives a usable request_uri
// only for 200 or 201 with one (no whitespace), otherwise an error of one of
// AuthURL's classes; the body never reaches the error.
func FuzzPARAnswer(f *testing.F) {
	f.Add(201, []byte(`{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}`))
	f.Add(200, []byte(`{"request_uri":"urn:x"}`))
	f.Add(201, []byte(`{"expires_in":60}`))
	f.Add(201, []byte(`{"request_uri":"urn:x\r\nSet-Cookie: a=b"}`))
	f.Add(400, []byte(`{"error":"invalid_request","error_description":"secret-looking text"}`))
	f.Add(401, []byte(`{"error":"invalid_client"}`))
	f.Add(401, []byte(`not json`))
	f.Add(500, []byte(`<html>oops</html>`))
	f.Add(429, []byte(``))
	f.Add(400, []byte(`{"error":"`+strings.Repeat("x", 200)+`"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		uri, err := parAnswer(status, body)
		if err == nil {
			if status != http.StatusOK && status != http.StatusCreated {
				t.Fatalf("status %d accepted", status)
			}
			if uri == "" || strings.ContainsAny(uri, " \t\r\n") {
				t.Fatalf("request_uri %q accepted", uri)
			}
			return
		}
		if uri != "" {
			t.Fatalf("request_uri %q with error %v", uri, err)
		}
		var ae *AuthorizationError
		if !errors.Is(err, ErrClientAuth) && !errors.Is(err, ErrProvider) && !errors.Is(err, ErrInvalidResponse) && !errors.As(err, &ae) {
			t.Fatalf("error %v of no documented class", err)
		}
		if ae != nil && (len(ae.Code) > 64 || ae.Code == "") {
			t.Fatalf("authorization error code %q", ae.Code)
		}
		if len(body) > 8 && strings.Contains(err.Error(), string(body)) {
			t.Fatalf("the body reached the error: %v", err)
		}
	})
}
