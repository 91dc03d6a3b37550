//go:build linux

package shm

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// platformSupported reports whether this build can use the transport: the
// wire is little-endian and the rings are accessed with native atomics.
func platformSupported() error {
	var probe [2]byte
	binary.NativeEndian.PutUint16(probe[:], 1)
	if probe[0] != 1 {
		return errors.New("shm: the shared-memory wire is little-endian; this host is big-endian")
	}
	return nil
}

// createSegmentFD creates the file backing a new segment of size bytes:
// a sealed memfd, or, when dir is not empty, an exclusive 0600 file in dir
// (SPEC.md §8.3). It returns the descriptor and, for a file, its path.
func createSegmentFD(size uint64, dir string, peerUID int) (fd int, path string, err error) {
	if dir == "" {
		fd, err = unix.MemfdCreate("outrig-shm", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			return -1, "", fmt.Errorf("shm: memfd_create: %w", err)
		}
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			unix.Close(fd)
			return -1, "", fmt.Errorf("shm: sizing memfd to %d bytes: %w", size, err)
		}
		// A peer that cannot shrink the file cannot make our accesses fault.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
			unix.Close(fd)
			return -1, "", fmt.Errorf("shm: sealing memfd: %w", err)
		}
		return fd, "", nil
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return -1, "", fmt.Errorf("shm: naming segment file: %w", err)
	}
	path = filepath.Join(dir, "outrig-"+hex.EncodeToString(rnd[:]))
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return -1, "", fmt.Errorf("shm: creating segment file %s: %w", path, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		unix.Unlink(path)
		return -1, "", fmt.Errorf("shm: sizing segment file %s to %d bytes: %w", path, size, err)
	}
	if peerUID >= 0 && peerUID != os.Getuid() {
		// Best effort: lets a peer of another user open the 0600 file when
		// we are privileged; otherwise its open fails and it is told why.
		_ = unix.Fchown(fd, peerUID, -1)
	}
	return fd, path, nil
}

// openSegmentPath opens a segment file named by a welcome.
func openSegmentPath(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, fmt.Errorf("shm: opening segment file %s: %w", path, err)
	}
	return fd, nil
}

// mapFD maps size bytes of fd shared and read-write after checking that the
// file is a regular file of exactly that size (a shorter file would fault).
func mapFD(fd int, size uint64) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shm: fstat segment: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("shm: segment is not a regular file (mode 0%o)", st.Mode)
	}
	if st.Size < 0 || uint64(st.Size) != size {
		return nil, fmt.Errorf("shm: segment file has %d bytes, want %d", st.Size, size)
	}
	if size > uint64(headerSize+2*MaxRingSize) {
		return nil, fmt.Errorf("shm: segment size %d exceeds %d", size, headerSize+2*MaxRingSize)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("shm: mmap of %d bytes: %w", size, err)
	}
	return mem, nil
}

func unmap(mem []byte) error {
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("shm: munmap: %w", err)
	}
	return nil
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

func removePath(path string) {
	if path != "" {
		unix.Unlink(path)
	}
}

// writeMsgFD writes one handshake message with fd attached (SCM_RIGHTS), or
// without a descriptor when fd < 0.
func writeMsgFD(conn *net.UnixConn, b []byte, fd int) error {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	n, _, err := conn.WriteMsgUnix(b, oob, nil)
	if err != nil {
		return fmt.Errorf("shm: writing handshake message: %w", err)
	}
	if n != len(b) {
		return fmt.Errorf("shm: short handshake write: %d of %d bytes", n, len(b))
	}
	return nil
}

// readMsgFD reads one handshake message and every descriptor that arrives
// with it. The caller owns (and must close) the descriptors.
func readMsgFD(conn *net.UnixConn) (typ byte, body []byte, fds []int, err error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	readFull := func(buf []byte) error {
		for got := 0; got < len(buf); {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf[got:], oob)
			if oobn > 0 {
				more, perr := parseRights(oob[:oobn])
				fds = append(fds, more...)
				if perr != nil {
					return perr
				}
			}
			got += n
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("shm: handshake connection closed: %w", net.ErrClosed)
			}
		}
		return nil
	}
	var lenBuf [4]byte
	if err := readFull(lenBuf[:]); err != nil {
		return 0, nil, fds, fmt.Errorf("shm: reading handshake message length: %w", err)
	}
	n := binary.LittleEndian.Uint32(lenBuf[:])
	if n == 0 || n > maxHandshakeMsg {
		return 0, nil, fds, hsErr("message", "length", "%d is outside [1, %d]", n, maxHandshakeMsg)
	}
	buf := make([]byte, n)
	if err := readFull(buf); err != nil {
		return 0, nil, fds, fmt.Errorf("shm: reading handshake message of %d bytes: %w", n, err)
	}
	return buf[0], buf[1:], fds, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("shm: parsing control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fds, fmt.Errorf("shm: parsing SCM_RIGHTS: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// peerCred returns the pid and uid of the process at the other end of conn.
func peerCred(conn *net.UnixConn) (pid, uid int, err error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, -1, fmt.Errorf("shm: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, -1, fmt.Errorf("shm: peer credentials: %w", err)
	}
	if cerr != nil {
		return 0, -1, fmt.Errorf("shm: SO_PEERCRED: %w", cerr)
	}
	return int(cred.Pid), int(cred.Uid), nil
}

// readNonBlocking performs one read of what the socket holds now, without
// waiting; eof reports an orderly close by the peer.
func readNonBlocking(conn *net.UnixConn, b []byte) (n int, eof bool, err error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), b)
		return true
	}); err != nil {
		return 0, false, err
	}
	switch {
	case rerr == unix.EAGAIN:
		return 0, false, nil
	case rerr != nil:
		return 0, false, rerr
	case n == 0:
		return 0, true, nil
	}
	return n, false, nil
}

// yieldCPU lets another runnable thread of this CPU run (sched_yield(2)); it
// returns at once when there is none.
func yieldCPU() { _, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
