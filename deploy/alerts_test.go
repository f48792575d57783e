package deploy_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/bff-project/bff/revocation"
)

// promtool returns the path of promtool from promtool.sh (Debian's, unpacked
// once into the user's cache). When it cannot be had the test is skipped,
// except under CI=true, where it fails.
func promtool(t *testing.T) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("./promtool.sh")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return strings.TrimSpace(string(out))
	}
	msg := fmt.Sprintf("deploy: promtool.sh: %v\n%s", err, stderr.String())
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// alertRules is the part of a Prometheus rules file the test reads.
type alertRules struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// alertTests is the part of a promtool test file the test reads.
type alertTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// exportedMetrics are the names the BFF registers (Name: "bff_..." in the
// module's non-test Go files outside the tests' own programs).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`Name:\s*"(bff_[a-z0-9_]+)"`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "e2e" || d.Name() == "bench" || d.Name() == "tools" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != "..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Positive control: the scan sees the metrics the alerts are built on.
	for _, n := range []string{"bff_refreshes_total", "bff_cluster_members", "bff_revocation_evictions_total"} {
		if !names[n] {
			t.Fatalf("the scan of the Go files found no %s (found %d names); update the test", n, len(names))
		}
	}
	return names
}

// TestDeployAlertRules checks alerts.yml: promtool accepts it and its unit
// tests (alerts_test.yml) pass; every alert has a for, a severity, a summary
// and a description, fires in one test case and stays silent in another;
// and its expressions name only metrics and label values the BFF exports.
func TestDeployAlertRules(t *testing.T) {
	var rules alertRules
	if err := yaml.Unmarshal([]byte(readFile(t, "alerts.yml")), &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var tests alertTests
	if err := yaml.Unmarshal([]byte(readFile(t, "alerts_test.yml")), &tests); err != nil {
		t.Fatalf("alerts_test.yml: %v", err)
	}
	if !slices.Equal(tests.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("alerts_test.yml tests %v, want alerts.yml", tests.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	metrics := exportedMetrics(t)
	// Where each label's values are written: a reason is a code classify
	// returns (errors.go; metrics.go only creates the alerted ones at
	// zero), an outcome a refresh outcome.
	server := map[string]string{
		"reason":  readFile(t, "../server/errors.go"),
		"outcome": readFile(t, "../server/metrics.go") + readFile(t, "../proxy/refresh.go"),
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			t.Run(r.Alert, func(t *testing.T) {
				if r.For == "" {
					t.Errorf("no for")
				}
				if s := r.Labels["severity"]; s != "critical" && s != "warning" {
					t.Errorf("severity %q, want critical or warning", s)
				}
				if r.Annotations["summary"] == "" || len(r.Annotations["description"]) < 80 {
					t.Errorf("want a summary and a description that says what to do")
				}
				if !fires[r.Alert] || !silent[r.Alert] {
					t.Errorf("alerts_test.yml: fires in a case: %v, silent in a case: %v; want both", fires[r.Alert], silent[r.Alert])
				}
				for _, m := range regexp.MustCompile(`\b[a-z_]+\b(\{[^}]*\})?`).FindAllStringSubmatch(r.Expr, -1) {
					name, _, _ := strings.Cut(m[0], "{")
					if !strings.HasPrefix(name, "bff_") {
						continue
					}
					base := name
					for _, suffix := range []string{"_count", "_bucket", "_sum"} {
						if b, ok := strings.CutSuffix(name, suffix); ok && metrics[b] {
							base = b
						}
					}
					if !metrics[base] {
						t.Errorf("%s: the BFF exports no such metric", name)
					}
					// The reasons and outcomes matched are ones the
					// server writes.
					for _, lv := range regexp.MustCompile(`(reason|outcome)=~?"([^"]*)"`).FindAllStringSubmatch(m[0], -1) {
						for _, v := range strings.Split(lv[2], "|") {
							if !strings.Contains(server[lv[1]], strconv.Quote(v)) {
								t.Errorf("%s: %s %q is not a value the server uses", name, lv[1], v)
							}
						}
					}
				}
			})
		}
	}
	if n < 10 {
		t.Fatalf("alerts.yml has %d alerts", n)
	}

	t.Run("revocation_bound", func(t *testing.T) {
		// BFFRevocationListNearFull compares with the list's bound.
		if !strings.Contains(readFile(t, "alerts.yml"), "0.8 * "+strconv.Itoa(revocation.DefaultMaxEntries)) {
			t.Errorf("alerts.yml does not compare bff_revocation_list_entries with 0.8 * %d (revocation.DefaultMaxEntries)", revocation.DefaultMaxEntries)
		}
	})

	pt := promtool(t)
	t.Run("promtool_check_rules", func(t *testing.T) {
		out, err := exec.Command(pt, "check", "rules", "alerts.yml").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(fmt.Sprintf("SUCCESS: %d rules found", n))) {
			t.Errorf("promtool check rules alerts.yml: %v\n%s", err, out)
		}
	})
	t.Run("promtool_test_rules", func(t *testing.T) {
		out, err := exec.Command(pt, "test", "rules", "alerts_test.yml").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("SUCCESS")) {
			t.Errorf("promtool test rules alerts_test.yml: %v\n%s", err, out)
		}
	})
}
