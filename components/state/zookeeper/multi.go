package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cstate "github.com/dapr/components-contrib/state"
	"github.com/go-zookeeper/zk"

	"github.com/outrig/outrig/errkind"
)

// Multi applies the operations in one ZooKeeper multi: all or none. ETags
// are checked against the nodes as they were before the transaction. A
// write without an ETag creates or overwrites depending on whether the node
// exists when the transaction is planned; if another client creates or
// deletes it in between, the multi fails as a whole and is planned again.
func (s *Store) Multi(ctx context.Context, req *cstate.TransactionalStateRequest) error {
	type step struct {
		path string
		data []byte
		del  bool
		want *int64
	}
	steps := make([]step, 0, len(req.Operations))
	for _, op := range req.Operations {
		switch r := op.(type) {
		case cstate.SetRequest:
			if err := cstate.CheckRequestOptions(r.Options); err != nil {
				return err
			}
			want, err := wantETag(r.ETag, r.Options.Concurrency)
			if err != nil {
				return err
			}
			data, err := valueBytes(r.Value)
			if err != nil {
				return err
			}
			p := s.path(r.Key)
			if err := s.checkSize(r.Key, p, data); err != nil {
				return err
			}
			steps = append(steps, step{path: p, data: data, want: want})
		case cstate.DeleteRequest:
			if err := cstate.CheckRequestOptions(r.Options); err != nil {
				return err
			}
			want, err := wantETag(r.ETag, r.Options.Concurrency)
			if err != nil {
				return err
			}
			steps = append(steps, step{path: s.path(r.Key), del: true, want: want})
		default:
			return fmt.Errorf("unsupported operation %T", op)
		}
	}
	if len(steps) == 0 {
		return nil
	}
	return s.do(ctx, func() error {
		for range raceRetries {
			// Plan against the nodes as they are now.
			exists := map[string]bool{}
			var ops []any
			for _, st := range steps {
				known, seen := exists[st.path]
				var version int32 = -1
				if !seen || st.want != nil {
					ok, stat, err := s.conn.Exists(st.path)
					if err != nil {
						return err
					}
					if st.want != nil && (!ok || stat.Mzxid != *st.want) {
						return cstate.NewETagError(cstate.ETagMismatch, fmt.Errorf("node %s", st.path))
					}
					if !seen {
						known = ok
					}
					if st.want != nil {
						version = stat.Version
					}
				}
				switch {
				case st.del && known:
					ops = append(ops, &zk.DeleteRequest{Path: st.path, Version: version})
				case st.del: // deleting a missing node: nothing to do
				case known:
					ops = append(ops, &zk.SetDataRequest{Path: st.path, Data: st.data, Version: version})
				default:
					ops = append(ops, &zk.CreateRequest{Path: st.path, Data: st.data, Acl: acl})
				}
				exists[st.path] = !st.del
			}
			if len(ops) == 0 {
				return nil
			}
			_, err := s.conn.Multi(ops...)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, zk.ErrBadVersion):
				return cstate.NewETagError(cstate.ETagMismatch, err)
			case errors.Is(err, zk.ErrNoNode), errors.Is(err, zk.ErrNodeExists):
				continue // raced with another client: plan again
			default:
				return err
			}
		}
		return fmt.Errorf("transaction: lost %d races with concurrent creates and deletes: %w", raceRetries, errkind.ErrUnavailable)
	})
}

func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, "/") {
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}
