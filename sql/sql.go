// Package sql embeds the schema migrations so that both binaries carry them
// and apply them on start; the .sql files are the single source of the schema.
package sql

import "embed"

// Postgres holds the PostgreSQL migrations, applied in lexical file order.
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the embedded backend's migrations (batch/sqlite), applied in
// lexical file order.
//
//go:embed sqlite/*.sql
var SQLite embed.FS
