package shm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestHandshakeRoundTrip(t *testing.T) {
	h := hello{minVersion: 1, maxVersion: 3, flags: helloCanReceiveFD, requestRingSize: 1 << 16, responseRingSize: 1 << 18, pid: 4242, appID: "checkout"}
	typ, body, err := splitMsg(h.encode())
	if err != nil || typ != msgHello {
		t.Fatalf("splitMsg: type %d, %v", typ, err)
	}
	gotH, err := decodeHello(body)
	if err != nil || gotH != h {
		t.Fatalf("decodeHello = %+v, %v; want %+v", gotH, err, h)
	}

	for _, w := range []welcome{
		{version: 1, flags: welcomeFD, segmentSize: 4096 + 2*MinRingSize},
		{version: 1, flags: welcomePath, segmentSize: 4096 + 2*DefaultRingSize, path: "/dev/shm/outrig-0123456789abcdef"},
	} {
		typ, body, err := splitMsg(w.encode())
		if err != nil || typ != msgWelcome {
			t.Fatalf("splitMsg: type %d, %v", typ, err)
		}
		got, err := decodeWelcome(body)
		if err != nil || got != w {
			t.Fatalf("decodeWelcome = %+v, %v; want %+v", got, err, w)
		}
	}

	r := reject{code: 9, message: "wire version 7 unsupported"}
	typ, body, err = splitMsg(r.encode())
	if err != nil || typ != msgReject {
		t.Fatalf("splitMsg: type %d, %v", typ, err)
	}
	if got, err := decodeReject(body); err != nil || got != r {
		t.Fatalf("decodeReject = %+v, %v; want %+v", got, err, r)
	}

	if typ, body, err := splitMsg(encodeReady()); err != nil || typ != msgReady || len(body) != 0 {
		t.Fatalf("ready: type %d body %d bytes, %v", typ, len(body), err)
	}
}

func TestHelloBytes(t *testing.T) {
	got := hello{minVersion: 1, maxVersion: 1, flags: 1, requestRingSize: 0x1000, pid: 0x01020304, appID: "a"}.encode()
	want := []byte{
		28, 0, 0, 0, // length: type + 26 fixed + 1
		0x01,               // hello
		'O', 'S', 'H', 'M', // magic
		1, 0, 1, 0, // versions
		1, 0, 0, 0, // flags
		0x00, 0x10, 0, 0, // request ring size
		0, 0, 0, 0, // response ring size
		0x04, 0x03, 0x02, 0x01, // pid
		1, 0, 'a', // app id
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("hello\n%x\nwant\n%x", got, want)
	}
}

func TestHandshakeRejects(t *testing.T) {
	body := func(b []byte) []byte { _, body, _ := splitMsg(b); return body }
	okHello := body(hello{minVersion: 1, maxVersion: 1, appID: "x"}.encode())
	tests := []struct {
		name   string
		decode func() error
		field  string
	}{
		{"hello short", func() error { _, err := decodeHello(okHello[:10]); return err }, "length"},
		{"hello magic", func() error {
			b := append([]byte(nil), okHello...)
			b[0] = 'X'
			_, err := decodeHello(b)
			return err
		}, "magic"},
		{"hello versions", func() error { _, err := decodeHello(body(hello{minVersion: 2, maxVersion: 1}.encode())); return err }, "version"},
		{"hello version 0", func() error { _, err := decodeHello(body(hello{maxVersion: 1}.encode())); return err }, "version"},
		{"hello flags", func() error {
			_, err := decodeHello(body(hello{minVersion: 1, maxVersion: 1, flags: 6}.encode()))
			return err
		}, "flags"},
		{"hello app id too long", func() error {
			_, err := decodeHello(body(hello{minVersion: 1, maxVersion: 1, appID: strings.Repeat("a", 300)}.encode()))
			return err
		}, "app_id"},
		{"hello app id not utf8", func() error {
			_, err := decodeHello(body(hello{minVersion: 1, maxVersion: 1, appID: "\xff"}.encode()))
			return err
		}, "app_id"},
		{"hello trailing byte", func() error { _, err := decodeHello(append(append([]byte(nil), okHello...), 0)); return err }, "length"},
		{"welcome both flags", func() error {
			_, err := decodeWelcome(body(welcome{version: 1, flags: 3, segmentSize: 1 << 20}.encode()))
			return err
		}, "flags"},
		{"welcome fd with path", func() error {
			_, err := decodeWelcome(body(welcome{version: 1, flags: welcomeFD, segmentSize: 1 << 20, path: "/x"}.encode()))
			return err
		}, "path"},
		{"welcome relative path", func() error {
			_, err := decodeWelcome(body(welcome{version: 1, flags: welcomePath, segmentSize: 1 << 20, path: "x"}.encode()))
			return err
		}, "path"},
		{"welcome tiny segment", func() error {
			_, err := decodeWelcome(body(welcome{version: 1, flags: welcomeFD, segmentSize: 4096}.encode()))
			return err
		}, "segment_size"},
		{"reject ok code", func() error { _, err := decodeReject(body(reject{code: 0, message: "x"}.encode())); return err }, "code"},
		{"message length 0", func() error { _, _, err := splitMsg([]byte{0, 0, 0, 0, 1}); return err }, "length"},
		{"message too long", func() error { _, _, err := splitMsg([]byte{0xff, 0xff, 0, 0, 1}); return err }, "length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode()
			var he *HandshakeError
			if !errors.As(err, &he) || he.Field != tt.field {
				t.Fatalf("err = %v, want a HandshakeError on %s", err, tt.field)
			}
		})
	}
}
