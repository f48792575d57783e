package release_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// packageStatus is dpkg's abbreviated status of bff ("ii " installed), or ""
// when dpkg knows no such package.
func packageStatus() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "bff").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func isInstalled(status string) bool { return len(status) >= 2 && status[1] != 'n' }

// machine is what the test changes on the machine, as it found it.
type machine struct {
	etcBff, user, group bool
	stateDir            os.FileInfo // nil when absent
}

// survey records the machine's state and refuses to run over a real
// installation of bff.
func survey(t *testing.T) machine {
	t.Helper()
	if s := packageStatus(); isInstalled(s) {
		t.Fatalf("release: the bff package is on this machine (dpkg status %q); the test would replace it and purge it: remove it first", s)
	}
	var m machine
	if entries, err := os.ReadDir("/etc/bff"); err == nil {
		if len(entries) > 0 {
			t.Fatalf("release: /etc/bff holds files; the test would write its own there: move them away first")
		}
		m.etcBff = true
	}
	m.user = exec.Command("getent", "passwd", "bff").Run() == nil
	m.group = exec.Command("getent", "group", "bff").Run() == nil
	if fi, err := os.Stat("/var/lib/bff"); err == nil {
		entries, _ := os.ReadDir("/var/lib/bff")
		for _, e := range entries {
			// `bff check` proves the directory writable with a
			// short-lived .bff-check-* file.
			if !strings.HasPrefix(e.Name(), ".bff-check-") {
				t.Fatalf("release: /var/lib/bff holds %s (a revocation list?); the purge would remove it: move it away first", e.Name())
			}
		}
		m.stateDir = fi
	}
	return m
}

// restore purges the package and undoes what the test and the package did,
// back to m.
func restore(t *testing.T, m machine) {
	if isInstalled(packageStatus()) {
		if out, err := exec.Command("dpkg", "--purge", "bff").CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge bff: %v\n%s", err, out)
		}
	}
	for _, f := range []string{"/etc/bff/client_secret", "/etc/bff/keys"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	}
	if !m.etcBff {
		os.RemoveAll("/etc/bff")
	}
	if !m.user && exec.Command("getent", "passwd", "bff").Run() == nil {
		if out, err := exec.Command("userdel", "bff").CombinedOutput(); err != nil {
			t.Errorf("cleanup: userdel bff: %v\n%s", err, out)
		}
	}
	if !m.group && exec.Command("getent", "group", "bff").Run() == nil {
		if out, err := exec.Command("groupdel", "bff").CombinedOutput(); err != nil {
			t.Errorf("cleanup: groupdel bff: %v\n%s", err, out)
		}
	}
	if m.stateDir != nil {
		if _, err := os.Stat("/var/lib/bff"); errors.Is(err, os.ErrNotExist) {
			st := m.stateDir.Sys().(*syscall.Stat_t)
			os.Mkdir("/var/lib/bff", m.stateDir.Mode().Perm())
			os.Chown("/var/lib/bff", int(st.Uid), int(st.Gid))
			os.Chmod("/var/lib/bff", m.stateDir.Mode().Perm())
		}
	}
}

// lockMachine serializes the tests that install the package on this
// machine (two checkouts testing at once), until the test ends.
func lockMachine(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "bff-release-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}
