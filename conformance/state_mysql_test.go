package conformance

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver the state.mysql component uses
)

// mysqlBinarySchema creates the schema (if missing) with a binary, no-pad
// collation, as examples/components/state-mysql.yaml asks of its users: the
// component creates a missing schema with the server's default collation,
// which is case- and accent-insensitive, so that "Key" and "key" would be one
// row. An existing schema with another collation is a setup error.
func mysqlBinarySchema(t testing.TB, addr, schema string) {
	t.Helper()
	db, err := sql.Open("mysql", "outrig:outrig@tcp("+addr+")/?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+schema+" CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	var coll string
	if err := db.QueryRowContext(ctx, "SELECT DEFAULT_COLLATION_NAME FROM information_schema.schemata WHERE SCHEMA_NAME = ?", schema).Scan(&coll); err != nil {
		t.Fatal(err)
	}
	if coll != "utf8mb4_nopad_bin" {
		t.Fatalf("schema %s has collation %s; drop it or alter it to utf8mb4_nopad_bin (and its state table's id column)", schema, coll)
	}
}
