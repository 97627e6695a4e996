#!/bin/sh
# `dvc` with deploy/dvc.yaml's lock kept out of git: the Makefile (and the tests) run DVC here.
#
# The stages in deploy/dvc.yaml write what varies per machine and per run, so their lock changes
# on every run: committed, it would dirty a fresh clone after `make pipeline`. DVC refuses a
# git-ignored lock file, so it lives in .dvc/tmp (ignored, machine-local, like mlflow.db) and sits
# beside deploy/dvc.yaml only while DVC runs. `repro` with no target reproduces both pipeline
# files (plain `dvc repro` would run ./dvc.yaml only); everything else goes to dvc unchanged.
set -u
cd "$(dirname "$0")/.." || exit # the repository root: targets and paths are relative to it
lock=deploy/dvc.lock
kept=.dvc/tmp/deploy.lock
if [ -f "$kept" ] && [ ! -f "$lock" ]; then mv "$kept" "$lock"; fi
trap 'if [ -f "$lock" ]; then mkdir -p .dvc/tmp && mv "$lock" "$kept"; fi' EXIT
trap 'exit 130' INT TERM # Ctrl-C: still put the lock away

if [ "${1:-}" = repro ]; then
  targeted=no
  for arg in "$@"; do
    case $arg in repro | -*) ;; *) targeted=yes ;; esac
  done
  if [ "$targeted" = no ]; then set -- "$@" dvc.yaml deploy/dvc.yaml; fi
fi
dvc "$@"
