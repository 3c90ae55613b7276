#!/usr/bin/env bash
# The programs outside Python that `make demo` and `make test` need, installed on first use.
#
#   tools/system-deps.sh demo   Java 17 and Maven (the Kafka broker is fetched from Maven Central)
#   tools/system-deps.sh test   the above, plus Prometheus and promtool (rule tests, the scrape
#                               test), Chromium with a Hangul font (browser tests), and a
#                               Kustomize renderer (deploy-check)
#
# Debian packages are installed with apt-get when this runs as root (or sudo works without a
# password); otherwise it stops at once and prints the one command that installs them.
# Kustomize: `kubectl kustomize` when kubectl is on PATH; else kustomize v5 is built once from the
# Go module proxy into .run/tools/bin (Debian's kubernetes-client 1.20 is too old for our
# kustomizations: it refuses `labels` and inline patches).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}
case "$mode" in demo | test) ;; *) echo "usage: $0 demo|test" >&2; exit 2 ;; esac

KUSTOMIZE_VERSION=v5.5.0
tools_bin=.run/tools/bin

packages=()
# Debian's own Python makes virtualenvs only with python3-venv installed.
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || packages+=(maven)
if [ "$mode" = test ]; then
  { command -v prometheus >/dev/null && command -v promtool >/dev/null; } || packages+=(prometheus)
  command -v chromium >/dev/null || packages+=(chromium)
  fc-list 2>/dev/null | grep -qi nanum || packages+=(fonts-nanum)
fi

if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  else
    echo "missing: ${packages[*]}" >&2
    echo "install them with:  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null; then
    echo "missing: ${packages[*]} (Debian package names); install them with your system's package manager" >&2
    exit 1
  fi
  echo "installing Debian packages: ${packages[*]}"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

if [ "$mode" = test ] && ! command -v kubectl >/dev/null && [ ! -x "$tools_bin/kustomize" ]; then
  if ! command -v go >/dev/null; then
    # Debian's golang-go (1.19) is too old to build kustomize v5.
    echo "missing: kubectl (or Go >= 1.22 to build kustomize); install kubectl: https://kubernetes.io/docs/tasks/tools/" >&2
    exit 1
  fi
  echo "building kustomize $KUSTOMIZE_VERSION from the Go module proxy into $tools_bin (once)"
  mkdir -p "$tools_bin"
  GOBIN="$PWD/$tools_bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
fi
