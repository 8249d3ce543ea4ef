package api

import (
	"mime"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Headers every answer carries: the API's JSON and error bodies must never
// be sniffed into HTML or script by a browser.
const headerNoSniff = "X-Content-Type-Options"

// The web page's policy: everything from this origin only (the page has no
// inline script or style, and fetches only its own API), never framed (no
// clickjacking of the like buttons), no Referer leaving the site (a deep
// link names a user id).
const (
	pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	referrerPolicy = "no-referrer"
)

// pageHeaders sets the page and asset security headers.
func pageHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentSecurityPolicy, pageCSP)
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, referrerPolicy)
}

// guardWrites refuses writes (every method but GET, HEAD and OPTIONS) that
// a browser sent on behalf of another site, and write bodies that are not
// JSON.
//
// A cross-site form or fetch() "simple" request (text/plain, no preflight)
// carries the visitor's network position to an intranet deployment; with
// no credentials in play (the loopback playground) that alone would let any
// web page write. Browsers say where a request comes from: Sec-Fetch-Site
// (anything but same-origin or none is refused) and Origin (its host must
// be this request's Host). Non-browser clients send neither and pass.
// Requiring application/json on bodies closes the simple-request path even
// for a browser too old to send either header: a cross-site JSON request
// needs a CORS preflight, which serve never grants.
func guardWrites(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	if site := c.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fiber.NewError(fiber.StatusForbidden, "cross-site writes are refused (Sec-Fetch-Site: "+site+")")
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && !sameOrigin(origin, c.Get(fiber.HeaderHost)) {
		return fiber.NewError(fiber.StatusForbidden, "cross-site writes are refused: Origin "+origin+" is not this site")
	}
	if len(c.Request().Body()) > 0 && !isJSON(c.Get(fiber.HeaderContentType)) {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "write bodies must be JSON (Content-Type: application/json)")
	}
	return c.Next()
}

// sameOrigin reports whether origin (scheme://host[:port]) names host, the
// request's Host header. The scheme is not compared: behind a TLS-
// terminating ingress the page is https and serve sees plain HTTP, with the
// Host preserved.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || host == "" {
		return false // "null" (sandboxed frames, file:) and garbage
	}
	return strings.EqualFold(u.Host, host) ||
		strings.EqualFold(stripDefaultPort(u.Host, u.Scheme), stripDefaultPort(host, u.Scheme))
}

func stripDefaultPort(host, scheme string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// isJSON accepts application/json and application/*+json, with parameters.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == fiber.MIMEApplicationJSON || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// etagMatches reports whether an If-None-Match header matches etag by the
// weak comparison RFC 9110 §13.1.2 prescribes for it: "*", or any entry of
// the comma-separated list equal to etag once W/ is dropped from both.
func etagMatches(header, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, e := range strings.Split(header, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || strings.TrimPrefix(e, "W/") == etag {
			return true
		}
	}
	return false
}
