//go:build ignore

// mongoprobe is the health check of the local FerretDB: it connects with the official
// MongoDB Go driver, pings, inserts one document and reads it back. It is built by
// scripts/backends/mongodb.sh inside FerretDB's own module (which already requires the
// driver), so the build tag above keeps it out of the Outrig module.
//
// Usage: mongoprobe mongodb://127.0.0.1:27017/
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mongoprobe MONGODB_URI")
		os.Exit(2)
	}
	if err := probe(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mongoprobe:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func probe(uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetServerSelectionTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", uri, err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()

	if err := client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	coll := client.Database("outrig_healthcheck").Collection("probe")
	id := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	if _, err := coll.InsertOne(ctx, bson.M{"_id": id, "at": time.Now().UTC()}); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	var got bson.M
	if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&got); err != nil {
		return fmt.Errorf("find %s: %w", id, err)
	}
	if _, err := coll.DeleteOne(ctx, bson.M{"_id": id}); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}
