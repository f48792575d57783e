package proxy

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// upgradeRefused reports whether the request asks for a protocol upgrade
// other than WebSocket. Once an upstream answers 101, the connection is a
// raw tunnel past every check of the BFF; h2c or any other protocol has no
// business there. A request asks for an upgrade when its Connection header
// holds the token "upgrade" (what ReverseProxy and the upstream go by); it
// is accepted only when Upgrade then names exactly one protocol,
// "websocket" (any case). Without that Connection token, Upgrade is a
// hop-by-hop header that ReverseProxy drops.
//
// The response side is ReverseProxy's own check, which the tests hold it to:
// a 101 is tunnelled only when it switches to the protocol the request
// asked for.
func upgradeRefused(h http.Header) bool {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return false
	}
	n, websocket := 0, false
	for _, line := range h["Upgrade"] {
		for item := range strings.SplitSeq(line, ",") {
			if item = strings.Trim(item, " \t"); item != "" {
				n++
				websocket = strings.EqualFold(item, "websocket")
			}
		}
	}
	return n != 1 || !websocket
}
