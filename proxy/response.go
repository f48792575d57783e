package proxy

import "net/http"

// responseModifier is the ModifyResponse of a route: what an upstream's
// response may not carry to the browser.
func (p *Proxy) responseModifier(rt *route) func(*http.Response) error {
	return func(resp *http.Response) error {
		p.dropBFFSetCookies(resp)
		if _, ok := resp.Header["Clear-Site-Data"]; ok {
			// "cookies" or "*" would wipe the BFF's session: only the BFF
			// ends sessions. The value is the upstream's: not logged.
			delete(resp.Header, "Clear-Site-Data")
			p.log.Warn("upstream sent Clear-Site-Data; dropped", "path", resp.Request.URL.Path)
		}
		if rt.Token != TokenNone {
			privateCache(resp.Header)
		}
		return nil
	}
}

// dropBFFSetCookies drops any Set-Cookie of the upstream that would set,
// overwrite or delete one of the BFF's own cookies.
func (p *Proxy) dropBFFSetCookies(resp *http.Response) {
	sc := resp.Header["Set-Cookie"]
	if len(sc) == 0 {
		return
	}
	kept := sc[:0:0]
	for _, v := range sc {
		if !setsBFFCookie(v, p.cfg.IsBFFCookie) {
			kept = append(kept, v)
		}
	}
	if len(kept) == len(sc) {
		return
	}
	p.log.Warn("upstream tried to set a BFF cookie; dropped", "path", resp.Request.URL.Path)
	if len(kept) == 0 {
		delete(resp.Header, "Set-Cookie")
		return
	}
	resp.Header["Set-Cookie"] = kept
}
