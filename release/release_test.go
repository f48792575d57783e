package release_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRelease builds a release with release.sh and checks its artifacts;
// then, as root, installs the amd64 .deb on this machine and checks what the
// package put there, a reinstall over an edited config, and the purge. The
// machine is restored however the test ends.
//
// Warm (Go build cache and nfpm cached) it takes about 15 s. Cold, release.sh
// compiles everything twice with -trimpath (amd64 and arm64) and builds nfpm:
// 5.5 minutes on an idle 2-CPU machine with empty Go build and nfpm caches,
// nearly 10 under load. test.sh runs release.sh once in its setup so that the
// test itself runs warm; run it cold by hand with -timeout 20m.
func TestRelease(t *testing.T) {
	for _, tool := range [][2]string{{"git", "git"}, {"go", "golang"}, {"sha256sum", "coreutils"}, {"dpkg-deb", "dpkg"}} {
		need(t, tool[0], tool[1])
	}
	// HEAD as release.sh found it: others may commit in this checkout
	// meanwhile, so the one before or the one after.
	heads := map[string]int64{}
	headNow := func() {
		h := git(t, "rev-parse", "HEAD")
		ct, err := strconv.ParseInt(git(t, "log", "-1", "--format=%ct", h), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		heads[h] = ct
	}
	headNow()
	dist := t.TempDir()
	b := release(t, dist)
	headNow()
	bin := map[string]string{
		"amd64": b.artifact(t, `^bff-v.*-linux-amd64$`),
		"arm64": b.artifact(t, `^bff-v.*-linux-arm64$`),
	}
	deb := map[string]string{
		"amd64": b.artifact(t, `^bff_.*_amd64\.deb$`),
		"arm64": b.artifact(t, `^bff_.*_arm64\.deb$`),
	}

	t.Run("stamped_from_git", func(t *testing.T) {
		head := strings.TrimSuffix(b.commit, "+modified")
		ct, ok := heads[head]
		if !ok {
			t.Fatalf("commit %q, want HEAD (%v)", b.commit, heads)
		}
		if want := time.Unix(ct, 0).UTC().Format("2006-01-02T15:04:05Z"); b.date != want {
			t.Errorf("date %q, want the commit's %s", b.date, want)
		}
		// A tag's name, the tag and HEAD's abbreviated hash after it
		// (v1.2.3-4-gabcdef1), or a pseudo-version of HEAD.
		namesHead := strings.Contains(b.version, head[:7]) || git(t, "tag", "--points-at", "HEAD") != ""
		if !strings.HasPrefix(b.version, "v") || !namesHead {
			t.Errorf("version %q names neither a tag at HEAD nor HEAD %s", b.version, head[:12])
		}
		if strings.HasSuffix(b.version, "+dirty") != strings.HasSuffix(b.commit, "+modified") {
			t.Errorf("version %q and commit %q disagree on local changes", b.version, b.commit)
		}
	})

	t.Run("SHA256SUMS", func(t *testing.T) {
		sums := filepath.Join(dist, "SHA256SUMS")
		if b.artifacts[len(b.artifacts)-1] != sums {
			t.Errorf("SHA256SUMS not among the artifacts: %v", b.artifacts)
		}
		cmd := exec.Command("sha256sum", "-c", "--strict", "SHA256SUMS")
		cmd.Dir = dist
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, out)
		}
		if n := strings.Count(string(out), ": OK\n"); n != 4 {
			t.Errorf("sha256sum -c checked %d files, want the 2 binaries and 2 .debs:\n%s", n, out)
		}
	})

	t.Run("static_binaries", func(t *testing.T) {
		checkStatic(t, bin["amd64"], elf.EM_X86_64)
		checkStatic(t, bin["arm64"], elf.EM_AARCH64)
		out := run(t, bin["amd64"], "version")
		if want := "bff " + b.version + " (commit " + b.commit + ", date " + b.date + ", go"; !strings.HasPrefix(out, want) {
			t.Errorf("bff version: %q, want it to start with %q", out, want)
		}
	})

	t.Run("arm64_deb", func(t *testing.T) {
		fields := run(t, "dpkg-deb", "-f", deb["arm64"], "Package", "Version", "Architecture")
		if want := "Package: bff\nVersion: " + b.debVersion + "\nArchitecture: arm64\n"; fields != want {
			t.Errorf("arm64 .deb control:\n%s\nwant:\n%s", fields, want)
		}
		dir := t.TempDir()
		run(t, "dpkg-deb", "-x", deb["arm64"], dir)
		checkStatic(t, filepath.Join(dir, "usr/bin/bff"), elf.EM_AARCH64)
		if a, b := run(t, "dpkg-deb", "-c", deb["arm64"]), run(t, "dpkg-deb", "-c", deb["amd64"]); len(a) == 0 || debPaths(a) != debPaths(b) {
			t.Errorf("the arm64 and amd64 .debs hold different files:\n%s\n%s", a, b)
		}
	})

	// The rest installs the package on this machine: root only, one test
	// at a time, and the machine restored whatever happens.
	needRoot(t)
	for _, tool := range [][2]string{{"dpkg", "dpkg"}, {"systemd-analyze", "systemd"}, {"useradd", "passwd"}, {"runuser", "util-linux"}} {
		need(t, tool[0], tool[1])
	}
	lockMachine(t)
	before := survey(t)
	t.Cleanup(func() { restore(t, before) })
	install := func(t *testing.T) {
		t.Helper()
		cmd := exec.Command("dpkg", "-i", deb["amd64"])
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdin = nil // a conffile question would take dpkg's default: keep
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg -i: %v\n%s", err, out)
		}
	}
	install(t)

	t.Run("files", func(t *testing.T) {
		listed := strings.Split(strings.TrimSpace(run(t, "dpkg", "-L", "bff")), "\n")
		for _, f := range []string{
			"/usr/bin/bff",
			"/usr/lib/systemd/system/bff.service",
			"/etc/bff/bff.yaml",
			"/usr/share/doc/bff/README.md",
			"/usr/share/doc/bff/examples/alerts.yml",
			"/usr/share/doc/bff/examples/nginx.conf",
			"/usr/share/doc/bff/examples/bff-cluster.yaml",
		} {
			if !slices.Contains(listed, f) {
				t.Errorf("dpkg -L bff does not list %s:\n%s", f, strings.Join(listed, "\n"))
			}
			if _, err := os.Stat(f); err != nil {
				t.Errorf("installed: %v", err)
			}
		}
		if c := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "bff"); !strings.Contains(c, " /etc/bff/bff.yaml ") {
			t.Errorf("/etc/bff/bff.yaml is not a conffile: %q", c)
		}
		if v := run(t, "dpkg-query", "-W", "-f=${Version}", "bff"); v != b.debVersion {
			t.Errorf("installed version %q, release.sh built %q", v, b.debVersion)
		}
		shipped, _ := os.ReadFile("bff.yaml")
		if got, _ := os.ReadFile("/etc/bff/bff.yaml"); !bytes.Equal(got, shipped) || len(shipped) == 0 {
			t.Errorf("/etc/bff/bff.yaml is not release/bff.yaml")
		}
	})

	t.Run("version", func(t *testing.T) {
		out := run(t, "/usr/bin/bff", "version")
		if want := "bff " + b.version + " (commit " + b.commit + ", date " + b.date + ", go"; !strings.HasPrefix(out, want) {
			t.Errorf("/usr/bin/bff version: %q, want it to start with %q", out, want)
		}
	})

	t.Run("unit", func(t *testing.T) {
		const path = "/usr/lib/systemd/system/bff.service"
		installed, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The packaged unit is deploy/bff.service, hardening and all,
		// with the package's binary and an optional environment file.
		src, err := os.ReadFile("../deploy/bff.service")
		if err != nil {
			t.Fatal(err)
		}
		want := strings.NewReplacer("ExecStart=/usr/local/bin/bff ", "ExecStart=/usr/bin/bff ",
			"EnvironmentFile=/etc/bff/env", "EnvironmentFile=-/etc/bff/env").Replace(string(src))
		if got, want := directives(string(installed)), directives(want); !slices.Equal(got, want) {
			t.Errorf("the installed unit's directives differ from deploy/bff.service's:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if !slices.Contains(directives(string(installed)), "ExecStart=/usr/bin/bff serve -config /etc/bff/bff.yaml") {
			t.Errorf("the installed unit does not run /usr/bin/bff")
		}
		out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
		// verify exits 0 on unknown keys and bad values, only warning: any
		// output is a finding.
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager", path).CombinedOutput()
		if err != nil && !bytes.Contains(out, []byte("unrecognized option")) {
			t.Errorf("systemd-analyze security: exposure over 2.0: %v\n%s", err, out)
		}
	})

	t.Run("user_and_state_directory", func(t *testing.T) {
		pw := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "bff")), ":")
		if len(pw) != 7 || pw[5] != "/nonexistent" || pw[6] != "/usr/sbin/nologin" {
			t.Errorf("user bff: %v, want home /nonexistent and shell /usr/sbin/nologin", pw)
		}
		uid, _ := strconv.Atoi(pw[2])
		gr := strings.Split(strings.TrimSpace(run(t, "getent", "group", "bff")), ":")
		gid, _ := strconv.Atoi(gr[2])
		if !before.user && (uid == 0 || uid >= 1000) {
			t.Errorf("user bff has uid %d, want a system user", uid)
		}
		if pw[3] != gr[2] {
			t.Errorf("user bff's group is %s, want bff (%s)", pw[3], gr[2])
		}
		fi, err := os.Stat("/var/lib/bff")
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != 0o700 || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("/var/lib/bff: %s uid %d gid %d, want a directory 0700 owned by bff (%d:%d)", fi.Mode(), st.Uid, st.Gid, uid, gid)
		}
	})

	const clientSecret = "release-test-client-secret-8d2f41"
	t.Run("first_start_as_the_skeleton_says", func(t *testing.T) {
		check := func(user string) (string, error) {
			cmd := exec.Command("runuser", "-u", user, "--", "/usr/bin/bff", "check", "-config", "/etc/bff/bff.yaml")
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		// Positive control: as shipped, without its secrets, the check fails
		// on the file it names.
		if out, err := check("root"); err == nil || !strings.Contains(out, "oidc.client_secret_file") {
			t.Fatalf("bff check passed, or failed for another reason, before the secrets were written: %v\n%s", err, out)
		}
		cmds := firstStart(t)
		for _, c := range cmds[:len(cmds)-1] { // the last, systemctl enable --now, needs a running systemd
			cmd := exec.Command("sh", "-ec", c)
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
			if strings.HasPrefix(c, "cat > ") {
				cmd.Stdin = strings.NewReader(clientSecret + "\n") // pasted, Enter, Ctrl-D
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", c, err, out)
			}
			if strings.HasPrefix(c, "bff check") {
				checkOutput(t, string(out), clientSecret)
			}
		}
		for _, f := range []string{"/etc/bff/client_secret", "/etc/bff/keys"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o640 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
				t.Errorf("%s: %s uid %d, want 0640 root:bff", f, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
			}
		}
		// The service runs as bff: it reads the secrets and writes the
		// state directory; another user reads neither.
		out, err := check("bff")
		if err != nil {
			t.Fatalf("bff check as user bff: %v\n%s", err, out)
		}
		checkOutput(t, out, clientSecret)
		if out, err := check("nobody"); err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("bff check as nobody: %v, want permission denied on the secrets\n%s", err, out)
		}
	})

	t.Run("reinstall_keeps_the_config", func(t *testing.T) {
		edit := "\n# edited by the operator " + strconv.FormatInt(time.Now().UnixNano(), 36) + "\n"
		f, err := os.OpenFile("/etc/bff/bff.yaml", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(edit)
		f.Close()
		keys, _ := os.ReadFile("/etc/bff/keys")
		// Positive control: a file that is not a conffile comes back.
		const doc = "/usr/share/doc/bff/examples/alerts.yml"
		if err := os.Remove(doc); err != nil {
			t.Fatal(err)
		}
		install(t)
		if _, err := os.Stat(doc); err != nil {
			t.Errorf("the reinstall did not unpack the package again: %v", err)
		}
		if got, _ := os.ReadFile("/etc/bff/bff.yaml"); !bytes.HasSuffix(got, []byte(edit)) {
			t.Errorf("the reinstall replaced the edited /etc/bff/bff.yaml")
		}
		if got, _ := os.ReadFile("/etc/bff/keys"); !bytes.Equal(got, keys) || len(keys) == 0 {
			t.Errorf("the reinstall changed /etc/bff/keys")
		}
		for _, leftover := range []string{"/etc/bff/bff.yaml.dpkg-new", "/etc/bff/bff.yaml.dpkg-dist"} {
			if _, err := os.Stat(leftover); err == nil {
				t.Errorf("%s left beside the config", leftover)
			}
		}
		if out, err := exec.Command("runuser", "-u", "bff", "--", "/usr/bin/bff", "check", "-config", "/etc/bff/bff.yaml").CombinedOutput(); err != nil {
			t.Errorf("bff check after the reinstall: %v\n%s", err, out)
		}
	})

	t.Run("purge", func(t *testing.T) {
		run(t, "dpkg", "--purge", "bff")
		if s := packageStatus(); isInstalled(s) {
			t.Errorf("dpkg status after the purge: %q", s)
		}
		for _, f := range []string{"/usr/bin/bff", "/usr/lib/systemd/system/bff.service", "/etc/bff/bff.yaml", "/usr/share/doc/bff"} {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s after the purge: %v", f, err)
			}
		}
		// The state directory goes; another test's `bff check` running as
		// root may create it again at once, but never owned by bff.
		if fi, err := os.Stat("/var/lib/bff"); err == nil {
			if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
				t.Errorf("/var/lib/bff (uid %d) left after the purge", uid)
			}
		}
		// The operator's own files stay (documented in postrm and
		// deploy/README.md); the cleanup removes the test's.
		if _, err := os.Stat("/etc/bff/keys"); err != nil {
			t.Errorf("the purge removed the operator's /etc/bff/keys: %v", err)
		}
	})
}

// firstStart returns the commands the skeleton's header tells the operator
// to run before the first start, as written there.
func firstStart(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/etc/bff/bff.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(line, "(as root):") {
			in = true
			continue
		}
		c, ok := strings.CutPrefix(line, "#   ")
		if in && !ok {
			break
		}
		if in {
			cmds = append(cmds, strings.TrimSpace(c))
		}
	}
	var kinds []string
	for _, c := range cmds {
		kinds = append(kinds, strings.Join(strings.Fields(c)[:2], " "))
	}
	if want := []string{"install -m", "install -m", "cat >", "bff keygen", "bff check", "systemctl enable"}; !slices.Equal(kinds, want) {
		t.Fatalf("the skeleton's first-start commands are %q; want the kinds %q (update the test)", cmds, want)
	}
	return cmds
}

// checkOutput checks what `bff check` printed for the skeleton.
func checkOutput(t *testing.T, out, secret string) {
	t.Helper()
	for _, want := range []string{"config ok: listen 127.0.0.1:8080", "revocation list persisted to /var/lib/bff/revoked", "cluster: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("bff check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Errorf("bff check printed the client secret")
	}
}
