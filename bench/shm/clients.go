package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/outrig/outrig/api/shm"
)

// caller performs one echo round trip; each benchmark goroutine owns one.
type caller interface {
	call(req []byte) (int, error) // returns the response size
}

// client is one connection of a mode, handing out callers for goroutines.
type client interface {
	newCaller() (caller, error)
	close()
}

func newClient(mode, addr string, cfg config) (client, error) {
	switch mode {
	case "direct":
		return directClient{redis.NewClient(&redis.Options{Addr: cfg.redis, PoolSize: 128})}, nil
	case "shm":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := shm.Dial(ctx, addr, shm.DialOptions{AppID: "bench", Spin: cfg.spin,
			RequestRingSize: uint32(cfg.ring), ResponseRingSize: uint32(cfg.ring)})
		if err != nil {
			return nil, err
		}
		return shmClient{c}, nil
	case "uds":
		return udsClient{addr: addr}, nil
	case "grpc", "grpcstream":
		cc, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		return &grpcClient{cc: cc, stream: mode == "grpcstream"}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}

// shm: one connection shared by every goroutine, as an app uses it.
type shmClient struct{ c *shm.ClientConn }

func (s shmClient) newCaller() (caller, error) { return s, nil }
func (s shmClient) close()                     { s.c.Close() }
func (s shmClient) call(req []byte) (int, error) {
	resp, err := s.c.Call(context.Background(), shm.MethodGetState, req)
	return len(resp), err
}

// uds: one socket per goroutine (a socket carries one round trip at a time).
type udsClient struct{ addr string }

func (u udsClient) close() {}
func (u udsClient) newCaller() (caller, error) {
	c, err := net.Dial("unix", u.addr)
	if err != nil {
		return nil, err
	}
	return &udsCaller{c: c}, nil
}

type udsCaller struct {
	c   net.Conn
	buf []byte
}

func (u *udsCaller) call(req []byte) (int, error) {
	u.buf = append(binary.LittleEndian.AppendUint32(u.buf[:0], uint32(len(req))), req...)
	if _, err := u.c.Write(u.buf); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(u.c, u.buf[:4]); err != nil {
		return 0, err
	}
	n := int(binary.LittleEndian.Uint32(u.buf))
	if cap(u.buf) < n {
		u.buf = make([]byte, n)
	}
	if _, err := io.ReadFull(u.c, u.buf[:n]); err != nil {
		return 0, err
	}
	return n, nil
}

// grpc: one HTTP/2 connection shared by every goroutine; unary calls, or
// one bidi stream per goroutine used for ping-pong.
type grpcClient struct {
	cc     *grpc.ClientConn
	stream bool
}

func (g *grpcClient) close() { g.cc.Close() }
func (g *grpcClient) newCaller() (caller, error) {
	if !g.stream {
		return grpcUnary{g.cc}, nil
	}
	st, err := g.cc.NewStream(context.Background(), &streamDesc, streamMethod)
	if err != nil {
		return nil, err
	}
	return grpcStream{st}, nil
}

type grpcUnary struct{ cc *grpc.ClientConn }

func (g grpcUnary) call(req []byte) (int, error) {
	out := new(wrapperspb.BytesValue)
	err := g.cc.Invoke(context.Background(), unaryMethod, wrapperspb.Bytes(req), out)
	return len(out.GetValue()), err
}

type grpcStream struct{ st grpc.ClientStream }

func (g grpcStream) call(req []byte) (int, error) {
	if err := g.st.SendMsg(wrapperspb.Bytes(req)); err != nil {
		return 0, err
	}
	out := new(wrapperspb.BytesValue)
	err := g.st.RecvMsg(out)
	return len(out.GetValue()), err
}

// direct: the client reads Redis itself (the baseline of the redis scenario).
type directClient struct{ rdb *redis.Client }

func (d directClient) newCaller() (caller, error) { return d, nil }
func (d directClient) close()                     { d.rdb.Close() }
func (d directClient) call(key []byte) (int, error) {
	v, err := d.rdb.Get(context.Background(), string(key)).Bytes()
	return len(v), err
}
