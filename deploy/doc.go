// Package deploy holds the files for running bff on a VM: a hardened systemd
// unit (bff.service), an nginx load-balancer example (nginx.conf), an
// example configuration (bff.yaml) and Prometheus alerting rules
// (alerts.yml, with promtool unit tests in alerts_test.yml); see README.md in
// this folder, which is also the operator's guide.
//
// It has no Go code of its own. Its tests check the files with the tools that
// will read them: systemd-analyze verify, nginx -t, bff check, and promtool
// (check rules, test rules). It does not install anything and does not test
// a running systemd or Prometheus; release/ builds and tests the .deb.
package deploy
