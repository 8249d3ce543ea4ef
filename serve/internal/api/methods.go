package api

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// allowed lists the methods registered for path (HEAD comes with GET), from
// the app's own routes, so a wrong method is answered 405 with an Allow
// header that cannot drift from the routing table. Wildcard routes (the
// static files' "/*") are left out: the caller knows they only take GET.
func allowed(app *fiber.App, path string) []string {
	var methods []string
	for _, r := range app.GetRoutes(true) {
		if strings.Contains(r.Path, "*") || !matchRoute(r.Path, path) || slices.Contains(methods, r.Method) {
			continue
		}
		methods = append(methods, r.Method)
	}
	slices.Sort(methods)
	return methods
}

// matchRoute reports whether path fits pattern segment by segment: a
// ":param" segment takes any non-empty segment, others must be equal.
func matchRoute(pattern, path string) bool {
	ps, xs := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, ":") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return true
}

// methodNotAllowed is 405 with Allow for a path that exists under other
// methods.
func methodNotAllowed(c *fiber.Ctx, methods []string) error {
	allow := strings.Join(methods, ", ")
	c.Set(fiber.HeaderAllow, allow)
	return fiber.NewError(fiber.StatusMethodNotAllowed, c.Method()+" is not allowed on "+c.Path()+"; allowed: "+allow)
}
