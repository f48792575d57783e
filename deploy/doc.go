// Package deploy holds the files for running bff on a VM: a hardened systemd
// unit (bff.service), an nginx load-balancer example (nginx.conf) and an
// example configuration (bff.yaml); see README.md in this folder.
//
// It has no Go code of its own. Its tests check the files with the tools that
// will read them: systemd-analyze verify, nginx -t, and bff check. It does
// not install anything and does not test a running systemd.
package deploy
