package shm

import (
	"bytes"
	"context"
	"testing"
)

func TestEchoSmoke(t *testing.T) {
	checkLeaks(t)
	s := startServer(t, ServerOptions{}, echo)
	c := dial(t, s.Addr(), DialOptions{AppID: "smoke"})
	for i := 0; i < 100; i++ {
		req := bytes.Repeat([]byte{byte(i)}, i*100)
		resp, err := c.Call(context.Background(), MethodGetState, req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp, req) {
			t.Fatalf("call %d: got %d bytes, want %d", i, len(resp), len(req))
		}
	}
}
