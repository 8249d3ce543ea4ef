// Package web embeds the browser page that serve hosts at /. It is plain
// HTML, CSS and JavaScript with no build step and no CDN, because production
// clusters often have no internet.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// Static is the page's files, rooted at the static folder (index.html at /).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the folder is embedded at build time; this cannot fail
	}
	return sub
}
