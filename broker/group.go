package broker

import (
	"cmp"
	"slices"
	"time"

	brokerv1 "github.com/outrig/outrig/api/gen/outrig/broker/v1"
)

// message is one published message; it is immutable and shared by the
// groups it was copied to.
type message struct {
	topic       string
	data        []byte
	contentType string
	metadata    map[string]string
	size        int64 // bytes counted against a group's byte limit
}

func newMessage(req *brokerv1.PublishRequest) *message {
	m := &message{
		topic:       req.GetTopic(),
		data:        req.GetData(),
		contentType: req.GetContentType(),
		metadata:    req.GetMetadata(),
	}
	m.size = int64(len(m.data) + len(m.contentType) + len(m.topic))
	for k, v := range m.metadata {
		m.size += int64(len(k) + len(v))
	}
	return m
}

// entry is a message in one group: it counts against the group's limits from
// publish until it is acknowledged.
type entry struct {
	msg      *message
	attempts uint32 // deliveries to this group so far
}

// delivery is an entry handed to one member, waiting for its ack.
type delivery struct {
	id      uint64
	e       *entry
	attempt uint32 // e.attempts when delivered; e may be delivered again later
	sent    bool   // handed to the stream; only sent deliveries may be acked
}

func (d *delivery) response() *brokerv1.SubscribeResponse {
	m := d.e.msg
	return &brokerv1.SubscribeResponse{Response: &brokerv1.SubscribeResponse_Message{Message: &brokerv1.Message{
		DeliveryId:  d.id,
		Topic:       m.topic,
		Data:        m.data,
		ContentType: m.contentType,
		Metadata:    m.metadata,
		Attempt:     d.attempt,
	}}}
}

// fifo is a queue of entries.
type fifo struct {
	items []*entry
	head  int
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(e *entry) { q.items = append(q.items, e) }

func (q *fifo) pop() *entry {
	e := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && q.head*2 >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return e
}

// topic holds the groups subscribed to one topic.
type topic struct {
	name   string
	groups map[string]*group
}

// group is one consumer group of one topic. All fields are guarded by
// Server.mu.
type group struct {
	name    string
	topic   *topic
	retry   fifo // redeliveries, served before ready
	ready   fifo // published, never delivered
	members []*member
	rr      int // index of the member to try first

	count int   // entries held: queued, in flight or waiting for redelivery
	bytes int64 // their sizes

	idleSince time.Time // when the last member left
	removed   bool      // dropped from its topic; pending redeliveries are discarded
}

// member is one Subscribe stream in a group. Guarded by Server.mu, except
// wake.
type member struct {
	g        *group
	inflight map[uint64]*delivery
	out      []*delivery   // delivered, not yet taken by the stream's sender
	wake     chan struct{} // capacity 1: out has something
	left     bool
}

func (m *member) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// dispatchLocked hands queued entries to members with room, round robin.
func (s *Server) dispatchLocked(g *group) {
	for g.retry.len()+g.ready.len() > 0 {
		m := s.nextMemberLocked(g)
		if m == nil {
			return
		}
		var e *entry
		if g.retry.len() > 0 {
			e = g.retry.pop()
		} else {
			e = g.ready.pop()
		}
		e.attempts++
		s.nextID++
		d := &delivery{id: s.nextID, e: e, attempt: e.attempts}
		m.inflight[d.id] = d
		m.out = append(m.out, d)
		m.signal()
	}
}

// nextMemberLocked returns the next member, in turn, that may take one more
// message, or nil when all are full.
func (s *Server) nextMemberLocked(g *group) *member {
	n := len(g.members)
	for i := range n {
		idx := (g.rr + i) % n
		if m := g.members[idx]; len(m.inflight) < s.opts.MaxInFlight {
			g.rr = (idx + 1) % n
			return m
		}
	}
	return nil
}

// releaseLocked forgets an acknowledged entry.
func (g *group) releaseLocked(e *entry) {
	g.count--
	g.bytes -= e.msg.size
}

// redeliverLaterLocked queues e again after the redelivery delay.
func (s *Server) redeliverLaterLocked(g *group, e *entry) {
	s.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(s.opts.RedeliveryDelay, func() {
		defer s.wg.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.timers[t]; !ok { // stopped by Close
			return
		}
		delete(s.timers, t)
		if g.removed {
			return
		}
		g.retry.push(e)
		s.dispatchLocked(g)
	})
	s.timers[t] = struct{}{}
}

// leaveLocked removes a member whose stream ended and redelivers what it held.
func (s *Server) leaveLocked(m *member, now time.Time) {
	if m.left {
		return
	}
	m.left = true
	g := m.g
	i := slices.Index(g.members, m)
	g.members = slices.Delete(g.members, i, i+1)
	if g.rr > i {
		g.rr--
	}
	if len(g.members) > 0 {
		g.rr %= len(g.members)
	} else {
		g.rr = 0
		g.idleSince = now
	}
	held := make([]*delivery, 0, len(m.inflight))
	for _, d := range m.inflight {
		held = append(held, d)
	}
	slices.SortFunc(held, func(a, b *delivery) int { return cmp.Compare(a.id, b.id) })
	for _, d := range held {
		if d.sent {
			s.redeliverLaterLocked(g, d.e)
		} else {
			// Never reached the member: it goes back at once, uncounted.
			d.e.attempts--
			g.retry.push(d.e)
		}
	}
	m.inflight, m.out = nil, nil
	s.dispatchLocked(g)
}

// expireIdleLocked drops the groups of t that have had no member for the
// retention period, and t itself once it has no group.
func (s *Server) expireIdleLocked(t *topic, now time.Time) {
	for name, g := range t.groups {
		if len(g.members) == 0 && now.Sub(g.idleSince) >= s.opts.GroupRetention {
			g.removed = true
			delete(t.groups, name)
		}
	}
	if len(t.groups) == 0 {
		delete(s.topics, t.name)
	}
}
