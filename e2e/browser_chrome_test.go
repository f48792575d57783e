package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// defaultChromium is Debian's Chromium, what the README's test command
// installs. BFF_E2E_CHROMIUM names another binary.
const defaultChromium = "/usr/bin/chromium"

// Timeouts of the browser helpers.
const (
	stepTimeout  = 10 * time.Second // one navigation, click or script
	stateTimeout = 30 * time.Second // waiting for a page to reach a state
)

// chromiumPath returns the browser binary or fails the test with what to do:
// the browser suite never skips.
func chromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("BFF_E2E_CHROMIUM")
	if path == "" {
		path = defaultChromium
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("e2e: Chromium not found at %s: the browser suite needs it and never skips. "+
			"Install it with `apt-get install -y chromium` (as root), run the README's test command, "+
			"or point BFF_E2E_CHROMIUM at a Chromium/Chrome binary", path)
	}
	return path
}

// Tab is one page target of a headless Chromium driven through chromedp.
// Tabs of one browser share its default browser context, so they share
// cookies like tabs of one person's browser do.
type Tab struct {
	ctx    context.Context // chromedp context of this target
	output *syncBuffer     // the browser's stdout and stderr (shared by its tabs)
}

// startChromium starts a fresh headless Chromium (its own temporary profile
// directory, removed when it exits) and returns its first tab. The browser
// is closed when the test ends.
func startChromium(t testing.TB) *Tab {
	t.Helper()
	path := chromiumPath(t)
	out := &syncBuffer{}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // we run as root
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,HttpsUpgrades,MediaRouter,OptimizationHints"),
		chromedp.Flag("no-proxy-server", true),
		// Loopback only: every other host name fails at once (the provider's
		// pages @import a web font), localhost and 127.0.0.1 resolve as usual.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
	// No user-data-dir flag: the allocator makes a fresh temporary profile
	// directory per browser and removes it (and any leftover child process)
	// when the browser exits.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
		if t.Failed() {
			t.Logf("chromium output (last 4 KiB):\n%s", tail(out.String(), 4<<10))
		}
	})
	// The first Run starts the browser; it must not have a deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: start Chromium (%s): %v\n%s", path, err, tail(out.String(), 4<<10))
	}
	return &Tab{ctx: ctx, output: out}
}

// NewTab opens another tab in the same browser (same cookies).
func (tb *Tab) NewTab(t testing.TB) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: open tab: %v", err)
	}
	return &Tab{ctx: ctx, output: tb.output}
}

// run runs one action with the step timeout.
func run[T any](tb *Tab, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// Navigate loads url in the tab and waits for its load event.
func (tb *Tab) Navigate(t testing.TB, url string) {
	t.Helper()
	if _, err := run(tb, chromedp.Navigate(url)); err != nil {
		t.Fatalf("e2e: navigate to %s: %v", redactURL(url), err)
	}
}

// Click clicks the element with the given CSS selector, like a person.
func (tb *Tab) Click(t testing.TB, css string) {
	t.Helper()
	if err := tb.click(css); err != nil {
		t.Fatal(err)
	}
}

func (tb *Tab) click(css string) error {
	if _, err := run(tb, chromedp.Click(chromedp.CSS(css))); err != nil {
		return fmt.Errorf("e2e: click %s: %w", css, err)
	}
	return nil
}

// Text returns the text of the element with the given CSS selector.
func (tb *Tab) Text(t testing.TB, css string) string {
	t.Helper()
	s, err := run(tb, chromedp.Evaluate[string](
		`(() => { const e = document.querySelector(`+strconv.Quote(css)+`); return e ? e.textContent : ''; })()`))
	if err != nil {
		t.Fatalf("e2e: text of %s: %v", css, err)
	}
	return s
}

// Eval evaluates a script expression in the page and decodes its value;
// a returned promise is awaited.
func Eval[T any](t testing.TB, tb *Tab, expr string) T {
	t.Helper()
	v, err := run(tb, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("e2e: evaluate in page: %v", err)
	}
	return v
}

// Location is the tab's current URL.
func (tb *Tab) Location(t testing.TB) string {
	t.Helper()
	loc, err := run(tb, chromedp.Location())
	if err != nil {
		t.Fatalf("e2e: location: %v", err)
	}
	return loc
}

// Cookies returns the browser's cookies for url through the DevTools
// protocol, HttpOnly ones included (what a cookie thief would copy).
func (tb *Tab) Cookies(t testing.TB, url string) []*network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		t.Fatalf("e2e: get cookies: %v", err)
	}
	return res.Cookies
}

// Screenshot saves a PNG of the whole page into dir and returns its path.
func (tb *Tab) Screenshot(t testing.TB, dir, name string) string {
	t.Helper()
	buf, err := run(tb, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("e2e: screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("e2e: save screenshot: %v", err)
	}
	return path
}

// Page states reported by stateScript.
const (
	stateActed         = "acted"          // the helpers already acted on this document
	stateLoading       = "loading:"       // document not complete yet, or #user not filled in
	stateSignedIn      = "app-signed-in"  // sample page, #user says "Signed in as …"
	stateSignedOut     = "app-signed-out" // sample page, #user says "Signed out."
	stateIDPLogin      = "idp-login"      // provider's login form (login, password)
	stateIDPConsent    = "idp-consent"    // provider's consent step
	stateIDPLogout     = "idp-logout"     // provider's "Do you want to sign-out" form
	stateIDPLoggedOut  = "idp-logged-out" // provider's "sign-out … was successful" page
	stateOtherPrefix   = "other:"         // anything else, with origin and path
	stateAppTextPrefix = "app:"           // sample page, any other #user text
)

// stateScript names what the tab shows. appOrigin is the BFF's origin.
func stateScript(appOrigin string) string {
	return `(() => {
  if (window.__e2eActed) return ` + strconv.Quote(stateActed) + `;
  const where = ' ' + document.readyState + ' ' + location.origin + location.pathname + ' ' + document.visibilityState;
  if (document.readyState !== 'complete') return ` + strconv.Quote(stateLoading) + ` + where;
  if (location.origin === ` + strconv.Quote(appOrigin) + `) {
    const u = document.getElementById('user');
    const s = u ? u.textContent : '';
    if (s.startsWith('Signed in as')) return ` + strconv.Quote(stateSignedIn) + `;
    if (s === 'Signed out.') return ` + strconv.Quote(stateSignedOut) + `;
    if (s === '' || s.startsWith('Loading')) return ` + strconv.Quote(stateLoading) + ` + where + ' #user=' + s;
    return ` + strconv.Quote(stateAppTextPrefix) + ` + s.slice(0, 200);
  }
  if (document.querySelector('input[name="login"]') && document.querySelector('input[name="password"]')) return ` + strconv.Quote(stateIDPLogin) + `;
  if (document.querySelector('input[name="prompt"][value="consent"]')) return ` + strconv.Quote(stateIDPConsent) + `;
  if (document.getElementById('op.logoutForm')) return ` + strconv.Quote(stateIDPLogout) + `;
  if (document.body && /sign-out.*was successful/i.test(document.body.innerText)) return ` + strconv.Quote(stateIDPLoggedOut) + `;
  return ` + strconv.Quote(stateOtherPrefix) + ` + location.origin + location.pathname + ' ' + (document.body ? document.body.innerText.slice(0, 200) : '');
})()`
}

// waitState polls the tab until it shows one of want and returns it.
// Errors while a navigation replaces the document are retried.
func (tb *Tab) waitState(appOrigin string, want ...string) (string, error) {
	script := stateScript(appOrigin)
	deadline := time.Now().Add(stateTimeout)
	last, lastErr := "", error(nil)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		st, err := chromedp.Run(ctx, chromedp.Evaluate[string](script))
		cancel()
		if err == nil {
			last, lastErr = st, nil
			if slices.Contains(want, st) {
				return st, nil
			}
		} else {
			lastErr = err
			if errors.Is(tb.ctx.Err(), context.Canceled) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last, fmt.Errorf("e2e: page did not reach %v within %s: last state %q, last error %v", want, stateTimeout, last, lastErr)
}

// WaitState is waitState for the test goroutine.
func (tb *Tab) WaitState(t testing.TB, appOrigin string, want ...string) string {
	t.Helper()
	st, err := tb.waitState(appOrigin, want...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// markActed flags the current document so that waitState does not report
// it again after the helpers submitted one of its forms.
func (tb *Tab) markActed() error {
	_, err := run(tb, chromedp.Evaluate[chromedp.Void](`window.__e2eActed = true`))
	return err
}

// fillLogin types user and a password into the provider's login form and
// submits it, the way a person does.
func (tb *Tab) fillLogin(user string) error {
	if err := tb.markActed(); err != nil {
		return fmt.Errorf("e2e: login form: %w", err)
	}
	_, err := run(tb, chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS(`input[name="login"]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "pw-"+user),
	))
	if err != nil {
		return fmt.Errorf("e2e: type into login form: %w", err)
	}
	return tb.click(`button[type="submit"]`)
}

// submitConsent presses the provider's consent button.
func (tb *Tab) submitConsent() error {
	if err := tb.markActed(); err != nil {
		return fmt.Errorf("e2e: consent form: %w", err)
	}
	return tb.click(`button[type="submit"]`)
}

// finishLogin continues from wherever the sign-in is (provider login form,
// consent step; the provider may skip consent) until the sample page shows
// a signed-in user. It returns errors instead of failing the test, so that
// tabs can sign in from several goroutines at once.
func (tb *Tab) finishLogin(appOrigin, user string) error {
	for range 6 {
		st, err := tb.waitState(appOrigin, stateIDPLogin, stateIDPConsent, stateSignedIn, stateSignedOut)
		if err != nil {
			return err
		}
		switch st {
		case stateSignedIn:
			return nil
		case stateSignedOut:
			return errors.New("e2e: sign-in ended on the app signed out")
		case stateIDPLogin:
			err = tb.fillLogin(user)
		case stateIDPConsent:
			err = tb.submitConsent()
		}
		if err != nil {
			return err
		}
	}
	return errors.New("e2e: sign-in did not finish after 6 pages")
}

// SignIn opens the sample page signed out, clicks "Sign in", passes the
// provider's login and consent forms as user and waits until the page
// shows the user.
func (tb *Tab) SignIn(t testing.TB, appURL, user string) {
	t.Helper()
	tb.StartSignIn(t, appURL)
	if err := tb.finishLogin(appURL, user); err != nil {
		t.Fatal(err)
	}
}

// StartSignIn opens the sample page, checks that it is signed out, clicks
// #login and waits for the provider's login form.
func (tb *Tab) StartSignIn(t testing.TB, appURL string) {
	t.Helper()
	tb.Navigate(t, appURL+"/")
	if st := tb.WaitState(t, appURL, stateSignedOut, stateSignedIn); st != stateSignedOut {
		t.Fatalf("e2e: the page is %s before sign-in, want %s", st, stateSignedOut)
	}
	tb.Click(t, "#login")
	tb.WaitState(t, appURL, stateIDPLogin)
}

// fetchResult is what a page script reads of one fetch() answer.
type fetchResult struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// Fetch calls fetch(path, {method, headers}) from page script and returns
// the status and body text, exactly what the app could read.
func (tb *Tab) Fetch(t testing.TB, method, path string, headers map[string]string) fetchResult {
	t.Helper()
	return Eval[fetchResult](t, tb, fetchScript(method, path, headers))
}

func fetchScript(method, path string, headers map[string]string) string {
	var h []string
	for k, v := range headers {
		h = append(h, strconv.Quote(k)+": "+strconv.Quote(v))
	}
	slices.Sort(h)
	return `fetch(` + strconv.Quote(path) + `, {method: ` + strconv.Quote(method) +
		`, credentials: 'same-origin', headers: {` + strings.Join(h, ", ") + `}})` +
		`.then(async (r) => ({status: r.status, body: await r.text()}))`
}
