package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bff-project/bff/server"
)

// defaultStateDir is where the revocation snapshot goes when neither
// revocation.snapshot_file nor STATE_DIRECTORY says otherwise.
var defaultStateDir = "/var/lib/bff"

// revocationConfig chooses where the revocation list persists. Persistence
// is the default, since a restart must never undo a logout: the snapshot
// goes under $STATE_DIRECTORY or /var/lib/bff unless snapshot_file names
// another place, and its directory must be writable now, not at the first
// logout. Only an explicit in_memory: true keeps the list in memory.
func (fc *fileConfig) revocationConfig(sc *server.Config) error {
	rc := fc.Revocation
	if rc.MaxSingleUse < 0 {
		return &configError{"revocation.max_single_use", "must not be negative"}
	}
	sc.MaxSingleUse = rc.MaxSingleUse
	if rc.InMemory {
		if rc.SnapshotFile != "" {
			return &configError{"revocation.in_memory", "set either in_memory or snapshot_file, not both"}
		}
		return nil
	}
	path := rc.SnapshotFile
	if path == "" {
		dir := fc.stateDirectory
		if dir == "" {
			dir = defaultStateDir
		}
		path = filepath.Join(dir, "revoked")
	}
	if err := checkWritable(filepath.Dir(path)); err != nil {
		return &configError{"revocation.snapshot_file", fmt.Sprintf("%s: %v; set revocation.snapshot_file to a writable path "+
			"(systemd: StateDirectory=bff), or revocation.in_memory: true to keep logouts in memory only (a restart then undoes them)", path, err)}
	}
	sc.SnapshotFile = path
	return nil
}

// checkWritable is writableDir; the package's tests replace it so that a
// config naming /var/lib/bff creates nothing on the test machine.
var checkWritable = writableDir

// writableDir creates dir (0700) when missing and proves a file can be
// created in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errors.Unwrap(err)
	}
	f, err := os.CreateTemp(dir, ".bff-check-*")
	if err != nil {
		if u := errors.Unwrap(err); u != nil {
			return u
		}
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
