// Package release holds how bff is released: release.sh builds the static
// binaries for linux/amd64 and linux/arm64 and a .deb for each with nfpm
// (nfpm.yaml, the maintainer scripts in scripts/, the configuration skeleton
// bff.yaml), and writes SHA256SUMS beside them in dist/.
//
// It has no Go code of its own. Its test runs release.sh, installs the amd64
// .deb on the machine it runs on (root and dpkg required), checks what the
// package put there, reinstalls and purges it, and leaves the machine as it
// found it. It does not publish anything and does not start the service.
package release
