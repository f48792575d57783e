package release_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/bff-project/bff/internal/testsupport"
)

// need is testsupport.Need for this package's tests.
func need(t *testing.T, tool, debianPackage string) string {
	t.Helper()
	return testsupport.Need(t, "release", tool, debianPackage)
}

// needRoot skips the test unless it runs as root (it installs a package and
// adds a user), except under CI=true, where it fails.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const msg = "release: the test installs the .deb with dpkg and adds the user bff: run it as root"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// run runs a command and returns its combined output, failing the test when
// it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// git runs a read-only git command in the repository.
func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// directives are a unit file's lines that are not comments or blank, in
// order.
func directives(unit string) []string {
	var out []string
	for _, l := range strings.Split(unit, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// debPaths is the sorted list of paths in a `dpkg-deb -c` listing, with
// sizes and dates left out (the binaries differ).
func debPaths(listing string) string {
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			paths = append(paths, f[0]+" "+f[1]+" "+f[len(f)-1])
		}
	}
	slices.Sort(paths)
	return strings.Join(paths, "\n")
}
