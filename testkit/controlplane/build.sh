#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kube-scheduler from
# the Go module proxy into a cache directory, once. Later runs reuse them.
# The Go package embeds this script and runs it when binaries are missing
# (controlplane.EnsureBinaries).
#
#   testkit/controlplane/build.sh   # prints the directory holding the binaries
#
# stdout: only that directory. stderr: progress.
#
# Environment:
#   CSIKIT_CONTROLPLANE_DIR  where binaries are cached
#                            (default: $HOME/.cache/csi-kit/controlplane/<versions>)
#   K8S_VERSION, STAGING_VERSION, ETCD_VERSION   versions to build
#
# Concurrent runs for one directory wait for each other (flock on <dir>.lock).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
STAGING_VERSION="${STAGING_VERSION:-v0.${K8S_VERSION#v1.}}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"

out="${CSIKIT_CONTROLPLANE_DIR:-$HOME/.cache/csi-kit/controlplane/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}}"
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler)

have_all() {
	for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || return 1; done
}
if have_all; then
	echo "$out"
	exit 0
fi

log() { printf '[controlplane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mkdir -p "$out"

# One build per directory at a time; a waiting run reuses the result.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$out.lock"
	if ! flock -n 9; then
		log "another build into $out is running; waiting for it"
		flock 9
		if have_all; then
			echo "$out"
			exit 0
		fi
	fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# --- etcd -------------------------------------------------------------------
if [[ ! -x "$out/etcd" ]]; then
	log "step 1/2: building etcd ${ETCD_VERSION} (about a minute on a cold cache)"
	mkdir -p "$work/etcd"
	(
		cd "$work/etcd"
		go mod init csikit.local/etcdbuild >/dev/null 2>&1
		go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
		CGO_ENABLED=0 go build -trimpath -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
	)
	mv "$out/etcd.tmp" "$out/etcd"
	log "etcd ready ($(( $(date +%s) - start ))s so far)"
else
	log "step 1/2: etcd already cached"
fi

# --- kubernetes ---------------------------------------------------------------
need_k8s=0
for b in kube-apiserver kube-controller-manager kube-scheduler; do
	[[ -x "$out/$b" ]] || need_k8s=1
done
if (( need_k8s )); then
	log "step 2/2: building kube-apiserver, kube-controller-manager, kube-scheduler ${K8S_VERSION}"
	log "          (15-35 minutes and ~2.7 GB of Go cache the first time; cached afterwards)"
	mkdir -p "$work/k8s"
	cd "$work/k8s"
	gomod_file="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
	{
		echo "module csikit.local/k8sbuild"
		echo
		echo "go 1.26"
		echo
		echo "require k8s.io/kubernetes ${K8S_VERSION}"
		echo
		echo "replace ("
		sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#\t\1 => \1 '"${STAGING_VERSION}"'#p' "$gomod_file"
		echo ")"
	} >go.mod
	log "resolving modules"
	GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
		k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler >&2
	# Stamp the version that /version reports (a release build's values).
	minor="${K8S_VERSION#v1.}"
	minor="${minor%%.*}"
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION}"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
	ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
	i=0
	for b in kube-apiserver kube-controller-manager kube-scheduler; do
		i=$((i + 1))
		if [[ -x "$out/$b" ]]; then continue; fi
		log "compiling $b ($i/3, $(( $(date +%s) - start ))s elapsed)"
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="$ldflags" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b"
		mv "$out/$b.tmp" "$out/$b"
	done
fi
log "done in $(( $(date +%s) - start ))s: $out"
echo "$out"
