package e2e

// The browser suite drives Debian's Chromium through chromedp.
import _ "github.com/chromedp/chromedp"
