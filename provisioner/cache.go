package provisioner

import (
	v1 "k8s.io/api/core/v1"

	"github.com/csi-kit/sidecars/internal/kube"
)

// stripForCache keeps cached objects small: kube.StripForCache, and claims
// lose the status fields only the resizer reads.
func stripForCache(obj any) (any, error) {
	obj, err := kube.StripForCache(obj)
	if err != nil {
		return obj, err
	}
	if o, ok := obj.(*v1.PersistentVolumeClaim); ok {
		o.Status.Conditions = nil
		o.Status.AllocatedResourceStatuses = nil
	}
	return obj, nil
}

// topoEntry is the topology requirement computed for a claim's first
// attempt, kept so that retries send the same request.
type topoEntry struct {
	node      string
	requisite []term
	preferred []term
}

func (p *Provisioner) cachedTopology(uid, node string) (topoEntry, bool) {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	e, ok := p.topoCache[uid]
	if !ok || e.node != node {
		return topoEntry{}, false
	}
	return e, true
}

func (p *Provisioner) storeTopology(uid string, e topoEntry) {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	p.topoCache[uid] = e
}

func (p *Provisioner) forgetTopology(uid string) {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	delete(p.topoCache, uid)
}
