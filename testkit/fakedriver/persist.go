package fakedriver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// StateFile is the name of the file in Options.StateDir that holds the
// backend.
const StateFile = "state.json"

// stateVersion is the format of StateFile; a file of another version is
// refused rather than misread.
const stateVersion = 1

// readOnlyMethods never change the backend, so they never write the state
// file. Every other method may (snapshot polls count too).
var readOnlyMethods = map[string]bool{
	"GetPluginInfo": true, "GetPluginCapabilities": true, "Probe": true,
	"ControllerGetCapabilities": true, "NodeGetCapabilities": true,
	"GroupControllerGetCapabilities": true, "NodeGetInfo": true,
	"GetCapacity": true, "ValidateVolumeCapabilities": true, "ListVolumes": true,
	"NodeGetVolumeStats": true,
}

// state is the backend as StateFile holds it.
type state struct {
	Version   int             `json:"version"`
	Driver    string          `json:"driver"`
	Seq       uint64          `json:"seq"`
	Volumes   []volumeState   `json:"volumes"`
	Snapshots []snapshotState `json:"snapshots"`
	Groups    []groupState    `json:"groupSnapshots"`
}

type volumeState struct {
	Volume
	Seq uint64 `json:"seq"`
	// Publications and Targets keep how the volume was published, by node
	// ID and target path; Volume.PublishedNodes and TargetPaths are
	// derived from them.
	Publications map[string]publicationState `json:"publications,omitempty"`
	Targets      map[string]publicationState `json:"targets,omitempty"`
}

type publicationState struct {
	Readonly bool  `json:"readonly,omitempty"`
	Mode     int32 `json:"mode"`
}

type snapshotState struct {
	Snapshot
	Seq           uint64 `json:"seq"`
	NotReadyPolls int    `json:"notReadyPolls,omitempty"`
}

type groupState struct {
	GroupSnapshot
	Seq uint64 `json:"seq"`
}

// stateLocked copies the backend into its file form. Driver.mu is held.
func (b *backend) stateLocked(driver string) state {
	st := state{Version: stateVersion, Driver: driver, Seq: b.seq,
		Volumes: []volumeState{}, Snapshots: []snapshotState{}, Groups: []groupState{}}
	pubs := func(m map[string]publication) map[string]publicationState {
		if len(m) == 0 {
			return nil
		}
		out := make(map[string]publicationState, len(m))
		for k, p := range m {
			out[k] = publicationState{Readonly: p.readonly, Mode: int32(p.mode)}
		}
		return out
	}
	for _, v := range b.sortedVolumes() {
		st.Volumes = append(st.Volumes, volumeState{Volume: v.export(), Seq: v.seq,
			Publications: pubs(v.published), Targets: pubs(v.targets)})
	}
	for _, s := range b.sortedSnapshots() {
		st.Snapshots = append(st.Snapshots, snapshotState{Snapshot: s.export(), Seq: s.seq, NotReadyPolls: s.notReadyPolls})
	}
	for _, id := range slices.Sorted(maps.Keys(b.groups)) {
		g := b.groups[id]
		st.Groups = append(st.Groups, groupState{GroupSnapshot: g.export(b.groupReady(g)), Seq: g.seq})
	}
	return st
}

// backendFromState rebuilds a backend, indexes and pool usage included.
func backendFromState(st state) *backend {
	b := newBackend()
	b.seq = st.Seq
	pubs := func(m map[string]publicationState) map[string]publication {
		out := make(map[string]publication, len(m))
		for k, p := range m {
			out[k] = publication{readonly: p.Readonly, mode: csi.VolumeCapability_AccessMode_Mode(p.Mode)}
		}
		return out
	}
	for _, vs := range st.Volumes {
		v := &volume{Volume: vs.Volume, seq: vs.Seq, published: pubs(vs.Publications),
			targets: pubs(vs.Targets), staged: map[string]bool{}, pool: segmentKey(vs.Topology)}
		for _, p := range vs.StagingPaths {
			v.staged[p] = true
		}
		v.PublishedNodes, v.StagingPaths, v.TargetPaths = nil, nil, nil
		switch {
		case v.SourceSnapshotID != "":
			v.volumeSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
				Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: v.SourceSnapshotID}}}
		case v.SourceVolumeID != "":
			v.volumeSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
				Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: v.SourceVolumeID}}}
		}
		b.addVolume(v)
	}
	for _, ss := range st.Snapshots {
		b.addSnapshot(&snapshot{Snapshot: ss.Snapshot, seq: ss.Seq, notReadyPolls: ss.NotReadyPolls})
	}
	for _, gs := range st.Groups {
		b.addGroup(&groupSnapshot{GroupSnapshot: gs.GroupSnapshot, seq: gs.Seq})
	}
	return b
}

// statePath is where the backend is kept; "" without Options.StateDir.
func (d *Driver) statePath() string {
	if d.opts.StateDir == "" {
		return ""
	}
	return filepath.Join(d.opts.StateDir, StateFile)
}

// loadState replaces the backend with the one in the state file, once per
// Driver: Restart keeps the backend in memory, which the file only
// mirrors. A missing file starts empty and is written at once, so an
// unwritable directory fails Serve rather than the first CreateVolume.
func (d *Driver) loadState() error {
	path := d.statePath()
	if path == "" || d.loaded {
		return nil
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(d.opts.StateDir, 0o700); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		var st state
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if st.Version != stateVersion {
			return fmt.Errorf("%s: format version %d, want %d", path, st.Version, stateVersion)
		}
		if st.Driver != d.opts.Name {
			return fmt.Errorf("%s: belongs to driver %q, not %q", path, st.Driver, d.opts.Name)
		}
		d.mu.Lock()
		d.be = backendFromState(st)
		d.mu.Unlock()
		d.saved = data
	}
	d.loaded = true
	return d.saveState()
}

// saveState writes the backend to the state file when it changed since the
// last write. Writes are serialised and each copies the backend afresh, so
// the file never goes back in time. The file is replaced atomically: a
// process that dies leaves the old or the new state, never a torn one.
func (d *Driver) saveState() error {
	path := d.statePath()
	if path == "" {
		return nil
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	st := d.be.stateLocked(d.opts.Name)
	d.mu.Unlock()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if bytes.Equal(data, d.saved) {
		return nil
	}
	if err := writeAtomic(path, data); err != nil {
		return err
	}
	d.saved = data
	return nil
}

// writeAtomic writes data to a temporary file beside path and renames it
// over path. It does not fsync: the rename is atomic for processes, which
// is what the fake models (a restarted plugin), and syncing would cost
// tens of milliseconds per call on some disks. A machine crash may lose
// the last writes.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".state-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
