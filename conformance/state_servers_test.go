package conformance

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/outrig/outrig/internal/testenv"
)

// ownServer is a server process of the test's own (not a shared backend):
// the fault tests kill and restart it.
type ownServer struct {
	name string
	addr string // 127.0.0.1:port
	argv []string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// newOwnServer prepares a server; start runs it (again after a kill). It is killed when the test ends.
func newOwnServer(t testing.TB, name string, argv ...string) *ownServer {
	t.Helper()
	if _, err := exec.LookPath(argv[0]); err != nil {
		t.Fatalf("%s: %v (scripts/backends.sh up %s installs it)", argv[0], err, name)
	}
	s := &ownServer{name: name, argv: argv, dir: t.TempDir()}
	t.Cleanup(func() {
		s.kill(t)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(s.dir, name+".log"))
			t.Logf("--- %s log (tail):\n%s", name, tailString(string(b), 3000))
		}
	})
	return s
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start runs the server and waits until addr accepts connections.
func (s *ownServer) start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.dir, s.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	testenv.Eventually(t, s.name+" accepts connections on "+s.addr, 60*time.Second, func() error {
		select {
		case <-done:
			t.Fatalf("%s exited: %v", s.name, cmd.ProcessState)
		default:
		}
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// kill stops the server abruptly (SIGKILL), as a crash would, and waits
// until it is gone.
func (s *ownServer) kill(t testing.TB) {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) // a frozen process dies only once resumed
	<-s.done
	s.cmd = nil
}

// freeze stops the server without closing its sockets (SIGSTOP), as a hung
// server or a network partition looks to a client; thaw resumes it.
func (s *ownServer) freeze(t testing.TB) {
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

func (s *ownServer) thaw(t testing.TB) {
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a free loopback port.
func freePort(t testing.TB) int {
	_, p, _ := net.SplitHostPort(testenv.FreeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

// ownRedis starts a redis-server of the test's own: no persistence,
// loopback only.
func ownRedis(t testing.TB) *ownServer {
	port := freePort(t)
	s := newOwnServer(t, "redis", "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	s.argv = append(s.argv, "--dir", s.dir)
	s.start(t)
	return s
}

// ownMariaDB starts a mariadbd of the test's own, with its own data
// directory (initialised here, as scripts/backends/mysql.sh does for the
// shared one) and the user outrig/outrig.
func ownMariaDB(t testing.TB) *ownServer {
	t.Helper()
	port := freePort(t)
	s := newOwnServer(t, "mariadb", "mariadbd")
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	data := filepath.Join(s.dir, "data")
	sock := filepath.Join(s.dir, "mysqld.sock")
	install := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+data,
		"--skip-test-db", "--auth-root-authentication-method=socket")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, tailString(string(out), 2000))
	}
	s.argv = []string{"mariadbd", "--no-defaults", "--user=root", "--datadir=" + data, "--socket=" + sock,
		"--pid-file=" + filepath.Join(s.dir, "mysqld.pid"), "--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--skip-name-resolve", "--character-set-server=utf8mb4", "--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=16M", "--performance-schema=OFF", "--skip-log-bin"}
	s.start(t)
	grant := exec.Command("mariadb", "--no-defaults", "--protocol=socket", "--socket="+sock, "-uroot", "-e",
		"CREATE USER 'outrig'@'127.0.0.1' IDENTIFIED BY 'outrig'; GRANT ALL PRIVILEGES ON *.* TO 'outrig'@'127.0.0.1'; FLUSH PRIVILEGES;")
	if out, err := grant.CombinedOutput(); err != nil {
		t.Fatalf("create user outrig: %v\n%s", err, out)
	}
	waitSQL(t, s.addr)
	return s
}

// waitSQL waits until user outrig can run a query at addr.
func waitSQL(t testing.TB, addr string) {
	t.Helper()
	db, err := sql.Open("mysql", "outrig:outrig@tcp("+addr+")/?timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	testenv.Eventually(t, "SELECT 1 on "+addr, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return db.PingContext(ctx)
	})
}
