package config_test

import (
	"testing"

	"github.com/setlist/setlist/internal/config"
	"github.com/setlist/setlist/internal/keyspace"
)

// The flag's default and the key builder's fallback for "" must name the
// same namespace, or a binary started without --redis-prefix and a reader
// built with "" would not see each other's keys.
func TestDefaultRedisPrefixMatchesModelstore(t *testing.T) {
	if config.DefaultRedisPrefix != keyspace.DefaultPrefix {
		t.Fatalf("config.DefaultRedisPrefix = %q, keyspace.DefaultPrefix = %q", config.DefaultRedisPrefix, keyspace.DefaultPrefix)
	}
}
