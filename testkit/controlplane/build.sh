#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kube-scheduler from
# the Go module proxy into a cache directory, once. Later runs reuse them.
# The Go package embeds this script and runs it when binaries are missing
# (controlplane.EnsureBinaries).
#
#   testkit/controlplane/build.sh   # prints the directory holding the binaries
#
# stdout: only that directory. stderr: progress, at least one line every
# CSIKIT_PROGRESS_SECONDS (default 20) while a step runs. The go command's
# "go: downloading" lines are counted, not shown; when a step fails, the end
# of its full output is printed.
#
# Environment:
#   CSIKIT_CONTROLPLANE_DIR  where binaries are cached
#                            (default: $HOME/.cache/csi-kit/controlplane/<versions>)
#   K8S_VERSION, STAGING_VERSION, ETCD_VERSION   versions to build
#   CSIKIT_PROGRESS_SECONDS  seconds between "still ..." lines (default 20)
#
# Concurrent runs for one directory wait for each other (flock on <dir>.lock).
#
# Sourcing the script (". build.sh") defines its functions and builds nothing.

log() { printf '[controlplane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# duration SECONDS: "45s", "2m30s".
duration() {
	local s=$1
	if ((s < 60)); then
		printf '%ds' "$s"
	else
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	fi
}

# Lines of the go command that only report progress; counted, not shown.
noise_re='^go: (downloading|added|upgraded|downgraded|finding|extracting) '

# step_bg_pid is the running step's process, stopped if this script is
# interrupted (background jobs of a script ignore SIGINT themselves).
step_bg_pid=""
stop_step() {
	if [[ -n "$step_bg_pid" ]]; then
		kill -TERM "$step_bg_pid" 2>/dev/null || true
		wait "$step_bg_pid" 2>/dev/null || true
	fi
	exit 130
}

# run_step DOING LOG COMMAND [ARGS...]: runs COMMAND (a program or a function)
# in the background with stdout and stderr in LOG. Every
# CSIKIT_PROGRESS_SECONDS it logs "still DOING (elapsed)...". At the end it
# logs how many modules were downloaded and any line that is not download
# noise; if COMMAND failed, it logs the last 60 lines of LOG and returns
# COMMAND's status.
run_step() {
	local doing=$1 logf=$2
	shift 2
	local every=${CSIKIT_PROGRESS_SECONDS:-20}
	local t0 now last rc=0 n
	t0=$(date +%s)
	last=$t0
	"$@" >"$logf" 2>&1 &
	step_bg_pid=$!
	trap stop_step INT TERM
	while kill -0 "$step_bg_pid" 2>/dev/null; do
		sleep 1
		now=$(date +%s)
		if ((now - last >= every)) && kill -0 "$step_bg_pid" 2>/dev/null; then
			last=$now
			n=$(grep -cE '^go: downloading ' "$logf" || true)
			if ((n > 0)); then
				log "still $doing ($(duration $((now - t0))), $n modules downloaded so far)..."
			else
				log "still $doing ($(duration $((now - t0))))..."
			fi
		fi
	done
	wait "$step_bg_pid" || rc=$?
	step_bg_pid=""
	trap - INT TERM
	n=$(grep -cE '^go: downloading ' "$logf" || true)
	if ((n > 0)); then
		log "downloaded $n modules"
	fi
	if ((rc != 0)); then
		log "FAILED: $doing (exit status $rc) after $(duration $(($(date +%s) - t0))); the end of its output:"
		tail -n 60 "$logf" >&2
		return "$rc"
	fi
	# Anything the go command said besides download progress (warnings).
	grep -vE "$noise_re" "$logf" >&2 || true
	return 0
}

build_etcd() {
	cd "$work/etcd" &&
		go mod init csikit.local/etcdbuild >/dev/null 2>&1 &&
		go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" &&
		CGO_ENABLED=0 go build -trimpath -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
}

# download_kubernetes_mod FILE: writes the path of k8s.io/kubernetes's go.mod
# in the module cache to FILE.
download_kubernetes_mod() {
	go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" |
		sed -n 's/.*"GoMod": "\(.*\)",/\1/p' >"$1"
}

resolve_kubernetes() {
	GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
		k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
}

# build_kube BINARY LDFLAGS
build_kube() {
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="$2" -o "$out/$1.tmp" "k8s.io/kubernetes/cmd/$1"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

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
	run_step "building etcd" "$work/etcd.log" build_etcd
	mv "$out/etcd.tmp" "$out/etcd"
	log "etcd ready ($(duration $(($(date +%s) - start))) so far)"
else
	log "step 1/2: etcd already cached"
fi

# --- kubernetes ---------------------------------------------------------------
need_k8s=0
for b in kube-apiserver kube-controller-manager kube-scheduler; do
	[[ -x "$out/$b" ]] || need_k8s=1
done
if ((need_k8s)); then
	log "step 2/2: building kube-apiserver, kube-controller-manager, kube-scheduler ${K8S_VERSION}"
	log "          (about 10 minutes on 2 cores and ~2.7 GB of Go cache the first time; cached afterwards)"
	mkdir -p "$work/k8s"
	cd "$work/k8s"
	log "downloading k8s.io/kubernetes ${K8S_VERSION} sources"
	run_step "downloading k8s.io/kubernetes ${K8S_VERSION}" "$work/k8s-download.log" \
		download_kubernetes_mod "$work/k8s-gomod-path"
	gomod_file="$(cat "$work/k8s-gomod-path")"
	if [[ -z "$gomod_file" || ! -f "$gomod_file" ]]; then
		log "could not find the go.mod of k8s.io/kubernetes@${K8S_VERSION} in the module cache; check K8S_VERSION and the Go module proxy (go env GOPROXY)"
		exit 1
	fi
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
	run_step "resolving modules" "$work/k8s-resolve.log" resolve_kubernetes
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
		log "compiling $b ($i/3, $(duration $(($(date +%s) - start))) elapsed)"
		run_step "building $b" "$work/$b.log" build_kube "$b" "$ldflags"
		mv "$out/$b.tmp" "$out/$b"
	done
fi
log "done in $(duration $(($(date +%s) - start))): $out"
echo "$out"
