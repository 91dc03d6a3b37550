// Package mongodb is Outrig's native state.mongodb component, on the
// MongoDB Go driver (v1).
//
// It replaces components-contrib's state.mongodb (v1.16.0), which cannot
// start against the MongoDB-wire server this project runs (FerretDB): its
// Init insists on a TTL index ("expireAfterSeconds is not implemented"),
// and its reads and writes depend on $expr with $$NOW and on update
// pipelines. It also stores a binary value as a BSON string, which must be
// UTF-8, and declares transactions that fail unless the connection names a
// replica set.
//
// Documents keep contrib's shape — {_id: key, value, _etag, _ttl} — so the
// two read each other's data. A value is stored as a BSON string when it is
// valid UTF-8 (as contrib does) and as BSON binary otherwise. The ETag is a
// random UUID replaced on every write. Expiry is checked on every read and
// conditional write against the sidecar's clock, so it is exact whether or
// not the server deletes expired documents itself; a TTL index is created
// when the server supports one, and otherwise a janitor deletes expired
// documents once a minute. Transactions are not offered.
//
// FerretDB (v1) runs an update as a query followed by a write by _id, so a
// filter on _etag does not make it atomic: two writers holding the same ETag
// can both succeed (and a filter beyond _id makes it scan the collection).
// When Init finds FerretDB (buildInfo.ferretdbVersion), the store serialises
// its own writes per key (keyLocks) and checks ETags by reading the document
// by _id under that lock, which makes ETags first-write-wins among the calls
// of this sidecar; it logs a warning that writers in other processes are not
// covered. Against MongoDB, the filtered
// replace and delete are atomic per document and no lock is taken.
//
// A Store is safe for concurrent use after Init; Close disconnects.
package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dapr/components-contrib/metadata"
	cstate "github.com/dapr/components-contrib/state"
	"github.com/dapr/components-contrib/state/utils"
	"github.com/dapr/kit/logger"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Field names, as contrib's.
const (
	fID    = "_id"
	fValue = "value"
	fETag  = "_etag"
	fTTL   = "_ttl"
)

const janitorInterval = time.Minute

// Store is the state.mongodb component.
type Store struct {
	cstate.BulkStore // BulkSet/BulkDelete: parallel single-key calls

	log     logger.Logger
	client  *mongo.Client
	coll    *mongo.Collection
	timeout time.Duration
	now     func() time.Time

	locks *keyLocks // nil unless the server is FerretDB

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns an uninitialised store (the component factory).
func New(log logger.Logger) cstate.Store {
	s := &Store{log: log, now: time.Now}
	s.BulkStore = cstate.NewDefaultBulkStore(s)
	return s
}

// Init connects, pings and prepares expiry (index or janitor), within ctx.
func (s *Store) Init(ctx context.Context, md cstate.Metadata) error {
	set, err := parseMetadata(md.Properties)
	if err != nil {
		return err
	}
	s.timeout = set.timeout
	opts := options.Client().ApplyURI(set.uri).SetAppName("outrig")
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("mongodb connection: %w", err)
	}
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return fmt.Errorf("mongodb connect: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return fmt.Errorf("mongodb ping: %w", err)
	}
	s.client = client
	s.coll = client.Database(set.database).Collection(set.collection,
		options.Collection().SetWriteConcern(set.wc).SetReadConcern(set.rc))
	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		_ = client.Disconnect(context.Background())
		return fmt.Errorf("mongodb buildInfo: %w", err)
	}
	if v, ok := info["ferretdbVersion"]; ok {
		s.locks = &keyLocks{}
		s.log.Warnf("server is FerretDB %v: conditional writes (ETags) are atomic only among the calls of this sidecar", v)
	}
	_, err = s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: fTTL, Value: 1}},
		Options: options.Index().SetExpireAfterSeconds(0),
	})
	s.stop = make(chan struct{})
	if err != nil {
		s.log.Infof("no TTL index on %s.%s (%v); deleting expired documents every %s instead", set.database, set.collection, err, janitorInterval)
		s.wg.Add(1)
		go s.janitor()
	}
	return nil
}

func (s *Store) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			_, err := s.coll.DeleteMany(ctx, bson.D{{Key: fTTL, Value: bson.D{{Key: "$lte", Value: s.now()}}}})
			cancel()
			if err != nil {
				s.log.Warnf("deleting expired documents: %v", err)
			}
		}
	}
}

// Features: ETags and TTLs.
func (s *Store) Features() []cstate.Feature {
	return []cstate.Feature{cstate.FeatureETag, cstate.FeatureTTL}
}

// GetComponentMetadata is for contrib's metadata tooling; nothing to report.
func (s *Store) GetComponentMetadata() metadata.MetadataMap { return metadata.MetadataMap{} }

// Ping checks the connection.
func (s *Store) Ping(ctx context.Context) error { return s.client.Ping(ctx, nil) }

// Close stops the janitor and disconnects.
func (s *Store) Close() error {
	if s.client == nil {
		return nil
	}
	close(s.stop)
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// bound applies operationTimeout to a call whose context has no deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// live matches documents that have not expired.
func (s *Store) live() bson.E {
	return bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: fTTL, Value: nil}},
		bson.D{{Key: fTTL, Value: bson.D{{Key: "$gt", Value: s.now()}}}},
	}}
}

type doc struct {
	Key   string        `bson:"_id"`
	Value bson.RawValue `bson:"value"`
	ETag  string        `bson:"_etag"`
	TTL   *time.Time    `bson:"_ttl"`
}

func (s *Store) expired(d *doc) bool { return d.TTL != nil && !d.TTL.After(s.now()) }

// decode returns a stored value's bytes: a string or binary as is, anything
// else (documents written by Dapr from JSON) as JSON.
func decode(v bson.RawValue) ([]byte, error) {
	switch v.Type {
	case bsontype.String:
		return []byte(v.StringValue()), nil
	case bsontype.Binary:
		_, b := v.Binary()
		return b, nil
	case bsontype.Null, 0:
		return []byte{}, nil
	}
	var x any
	if err := v.Unmarshal(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

func encode(v any) (any, error) {
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		return nil, fmt.Errorf("value of type %T: want bytes", v)
	}
	if utf8.Valid(b) {
		return string(b), nil
	}
	return primitive.Binary{Data: b}, nil
}

// Get reads a key; an expired document is missing.
func (s *Store) Get(ctx context.Context, req *cstate.GetRequest) (*cstate.GetResponse, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var d doc
	err := s.coll.FindOne(ctx, bson.D{{Key: fID, Value: req.Key}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return &cstate.GetResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if s.expired(&d) {
		return &cstate.GetResponse{}, nil
	}
	return s.response(&d)
}

func (s *Store) response(d *doc) (*cstate.GetResponse, error) {
	data, err := decode(d.Value)
	if err != nil {
		return nil, fmt.Errorf("value of %s: %w", d.Key, err)
	}
	etag := d.ETag
	resp := &cstate.GetResponse{Data: data, ETag: &etag}
	if d.TTL != nil {
		resp.Metadata = map[string]string{cstate.GetRespMetaKeyTTLExpireTime: d.TTL.UTC().Format(time.RFC3339)}
	}
	return resp, nil
}

// BulkGet reads keys with one query.
func (s *Store) BulkGet(ctx context.Context, reqs []cstate.GetRequest, _ cstate.BulkGetOpts) ([]cstate.BulkGetResponse, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	keys := make(bson.A, len(reqs))
	for i, r := range reqs {
		keys[i] = r.Key
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: fID, Value: bson.D{{Key: "$in", Value: keys}}}})
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	found := make(map[string]*doc, len(reqs))
	for cur.Next(ctx) {
		var d doc
		if err := cur.Decode(&d); err != nil {
			return nil, err
		}
		if !s.expired(&d) {
			found[d.Key] = &d
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	out := make([]cstate.BulkGetResponse, len(reqs))
	for i, r := range reqs {
		out[i].Key = r.Key
		d := found[r.Key]
		if d == nil {
			continue
		}
		resp, err := s.response(d)
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		out[i].Data, out[i].ETag, out[i].Metadata = resp.Data, resp.ETag, resp.Metadata
	}
	return out, nil
}

func conditional(etag *string, concurrency string) (string, bool) {
	if etag == nil || *etag == "" || concurrency == cstate.LastWrite {
		return "", false
	}
	return *etag, true
}

// Set writes a key; with an ETag only if it matches a live document.
func (s *Store) Set(ctx context.Context, req *cstate.SetRequest) error {
	if err := cstate.CheckRequestOptions(req.Options); err != nil {
		return err
	}
	v, err := encode(req.Value)
	if err != nil {
		return err
	}
	ttl, err := utils.ParseTTL(req.Metadata)
	if err != nil {
		return err
	}
	d := bson.D{{Key: fID, Value: req.Key}, {Key: fValue, Value: v}, {Key: fETag, Value: uuid.NewString()}}
	if ttl != nil && *ttl > 0 {
		d = append(d, bson.E{Key: fTTL, Value: s.now().Add(time.Duration(*ttl) * time.Second)})
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	defer s.locks.lock(req.Key)()
	byID := bson.D{{Key: fID, Value: req.Key}}
	etag, cond := conditional(req.ETag, req.Options.Concurrency)
	if !cond {
		_, err := s.coll.ReplaceOne(ctx, byID, d, options.Replace().SetUpsert(true))
		if mongo.IsDuplicateKeyError(err) { // two upserts raced to insert; the other one won
			_, err = s.coll.ReplaceOne(ctx, byID, d)
		}
		return err
	}
	if s.locks != nil { // FerretDB: check under the key's lock, then write by _id
		if err := s.checkLive(ctx, req.Key, etag); err != nil {
			return err
		}
		_, err := s.coll.ReplaceOne(ctx, byID, d)
		return err
	}
	res, err := s.coll.ReplaceOne(ctx, bson.D{{Key: fID, Value: req.Key}, {Key: fETag, Value: etag}, s.live()}, d)
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return cstate.NewETagError(cstate.ETagMismatch, nil)
	}
	return nil
}

// checkLive reads key by _id (FerretDB resolves that without a scan) and
// checks that it is live and carries etag.
func (s *Store) checkLive(ctx context.Context, key, etag string) error {
	var d doc
	err := s.coll.FindOne(ctx, bson.D{{Key: fID, Value: key}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return cstate.NewETagError(cstate.ETagMismatch, nil)
	}
	if err != nil {
		return err
	}
	if s.expired(&d) || d.ETag != etag {
		return cstate.NewETagError(cstate.ETagMismatch, nil)
	}
	return nil
}

// Delete deletes a key; with an ETag only if it matches a live document.
func (s *Store) Delete(ctx context.Context, req *cstate.DeleteRequest) error {
	if err := cstate.CheckRequestOptions(req.Options); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	defer s.locks.lock(req.Key)()
	filter := bson.D{{Key: fID, Value: req.Key}}
	etag, cond := conditional(req.ETag, req.Options.Concurrency)
	if cond && s.locks != nil { // FerretDB: check under the key's lock, then delete by _id
		if err := s.checkLive(ctx, req.Key, etag); err != nil {
			return err
		}
		_, err := s.coll.DeleteOne(ctx, filter)
		return err
	}
	if cond {
		filter = append(filter, bson.E{Key: fETag, Value: etag}, s.live())
	}
	res, err := s.coll.DeleteOne(ctx, filter)
	if err != nil {
		return err
	}
	if cond && res.DeletedCount == 0 {
		return cstate.NewETagError(cstate.ETagMismatch, nil)
	}
	return nil
}
