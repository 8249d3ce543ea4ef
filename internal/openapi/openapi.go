// Package openapi holds serve's API description: internal/openapi/openapi.json,
// OpenAPI 3.1, written by hand and reviewed like code. It is the one source
// of truth tools read (client generators, the /docs reference, redocly lint);
// serve embeds it and answers GET /v1/openapi.json with it, and the contract
// package (internal/openapi/contract) holds serve's integration tests to it,
// so it cannot drift from the server unnoticed.
//
// This package is only the bytes: it imports nothing, so serve does not link
// an OpenAPI parser to serve a file.
package openapi

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

//go:embed openapi.json
var document []byte

// etag is the document's strong validator: a hash of its bytes.
var etag = func() string {
	sum := sha256.Sum256(document)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// JSON is the document as served. Callers must not modify it.
func JSON() []byte { return document }

// ETag is the document's entity tag (a content hash, quoted).
func ETag() string { return etag }
