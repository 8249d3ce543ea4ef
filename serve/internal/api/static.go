package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// static serves the embedded web page from memory. Every file gets a strong
// ETag (content hash) so revalidation is a 304; HTML is "no-cache" (always
// revalidated, so a deploy shows at once) and other assets may be reused for
// an hour without asking. Every file carries the page's security headers
// (security.go).
type static struct {
	files map[string]staticFile
}

type staticFile struct {
	body        []byte
	etag        string
	contentType string
	cache       string
}

func newStatic(fsys fs.FS) (*static, error) {
	s := &static{files: map[string]staticFile{}}
	if fsys == nil {
		return s, nil
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		cache := "public, max-age=3600"
		if strings.HasSuffix(p, ".html") {
			cache = "no-cache"
		}
		s.files["/"+p] = staticFile{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct, cache: cache}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load the web page: %w", err)
	}
	return s, nil
}

func (s *static) serve(c *fiber.Ctx) error {
	p := c.Path()
	if strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	f, ok := s.files[p]
	if _, dir := s.files[p+"/index.html"]; !ok && dir {
		// A folder named without its slash (/docs): its index's relative
		// links need the slash.
		return c.Redirect(p+"/", fiber.StatusMovedPermanently)
	}
	if !ok {
		// The page routes on its hash; /runs/{id}, the search view's
		// shareable address, is that view's hash route.
		if id, found := strings.CutPrefix(p, "/runs/"); found && id != "" && strings.Trim(id, "0123456789") == "" {
			return c.Redirect("/#/runs/"+id, fiber.StatusFound)
		}
		return fiber.NewError(fiber.StatusNotFound, "no such page: "+c.Path())
	}
	c.Set(fiber.HeaderETag, f.etag)
	c.Set(fiber.HeaderCacheControl, f.cache)
	pageHeaders(c)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, f.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, f.contentType)
	return c.Send(f.body)
}
