package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bff-project/bff/internal/testsupport"
)

// Paths resolved once by TestMain.
var (
	repoRoot string // module root, where `go build .` builds the bff binary
	idpDir   string // e2e/idp, where server.js and node_modules live
	binDir   string // temporary directory for the built bff binary
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	repoRoot, err = findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	idpDir = filepath.Join(repoRoot, "e2e", "idp")
	if err := ensureNodeModules(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: FATAL (CI): %v\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: cannot prepare the test OpenID provider: %v\n"+
				"e2e: install Node.js 20+ and run `npm ci` in %s, then retry.\n", err, idpDir)
		}
		return 1
	}
	binDir, err = os.MkdirTemp("", "bff-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	return m.Run()
}

// findRepoRoot asks the go command for the main module's go.mod and falls
// back to the parent of the package directory.
func findRepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("e2e: locate repository root: %w", err)
	}
	root := filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("e2e: locate repository root: %w", err)
	}
	return root, nil
}

// ensureNodeModules runs `npm ci` in e2e/idp when node_modules is missing.
func ensureNodeModules() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("e2e: node not found in PATH: %w", err)
	}
	if _, err := os.Stat(filepath.Join(idpDir, "node_modules", "oidc-provider", "package.json")); err == nil {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("e2e: npm not found in PATH: %w", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: %s/node_modules missing, running npm ci\n", idpDir)
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = idpDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("e2e: npm ci failed: %w\n%s", err, out)
	}
	return nil
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// bffBinary builds the BFF once per test run (the first test that needs it
// pays for the build) and returns the binary's path. BFF_E2E_BIN names a
// prebuilt binary instead (e.g. one built with -race or -cover).
func bffBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("BFF_E2E_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		buildPath = filepath.Join(binDir, "bff")
		cmd := exec.Command("go", "build", "-o", buildPath, ".")
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("e2e: go build of the bff binary failed: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	return testsupport.FreePort(t)
}

// syncBuffer collects output that several goroutines write.
type syncBuffer = testsupport.Buffer

// process is a started child in its own process group.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// startProcess starts cmd in a new process group and registers a cleanup
// that stops the whole group: SIGTERM, then SIGKILL after grace.
func startProcess(t testing.TB, cmd *exec.Cmd, grace time.Duration) *process {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("e2e: start %s: %v", filepath.Base(cmd.Path), err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(grace) })
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	if p.exited() {
		// The leader is gone; make sure no child of it survives.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return
	}
	<-p.done
}

// waitFor polls cond every 50 ms until it returns true, the process exits
// or the timeout passes.
func waitFor(p *process, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("e2e: process exited early: %v", p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: not ready after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startReady starts cmd (stdout and stderr must be unset) and waits up to 20 s
// for a stdout line "READY <rest>", returning rest; stderr is kept for
// failure messages. The test fails if the process exits first.
func startReady(t testing.TB, name string, cmd *exec.Cmd) (p *process, rest string, stderr *syncBuffer) {
	t.Helper()
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("e2e: %s stdout: %v", name, err)
	}
	p = startProcess(t, cmd, 3*time.Second)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- r
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout) // keep the pipe drained
	}()
	select {
	case rest = <-ready:
	case <-p.done:
		t.Fatalf("e2e: %s exited before READY (%v); stderr:\n%s", name, p.err, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("e2e: %s not READY after 20s; stderr:\n%s", name, stderr.String())
	}
	return p, rest, stderr
}
