// Package htmlform finds the POST forms of an HTML page: what the
// end-to-end tests' browser and the benchmark's sign-in submit on a
// provider's login and consent pages. It reads the pages of the providers we
// test against with regular expressions; it is not an HTML parser.
package htmlform

import (
	"html"
	"net/url"
	"regexp"
	"strings"
)

// Form is a POST form: where it goes and its named inputs' values.
type Form struct {
	Action string
	Fields url.Values
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe  = regexp.MustCompile(`(?is)([a-z_:][-a-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
)

// First returns the first form of page whose method is POST.
func First(page []byte) (Form, bool) {
	all := All(page)
	if len(all) == 0 {
		return Form{}, false
	}
	return all[0], true
}

// All returns every form of page whose method is POST, in page order: for
// pages that offer a choice as separate forms (Dex's approval page has one
// form to grant and one to cancel).
func All(page []byte) []Form {
	var forms []Form
	for _, m := range formRe.FindAllSubmatch(page, -1) {
		fa := attrs(string(m[1]))
		if !strings.EqualFold(fa["method"], "post") {
			continue
		}
		f := Form{Action: fa["action"], Fields: url.Values{}}
		for _, in := range inputRe.FindAllSubmatch(m[2], -1) {
			ia := attrs(string(in[1]))
			if name := ia["name"]; name != "" {
				f.Fields.Set(name, ia["value"])
			}
		}
		forms = append(forms, f)
	}
	return forms
}

// attrs returns a tag's quoted attributes, names lower-cased, values
// unescaped.
func attrs(s string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(s, -1) {
		v := m[2]
		if v == "" {
			v = m[3]
		}
		out[strings.ToLower(m[1])] = html.UnescapeString(v)
	}
	return out
}
