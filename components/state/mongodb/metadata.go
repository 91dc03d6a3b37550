package mongodb

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/mongo/readconcern"
	"go.mongodb.org/mongo-driver/mongo/writeconcern"
)

// Metadata keys, the same as components-contrib's state.mongodb.
const (
	mdHost             = "host"
	mdServer           = "server"
	mdUsername         = "username"
	mdPassword         = "password"
	mdDatabaseName     = "databaseName"
	mdCollectionName   = "collectionName"
	mdParams           = "params"
	mdConnectionString = "connectionString"
	mdOperationTimeout = "operationTimeout"
	mdWriteConcern     = "writeconcern"
	mdReadConcern      = "readconcern"

	defaultDatabase   = "daprStore"
	defaultCollection = "daprCollection"
	defaultTimeout    = 5 * time.Second
)

type settings struct {
	uri        string
	database   string
	collection string
	timeout    time.Duration
	wc         *writeconcern.WriteConcern
	rc         *readconcern.ReadConcern
}

func parseMetadata(md map[string]string) (settings, error) {
	s := settings{database: defaultDatabase, collection: defaultCollection, timeout: defaultTimeout}
	if v := md[mdDatabaseName]; v != "" {
		s.database = v
	}
	if v := md[mdCollectionName]; v != "" {
		s.collection = v
	}
	if v := strings.TrimSpace(md[mdOperationTimeout]); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("metadata %s %q: want a positive duration such as \"5s\"", mdOperationTimeout, v)
		}
		s.timeout = d
	}
	host, server := md[mdHost], md[mdServer]
	params := md[mdParams]
	if params != "" && !strings.HasPrefix(params, "?") {
		params = "?" + params
	}
	cred := ""
	if md[mdUsername] != "" && md[mdPassword] != "" {
		cred = md[mdUsername] + ":" + md[mdPassword] + "@"
	}
	switch {
	case md[mdConnectionString] != "":
		s.uri = md[mdConnectionString]
	case host != "" && server != "":
		return s, fmt.Errorf("metadata %s and %s: set one, not both", mdHost, mdServer)
	case host != "":
		s.uri = "mongodb://" + cred + host + "/" + s.database + params
	case server != "":
		s.uri = "mongodb+srv://" + cred + server + "/" + s.database + params
	default:
		return s, fmt.Errorf("metadata %s, %s or %s is required", mdHost, mdServer, mdConnectionString)
	}
	wc := writeconcern.W1()
	switch v := md[mdWriteConcern]; v {
	case "":
	case "majority":
		wc = writeconcern.Majority()
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s, fmt.Errorf("metadata %s %q: want \"majority\" or a number of nodes", mdWriteConcern, v)
		}
		wc = &writeconcern.WriteConcern{W: n}
	}
	s.wc = wc
	switch v := md[mdReadConcern]; v {
	case "", "local":
		s.rc = readconcern.Local()
	case "majority":
		s.rc = readconcern.Majority()
	case "available":
		s.rc = readconcern.Available()
	case "linearizable":
		s.rc = readconcern.Linearizable()
	case "snapshot":
		s.rc = readconcern.Snapshot()
	default:
		return s, fmt.Errorf("metadata %s %q: want local, majority, available, linearizable or snapshot", mdReadConcern, v)
	}
	return s, nil
}
