package htmlform

import (
	"net/url"
	"reflect"
	"testing"
)

func TestFirst(t *testing.T) {
	tests := []struct {
		name string
		page string
		want Form
		ok   bool
	}{
		{
			name: "login form",
			page: `<html><form method="post" action="/interaction/abc/login"><input type="hidden" name="uid" value="abc"><input name="login"><input type="password" name="password"><button>Sign in</button></form>`,
			want: Form{Action: "/interaction/abc/login", Fields: url.Values{"uid": {"abc"}, "login": {""}, "password": {""}}},
			ok:   true,
		},
		{
			name: "a GET form first is skipped",
			page: `<form method="get" action="/search"><input name="q"></form><FORM METHOD='POST' ACTION='/consent'><INPUT NAME='prompt' VALUE='consent'></FORM>`,
			want: Form{Action: "/consent", Fields: url.Values{"prompt": {"consent"}}},
			ok:   true,
		},
		{
			name: "entities in values are unescaped",
			page: `<form method="post" action="/cb?a=1&amp;b=2"><input name="state" value="x&quot;y"></form>`,
			want: Form{Action: "/cb?a=1&b=2", Fields: url.Values{"state": {`x"y`}}},
			ok:   true,
		},
		{
			name: "inputs without a name are left out",
			page: `<form method="post" action="/"><input type="submit" value="Go"></form>`,
			want: Form{Action: "/", Fields: url.Values{}},
			ok:   true,
		},
		{name: "no POST form", page: `<form action="/x"><input name="a"></form>`, ok: false},
		{name: "no form at all", page: `<p>signed in</p>`, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := First([]byte(tt.page))
			if ok != tt.ok || (ok && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("First = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAll(t *testing.T) {
	tests := []struct {
		name string
		page string
		want []Form
	}{
		{
			name: "two choices as two forms without action (Dex's approval page)",
			page: `<div><form method="post"><input type="hidden" name="req" value="r1"/><input type="hidden" name="approval" value="approve"><button>Grant Access</button></form></div>` +
				`<div><form method="post"><input type="hidden" name="req" value="r1"/><input type="hidden" name="approval" value="rejected"><button>Cancel</button></form></div>`,
			want: []Form{
				{Action: "", Fields: url.Values{"req": {"r1"}, "approval": {"approve"}}},
				{Action: "", Fields: url.Values{"req": {"r1"}, "approval": {"rejected"}}},
			},
		},
		{
			name: "GET forms are left out, order is kept",
			page: `<form method="post" action="/a"><input name="x" value="1"></form><form action="/search"><input name="q"></form><form method="POST" action="/b"></form>`,
			want: []Form{
				{Action: "/a", Fields: url.Values{"x": {"1"}}},
				{Action: "/b", Fields: url.Values{}},
			},
		},
		{name: "no POST form", page: `<form action="/x"><input name="a"></form><a href="/auth/local">Log in</a>`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := All([]byte(tt.page)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("All = %+v; want %+v", got, tt.want)
			}
		})
	}
}
