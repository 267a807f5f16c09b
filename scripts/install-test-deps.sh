#!/usr/bin/env bash
# Installs the system tools the tests run for real, where they are missing:
# PostgreSQL 15 server binaries, OpenLDAP's command-line clients, openssl and
# util-linux's setpriv. Go (for kube-apiserver and etcd) must be 1.24 or newer;
# Debian's golang-go is older, so it is only checked, not installed.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin"
missing=()
have_initdb() { command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_initdb || missing+=(postgresql-15)
command -v ldapsearch >/dev/null || missing+=(ldap-utils)
command -v openssl >/dev/null || missing+=(openssl)
command -v setpriv >/dev/null || missing+=(util-linux)

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  echo "Go is missing: the test control plane is built from Go modules. Install Go >= 1.24 (https://go.dev/dl)." >&2
  exit 1
fi
command -v kubectl >/dev/null || { echo "kubectl is missing: install kubectl (https://kubernetes.io/docs/tasks/tools/)." >&2; exit 1; }
