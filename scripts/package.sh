#!/usr/bin/env bash
# Builds the Debian package dsrlb_<version>_<arch>.deb: the daemon and
# realserver (static, CGO_ENABLED=0), the systemd unit, the default
# configuration as a conffile, maintainer scripts (packaging/).
#
#   scripts/package.sh [OUTDIR]          # default OUTDIR: dist
#
# Environment:
#   VERSION  the package version; default: from `git describe --tags`
#            (a leading v removed), else 0.0.0~git<commit time>.<revision>
#   GOARCH   the architecture to build for; default: the host's
#
# nfpm runs as a pinned Go tool, outside the module: the library's own
# dependencies stay as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
out=${1:-dist}
goarch=${GOARCH:-$(go env GOARCH)}

revision=""
if git rev-parse --git-dir >/dev/null 2>&1; then
	revision=$(git rev-parse --short=12 HEAD)
	if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
		revision+="+modified"
	fi
fi
version=${VERSION:-}
if [ -z "$version" ]; then
	if tag=$(git describe --tags --exact-match 2>/dev/null); then
		version=${tag#v}
	elif [ -n "$revision" ]; then
		version="0.0.0~git$(git show -s --format=%cd --date=format:%Y%m%d%H%M%S HEAD).${revision%+modified}"
	else
		version="0.0.0~unknown"
	fi
fi
case "$goarch" in
amd64 | arm64 | riscv64 | ppc64le | s390x) debarch=$goarch ;;
386) debarch=i386 ;;
arm) debarch=armhf ;;
*) echo "package.sh: no Debian architecture for GOARCH=$goarch" >&2; exit 2 ;;
esac

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
pkg=github.com/dsrlb/dsrlb/internal/version
ldflags="-s -w -X $pkg.version=$version -X $pkg.revision=$revision"
for cmd in dsrlb realserver; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch go build -trimpath -buildvcs=false \
		-ldflags "$ldflags" -o "$build/$cmd" "./examples/$cmd"
done

cp -r packaging/nfpm.yaml packaging/dsrlb.yaml packaging/dsrlb.service packaging/copyright \
	packaging/scripts examples/dsrlb/dsrlb.example.yaml "$build/"

mkdir -p "$out"
target="$(cd "$out" && pwd)/dsrlb_${version}_${debarch}.deb"
rm -f "$target"
# nfpm runs here: the target's GOOS/GOARCH must not leak into its build.
(cd "$build" && env -u GOOS -u GOARCH DEB_ARCH=$debarch DEB_VERSION=$version \
	go run "$NFPM" package --config nfpm.yaml --packager deb --target "$target" >&2)
echo "$target"
