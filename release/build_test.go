package release_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// built is what release.sh printed on stdout.
type built struct {
	version, debVersion, commit, date string
	artifacts                         []string
}

func (b built) artifact(t *testing.T, re string) string {
	t.Helper()
	for _, a := range b.artifacts {
		if regexp.MustCompile(re).MatchString(filepath.Base(a)) {
			return a
		}
	}
	t.Fatalf("release.sh built no artifact matching %s: %v", re, b.artifacts)
	return ""
}

// release runs release/release.sh for both architectures into out, with the
// version, commit and date taken from git as in a real release.
func release(t *testing.T, out string) built {
	t.Helper()
	cmd := exec.Command("release/release.sh", "-o", out)
	cmd.Dir = ".."
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERSION=") && !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("release.sh: %v\n%s", err, stderr.String())
	}
	t.Logf("release.sh took %s", time.Since(start).Round(time.Second))
	var b built
	for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "version":
			b.version = v
		case "deb_version":
			b.debVersion = v
		case "commit":
			b.commit = v
		case "date":
			b.date = v
		case "artifact":
			b.artifacts = append(b.artifacts, v)
		default:
			t.Fatalf("release.sh printed %q on stdout", line)
		}
	}
	if b.version == "" || b.debVersion == "" || len(b.artifacts) != 5 {
		t.Fatalf("release.sh printed %+v; want a version and five artifacts\n%s", b, stderr.String())
	}
	return b
}

// checkStatic fails unless path is a statically linked 64-bit ELF executable
// for machine.
func checkStatic(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s: %s %s %s, want a 64-bit executable for %s", path, f.Class, f.Type, f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: has a %s program header: dynamically linked", path, p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s: needs shared libraries %v (%v)", path, libs, err)
	}
}
