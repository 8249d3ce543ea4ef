package api

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// sinks keep the benchmark's copies alive past the request, as serve does.
var sinkMethod, sinkUser string

// BenchmarkFiberImmutable is the price of Fiber's Immutable setting (every
// string Fiber returns is copied) against copying only the values kept past
// the request, on the shape of a near-cache hit: the middleware reads the
// request id and method, the handler a path parameter, a query parameter and
// sends a 700-byte body. Handlers run in-process on a reused
// fasthttp.RequestCtx, so the figure is the framework's per-request cost
// alone (docs/RELIABILITY.md, "Request strings").
func BenchmarkFiberImmutable(b *testing.B) {
	body := []byte(strings.Repeat("x", 700))
	for _, immutable := range []bool{false, true} {
		b.Run(fmt.Sprintf("immutable=%v", immutable), func(b *testing.B) {
			app := fiber.New(fiber.Config{Immutable: immutable, DisableStartupMessage: true})
			app.Use(func(c *fiber.Ctx) error {
				id := c.Get(fiber.HeaderXRequestID)
				if !immutable {
					id = strings.Clone(id) // what edge does
				}
				c.Set(fiber.HeaderXRequestID, id)
				err := c.Next()
				sinkMethod = methodLabel(c.Method())
				return err
			})
			app.Get("/v1/users/:user_id/recommendations", func(c *fiber.Ctx) error {
				u := c.Params("user_id")
				if !immutable {
					u = strings.Clone(u) // what userParam does
				}
				sinkUser = u // kept, as the near cache keeps the user id
				n, _ := strconv.Atoi(c.Query("n"))
				if len(u) == 0 || n != 5 {
					return fiber.ErrBadRequest
				}
				c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
				return c.Send(body)
			})
			h := app.Handler()
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod(fiber.MethodGet)
				ctx.Request.SetRequestURI("/v1/users/some-user-42/recommendations?n=5")
				ctx.Request.Header.Set(fiber.HeaderXRequestID, "req-123456")
				h(&ctx)
				if ctx.Response.StatusCode() != fiber.StatusOK {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
			}
		})
	}
}
