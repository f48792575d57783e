package proxy

import "net/http"

// An upstream's 1xx informational response (103 Early Hints, say) reaches
// ReverseProxy's Got1xxResponse hook while the round trip is in progress:
// the hook copies the 1xx's headers into the client's response header map,
// writes the 1xx, then clears the map. That would pass the upstream's 1xx
// headers to the browser unfiltered (a Set-Cookie among them), and wipe what
// the BFF had set before proxying: a refreshed session's Set-Cookie, so the
// rotated refresh token would be lost and, after the successor grace, the
// session with it. An upstream could sign a user out that way.
//
// So ReverseProxy writes to the request's forward, not to the client's
// ResponseWriter: while the transport is in a round trip, Header returns a
// throwaway map, and a 1xx other than 101 Switching Protocols (which is
// final: the WebSocket handshake) is dropped. After the round trip, writes
// go straight through.

// Header is the client's header map, or a throwaway during a round trip.
func (f *forward) Header() http.Header {
	if f.inTrip.Load() {
		return http.Header{}
	}
	return f.w.Header()
}

// WriteHeader drops informational responses other than 101.
func (f *forward) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	f.w.WriteHeader(code)
}

func (f *forward) Write(b []byte) (int, error) { return f.w.Write(b) }

// Unwrap lets http.ResponseController reach the client's writer (flush,
// hijack for WebSocket, deadlines).
func (f *forward) Unwrap() http.ResponseWriter { return f.w }
