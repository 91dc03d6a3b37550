//go:build !linux

package shm

import (
	"errors"
	"net"
)

var errUnsupported = errors.New("shm: the shared-memory transport needs Linux")

func platformSupported() error { return errUnsupported }

func createSegmentFD(uint64, string, int) (int, string, error) { return -1, "", errUnsupported }
func openSegmentPath(string) (int, error)                      { return -1, errUnsupported }
func mapFD(int, uint64) ([]byte, error)                        { return nil, errUnsupported }
func unmap([]byte) error                                       { return nil }
func closeFD(int)                                              {}
func removePath(string)                                        {}
func writeMsgFD(*net.UnixConn, []byte, int) error              { return errUnsupported }
func readMsgFD(*net.UnixConn) (byte, []byte, []int, error)     { return 0, nil, nil, errUnsupported }
func peerCred(*net.UnixConn) (int, int, error)                 { return 0, -1, errUnsupported }

func readNonBlocking(*net.UnixConn, []byte) (int, bool, error) { return 0, false, errUnsupported }

func yieldCPU() {}
