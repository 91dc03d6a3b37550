package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/outrig/outrig/api/shm"
)

// The echo service used by the two gRPC modes, declared by hand so the
// benchmark needs no generated code: a unary method and a bidi stream, both
// carrying a BytesValue.
func echoDesc(answer func([]byte) ([]byte, error)) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "outrig.bench.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Unary",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.BytesValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				out, err := answer(in.Value)
				return wrapperspb.Bytes(out), err
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Stream",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				for {
					in := new(wrapperspb.BytesValue)
					if err := stream.RecvMsg(in); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
					out, err := answer(in.Value)
					if err != nil {
						return err
					}
					if err := stream.SendMsg(wrapperspb.Bytes(out)); err != nil {
						return err
					}
				}
			},
		}},
	}
}

const (
	unaryMethod  = "/outrig.bench.Echo/Unary"
	streamMethod = "/outrig.bench.Echo/Stream"
)

// streamDesc is the client's view of the bidi method.
var streamDesc = grpc.StreamDesc{StreamName: "Stream", ServerStreams: true, ClientStreams: true}

func redisKey(size int) string { return fmt.Sprintf("outrig:bench:shm:%d", size) }

// seedRedis stores the values the redis scenario reads.
func seedRedis(addr string, sizes []int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for _, s := range sizes {
		if err := rdb.Set(context.Background(), redisKey(s), strings.Repeat("v", s), 0).Err(); err != nil {
			return fmt.Errorf("seeding Redis at %s: %w", addr, err)
		}
	}
	return nil
}

// answerer returns what the server does with a request: echo it, or GET
// the key it names from Redis.
func answerer(cfg config) func([]byte) ([]byte, error) {
	if cfg.scenario != "redis" {
		return func(req []byte) ([]byte, error) { return req, nil }
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.redis, PoolSize: 128})
	return func(req []byte) ([]byte, error) {
		return rdb.Get(context.Background(), string(req)).Bytes()
	}
}

// serve runs the server of one mode on the Unix socket addr, prints "ready"
// on stdout once it accepts connections, and runs until killed.
func serve(mode, addr string, cfg config) error {
	answer := answerer(cfg)
	switch mode {
	case "shm":
		s, err := shm.Listen(addr, shm.ServerOptions{Spin: cfg.spin})
		if err != nil {
			return err
		}
		fmt.Println("ready")
		return s.Serve(shm.HandlerFunc(func(_ context.Context, _ uint16, req []byte) ([]byte, error) { return answer(req) }))
	case "uds":
		ln, err := net.Listen("unix", addr)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			go answerConn(c, answer)
		}
	case "grpc", "grpcstream":
		ln, err := net.Listen("unix", addr)
		if err != nil {
			return err
		}
		s := grpc.NewServer()
		s.RegisterService(echoDesc(answer), struct{}{})
		fmt.Println("ready")
		return s.Serve(ln)
	}
	return fmt.Errorf("unknown server mode %q", mode)
}

// answerConn answers length-prefixed messages on a raw Unix socket.
func answerConn(c net.Conn, answer func([]byte) ([]byte, error)) {
	defer c.Close()
	var hdr [4]byte
	buf := make([]byte, 0, 64<<10)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if cap(buf) < int(4+n) {
			buf = make([]byte, 4+n)
		}
		buf = buf[:4+n]
		if _, err := io.ReadFull(c, buf[4:]); err != nil {
			return
		}
		out, err := answer(buf[4:])
		if err != nil {
			return
		}
		buf = append(binary.LittleEndian.AppendUint32(buf[:0], uint32(len(out))), out...)
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func serveMain(mode, addr string, cfg config) {
	if err := serve(mode, addr, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
