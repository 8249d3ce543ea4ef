// Command ping checks that PostgreSQL and Redis answer, so `make test` can
// fail loudly before any test runs instead of skipping.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ping POSTGRES_URL REDIS_URL")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok := true
	if conn, err := pgx.Connect(ctx, os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "PostgreSQL is not reachable: %v\n", err)
		ok = false
	} else {
		conn.Close(ctx)
	}
	if opts, err := redis.ParseURL(os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "bad Redis URL: %v\n", err)
		ok = false
	} else if err := redis.NewClient(opts).Ping(ctx).Err(); err != nil {
		fmt.Fprintf(os.Stderr, "Redis is not reachable: %v\n", err)
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
}
