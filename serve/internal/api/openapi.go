package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist/internal/openapi"
)

// openAPI is GET /v1/openapi.json: the embedded OpenAPI document, with a
// strong ETag (304 on a match) and no-cache, so a deploy's new description
// is seen at once and an unchanged one costs a revalidation.
func (a *API) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderETag, openapi.ETag())
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, openapi.ETag()) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openapi.JSON())
}
