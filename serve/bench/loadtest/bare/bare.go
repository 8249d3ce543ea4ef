// Package bare is the baseline serve is measured against: a Fiber v2 handler
// that answers a recommendation request with one go-redis GET of the user's
// stored list and nothing else (no validation, no decoding, no metrics, no
// fallback). Serve's batch-hit path should match it.
package bare

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
)

// New returns the bare app serving version v's lists under keys.
func New(rdb redis.UniversalClient, keys keyspace.Keys, v keyspace.Version) *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/users/:user_id/recommendations", func(c *fiber.Ctx) error {
		b, err := rdb.Get(c.Context(), keys.Recs(v, setlist.UserID(c.Params("user_id")))).Bytes()
		if errors.Is(err, redis.Nil) {
			return c.SendStatus(fiber.StatusNotFound)
		}
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "application/octet-stream")
		return c.Send(b)
	})
	return app
}

// NewMGet is New with serve's Redis operation instead of a GET: the MGET of
// the user's list, cached fold-in and touched time, answering the list's
// bytes. It separates what the extra keys cost Redis and the client from
// what serve's own code costs.
func NewMGet(rdb redis.UniversalClient, keys keyspace.Keys, v keyspace.Version) *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/users/:user_id/recommendations", func(c *fiber.Ctx) error {
		u := setlist.UserID(c.Params("user_id"))
		vals, err := rdb.MGet(c.Context(), keys.Recs(v, u), keys.FoldIn(v, u), keys.Touched(u)).Result()
		if err != nil {
			return err
		}
		s, ok := vals[0].(string)
		if !ok {
			return c.SendStatus(fiber.StatusNotFound)
		}
		c.Set(fiber.HeaderContentType, "application/octet-stream")
		return c.SendString(s)
	})
	return app
}
